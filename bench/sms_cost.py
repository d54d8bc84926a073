"""What a completed assessment costs over SMS: turns and outbound segments, per mode and language.

Drives the engine with digits alone (as a respondent on a basic phone would) from the first
text and the language choice to the priorities message, and counts every outbound message's
segments with the same counter the flow loader uses. The full assessment is reported for the
fewest questions (every skill confident, so no interest question) and the most (every skill
low, every topic taken).

    python -m bench.sms_cost
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.engine import step
from bot.messages import Inbound
from bot.state import State
from flows.loader import load_flow
from flows.model import Flow, Question
from flows.segments import count_segments

START = datetime(2026, 11, 2, 9, 0)


@dataclass(frozen=True)
class Cost:
    language: str
    name: str
    turns: int
    messages: int
    segments: int
    answers: int


def complete(
    flow: Flow, language: str, name: str, mode_option: str, reply: Callable[[State], str]
) -> Cost:
    state = State()
    now = START
    turns = messages = segments = answers = 0
    choose = [str(flow.languages.index(language) + 1)] if len(flow.languages) > 1 else []
    script = iter(["hello", *choose, "1", mode_option])
    while True:
        text = next(script, None)
        if text is None:
            if state.stage == "done":
                break
            text = reply(state)
        now += timedelta(minutes=1)
        turn = step(flow, state, Inbound(text), now)
        state = turn.state
        turns += 1
        messages += len(turn.outbound)
        segments += sum(count_segments(o.text).segments for o in turn.outbound)
        answers += sum(1 for e in turn.events if e.kind == "answered")
    return Cost(language, name, turns, messages, segments, answers)


def full_reply(skill: str) -> Callable[[State], str]:
    """Every skill `skill`, every interest asked "Not interested", every topic taken; with a
    device, a connection and nothing in the way (no skills choice, every skill asked)."""

    def reply(state: State) -> str:
        key = state.question or ""
        if key.endswith(".skill"):
            return skill
        return "5" if key.endswith((".access", ".blocker")) else "1"

    return reply


def scenarios(flow: Flow, language: str) -> list[Cost]:
    def uneven(state: State) -> str:
        key = state.question or ""
        if key.endswith(".topic"):
            return "1"
        if key == "skills.basis":
            return "2"  # answer the skills as if they had a device
        question = flow.questions[key]
        assert isinstance(question, Question)
        return str(1 + question.number % 5)

    return [
        complete(flow, language, "quick check", "1", lambda state: "3"),
        complete(flow, language, "full, all skills confident", "2", full_reply("4")),
        complete(flow, language, "full, skills mixed", "2", uneven),
        complete(flow, language, "full, all skills low", "2", full_reply("2")),
    ]


def main() -> None:
    flow = load_flow()
    print(
        f"{'language':9} {'assessment':28} {'turns':>6} {'answers':>8} {'messages':>9} "
        f"{'segments':>9}"
    )
    for language in flow.languages:
        for cost in scenarios(flow, language):
            print(
                f"{cost.language:9} {cost.name:28} {cost.turns:6} {cost.answers:8} "
                f"{cost.messages:9} {cost.segments:9}"
            )


if __name__ == "__main__":
    main()
