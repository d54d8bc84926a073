"""Invitations and check-ins in the engine: the first text to an enrolled resident, and a
re-assessment months later that asks what the baseline asked and says what changed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.engine import CheckinPlan, invite, invite_to_checkin, step
from bot.messages import Inbound, Turn
from bot.state import State
from flows.loader import load_flow
from flows.model import Flow, Question

NOW = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)
LATER = datetime(2027, 6, 1, 10, 0, tzinfo=UTC)
SINCE = {"en": "March 2027", "cy": "Mawrth 2027"}


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow(council={"council": "Testshire Council"}, languages=["en"])


def say(flow: Flow, state: State, *texts: str, at: datetime = NOW) -> tuple[State, list[str]]:
    replies: list[str] = []
    for text in texts:
        turn = step(flow, state, Inbound(text), at)
        state = turn.state
        replies.extend(message.text for message in turn.outbound)
    return state, replies


def quick_baseline(flow: Flow, skill: str) -> State:
    """A finished quick check: a device, no blockers, every skill `skill`, interest "Likely"."""
    state, _ = say(flow, State(), "Hi", "1", "1", *["5"] * 8)
    for _ in range(7):
        state, _ = say(flow, state, skill, "4")
    assert state.stage == "done"
    return state


def plan_from(flow: Flow, baseline: State) -> CheckinPlan:
    return CheckinPlan(
        mode=baseline.mode or "quick",
        keys=tuple(baseline.answers),
        baseline=baseline.answers,
        since=SINCE,
    )


def test_an_enrolled_resident_is_invited_with_the_privacy_notice(flow: Flow) -> None:
    turn = invite(flow, State(), NOW)

    assert turn.state.stage == "consent"
    assert turn.outbound[0].text.startswith("Hi, this is Testshire Council's free digital")
    assert invite(flow, turn.state, NOW) == Turn(turn.state)  # already invited: nothing more
    assert invite(flow, State(opted_out=True), NOW).outbound == ()


def test_a_check_in_asks_what_the_baseline_asked_and_says_what_changed(flow: Flow) -> None:
    baseline = quick_baseline(flow, skill="2")  # "Only with help" everywhere
    turn = invite_to_checkin(flow, baseline, plan_from(flow, baseline), LATER)

    assert turn.outbound[0].text.splitlines() == [
        "Hi, it's Testshire Council again. Time for your digital skills check-in: "
        "22 questions, like last time.",
        "1 Start now",
        "2 Not yet",
    ]
    state, replies = say(flow, turn.state, "1", at=LATER)
    assert replies[0].startswith("1/22 Do you have a phone")
    state, _ = say(flow, state, *["5"] * 8, at=LATER)
    for number in range(7):  # more confident with three topics, the same with four
        state, replies = say(flow, state, "4" if number < 3 else "2", "4", at=LATER)

    assert state.stage == "done"
    assert replies[-1].splitlines()[0] == "You are more confident with 3 things since March 2027."
    assert state.kind == "checkin"


def test_a_check_in_skips_what_the_baseline_did_not_answer(flow: Flow) -> None:
    baseline = quick_baseline(flow, skill="3")
    keys = tuple(key for key in baseline.answers if not key.startswith(("CM.", "AD.")))
    plan = CheckinPlan("quick", keys, baseline.answers, SINCE)
    state = invite_to_checkin(flow, baseline, plan, LATER).state

    asked: list[str] = []
    state, _ = say(flow, state, "start", at=LATER)
    while state.stage == "asking":
        asked.append(state.question or "")
        state, _ = say(flow, state, "3", at=LATER)

    assert asked == list(keys)
    quick = [s.key for s in flow.modes["quick"].steps if isinstance(s, Question)]
    assert len(asked) == len(quick) - 4


@pytest.mark.parametrize(
    ("later", "line"),
    [
        ("1", "Some things feel harder than in March 2027. We can help."),
        ("3", "Your answers are much the same as in March 2027."),
    ],
)
def test_a_check_in_with_nothing_better_says_so_plainly(flow: Flow, later: str, line: str) -> None:
    baseline = quick_baseline(flow, skill="3")
    state = invite_to_checkin(flow, baseline, plan_from(flow, baseline), LATER).state
    state, _ = say(flow, state, "1", *["5"] * 8, at=LATER)
    for _ in range(7):
        state, replies = say(flow, state, later, "4", at=LATER)

    assert replies[-1].splitlines()[0] == line


def test_not_yet_waits_and_start_begins_later(flow: Flow) -> None:
    baseline = quick_baseline(flow, skill="2")
    state = invite_to_checkin(flow, baseline, plan_from(flow, baseline), LATER).state

    state, replies = say(flow, state, "not yet", at=LATER)
    assert replies == ["OK. Text START when you're ready for your check-in."]
    assert state.stage == "checkin"
    state, replies = say(flow, state, "hello?", at=LATER)
    assert replies[0].startswith("Welcome back. Hi, it's Testshire Council again.")
    state, replies = say(flow, state, "START", at=LATER)
    assert replies[0].startswith("1/22 Do you have")


def test_no_check_in_for_someone_opted_out_or_who_never_agreed(flow: Flow) -> None:
    baseline = quick_baseline(flow, skill="2")
    plan = plan_from(flow, baseline)

    assert invite_to_checkin(flow, baseline.evolve(opted_out=True), plan, LATER).outbound == ()
    assert invite_to_checkin(flow, State(stage="declined"), plan, LATER).outbound == ()


def test_an_invitation_offering_languages_says_who_is_texting() -> None:
    both = load_flow(council={"council": "Testshire Council"})

    turn = invite(both, State(), NOW)

    assert turn.state.stage == "language"
    assert turn.outbound[0].text.splitlines() == [
        "Hi, this is Testshire Council. Choose a language: / Dewiswch iaith:",
        "1 English",
        "2 Cymraeg",
    ]
