"""What a completed assessment costs over SMS: turns and outbound segments, per mode and language,
against the naive form.

Drives the engine with digits alone (as a respondent on a basic phone would) from the first
text and the language choice to the priorities message, and counts every outbound message's
segments with the same counter the flow loader uses. The full assessment is reported for the
fewest questions (every skill confident, so no interest question) and the most (every skill
low, every topic taken), answered one question a text and several answers a text (each run of
questions on one scale in one reply, and once with two answers changed after BACK).

The naive form is what a plain survey tool would send for the full assessment's most
questions: the same 104 questions one a text, each with its whole scale spelled out ("1 I
have no ability", ...), built from the flow's own texts in each language. The goal (issue 11):
a full assessment in at most 40 % of the naive form's segments.

    python -m bench.sms_cost
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from bench.report import Goal, Section, goals_table
from bot.engine import questions_asked, step
from bot.messages import Inbound
from bot.render import LETTERS, fill, pick
from bot.state import State
from flows.loader import load_flow
from flows.model import Flow, Question
from flows.segments import count_segments

START = datetime(2026, 11, 2, 9, 0)
GOAL_SHARE = 0.40
"""A full assessment in at most this share of the naive form's segments."""
ONE_AT_A_TIME, SEVERAL = "2", "3"
"""The mode prompt's options for the full assessment: one question a text, several answers."""
MOST = "full, all skills low"
"""The scenario with the full assessment's most questions (every interest asked)."""


@dataclass(frozen=True)
class Cost:
    language: str
    name: str
    turns: int
    messages: int
    segments: int
    answers: int
    way: str = "one a text"
    """"one a text", "several a text", or "naive form"."""


def complete(
    flow: Flow,
    language: str,
    name: str,
    mode_option: str,
    reply: Callable[[State], str],
    way: str = "one a text",
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
    return Cost(language, name, turns, messages, segments, answers, way)


def naive_form(flow: Flow, language: str) -> Cost:
    """The full assessment's questions one a text, every option's full wording each time."""
    fallback = flow.languages[0]
    full = flow.modes["full"]
    questions = [s for s in full.steps if isinstance(s, Question)]
    segments = 0
    for number, question in enumerate(questions, start=1):
        progress = fill(flow.text("progress", language), n=number, total=len(questions))
        options = "\n".join(
            f"{o.number} {pick(o.label, language, fallback)}"
            for o in flow.scale_of(question).options
        )
        text = f"{progress} {pick(question.text, language, fallback)}\n{options}"
        segments += count_segments(text).segments
    count = len(questions)
    return Cost(
        language, "104 questions, every option in full", count, count, segments, count, "naive form"
    )


def full_reply(skill: str) -> Callable[[State], str]:
    """Every skill `skill`, every interest asked "Not interested", every topic taken; with a
    device, a connection and nothing in the way (no skills choice, every skill asked)."""

    def reply(state: State) -> str:
        key = state.question or ""
        if key.endswith(".skill"):
            return skill
        return "5" if key.endswith((".access", ".blocker")) else "1"

    return reply


def several_reply(flow: Flow, one: Callable[[State], str]) -> Callable[[State], str]:
    """The same answers as `one`, each run of questions in one text ("2 2 2 2")."""

    def reply(state: State) -> str:
        run = questions_asked(flow, state)
        if not run:
            return one(state)
        return " ".join(one(state.evolve(question=q.key)) for q in run)

    return reply


def with_fixes(
    flow: Flow, answer: Callable[[State], str], runs: tuple[int, ...]
) -> Callable[[State], str]:
    """`answer`, and after the runs numbered `runs` (0-based): BACK, then a change to the
    second item ("B 3" when there is one: still low, so the same questions follow)."""
    answered = 0
    queued: list[str] = []

    def reply(state: State) -> str:
        nonlocal answered
        if queued:
            return queued.pop(0)
        run = questions_asked(flow, state)
        text = answer(state)
        if run:
            if answered in runs:
                queued.extend(["back", f"{LETTERS[min(1, len(run) - 1)]} 3"])
            answered += 1
        return text

    return reply


def scenarios(flow: Flow, language: str) -> list[Cost]:
    def uneven(state: State) -> str:
        key = state.question or ""
        if key.endswith(".topic"):
            return "1"
        if key == "skills.basis":
            return "2"  # answer the skills as if they had a device
        question = flow.questions[key]
        return str(1 + question.number % 5)

    low, confident = full_reply("2"), full_reply("4")
    several = "several a text"
    return [
        complete(flow, language, "quick check", "1", lambda state: "3"),
        complete(flow, language, "full, all skills confident", ONE_AT_A_TIME, confident),
        complete(flow, language, "full, skills mixed", ONE_AT_A_TIME, uneven),
        complete(flow, language, MOST, ONE_AT_A_TIME, low),
        complete(
            flow,
            language,
            "full, all skills confident",
            SEVERAL,
            several_reply(flow, confident),
            several,
        ),
        complete(
            flow, language, "full, skills mixed", SEVERAL, several_reply(flow, uneven), several
        ),
        complete(flow, language, MOST, SEVERAL, several_reply(flow, low), several),
        complete(
            flow,
            language,
            f"{MOST}, two answers changed",
            SEVERAL,
            with_fixes(flow, several_reply(flow, low), (1, 4)),
            several,
        ),
    ]


def costs(flow: Flow) -> Iterator[tuple[Cost, Cost]]:
    """(cost, the naive form's cost in its language) for every scenario in every language."""
    for language in flow.languages:
        naive = naive_form(flow, language)
        yield naive, naive
        for cost in scenarios(flow, language):
            yield cost, naive


def _share(cost: Cost, naive: Cost) -> float:
    return cost.segments / naive.segments


def section(flow: Flow | None = None) -> Section:
    """The SMS cost stage of `make bench`: tables per language, raw numbers and the goal."""
    flow = flow or load_flow()
    rows = list(costs(flow))
    lines = [
        "Outbound segments of a completed assessment, driven through the engine with digits "
        "from the first text to the priorities message, against the naive form (the full "
        "assessment's 104 questions one a text, every option in full; "
        "`python -m bench.sms_cost`).",
        "",
        "| language | way | assessment | turns | messages | segments | of the naive form |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    lines.extend(
        f"| {c.language} | {c.way} | {c.name} | {c.turns} | {c.messages} | {c.segments} "
        f"| {_share(c, naive):.0%} |"
        for c, naive in rows
    )
    goals = []
    for language in flow.languages:
        naive = next(n for c, n in rows if c.language == language)
        by = {(c.way, c.name): c for c, n in rows if c.language == language}
        several, one = by["several a text", MOST], by["one a text", MOST]
        share = _share(several, naive)
        met = share <= GOAL_SHARE
        goals.append(
            Goal(
                name=f"Full assessment, most questions, several answers a text ({language})",
                target=f"≤ {GOAL_SHARE:.0%} of the naive form's segments",
                measured=(
                    f"{share:.0%} ({several.segments} / {naive.segments}); one a text "
                    f"{_share(one, naive):.0%} ({one.segments})"
                ),
                met=met,
                why="" if met else "each run's question, scale and items exceed the saving",
            )
        )
    lines += ["", goals_table(goals)]
    raw = {
        "costs": [{**asdict(c), "share_of_naive": round(_share(c, n), 4)} for c, n in rows],
    }
    return Section("sms_cost", "SMS cost", "\n".join(lines), raw, tuple(goals))


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sms_cost",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.parse_args()
    print(section().markdown)


if __name__ == "__main__":
    main()
