"""The "your priorities" SMS: what comes first, what it names, and that it always fits."""

from __future__ import annotations

import pytest

from flows.loader import FlowError, load_flow
from flows.model import Flow
from flows.segments import count_segments
from scoring import priorities_message, profile, worst_case_messages

SIGNPOSTING = "For free help call 0300 000 0000."
TWO_SEGMENTS = 306
"""Septets in two concatenated GSM-7 segments."""

NO_ABILITY, WITH_HELP, WOULD_TRY, CONFIDENT = 1, 2, 3, 4
MAYBE, LIKELY, DEFINITELY = 3, 4, 5
DO_NOT_HAVE, ALWAYS = 1, 5
STOPS_ME, BIG_PROBLEMS, NO_PROBLEMS = 1, 2, 5


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow(council={"council": "Testshire Council", "signposting": SIGNPOSTING})


def message(flow: Flow, answers: dict[str, int]) -> str:
    return priorities_message(flow, profile(flow, answers), "en")


def assert_fits_two_gsm7_segments(text: str) -> None:
    count = count_segments(text)
    assert count.encoding == "GSM-7", text
    assert count.units <= TWO_SEGMENTS, text


def test_the_questionnaires_example_names_paying_bills(flow: Flow) -> None:
    text = message(flow, {"TR03.skill": WITH_HELP, "TR03.interest": DEFINITELY})

    assert text == "Your priorities:\n1. Paying bills online\n" + SIGNPOSTING


def test_names_only_the_top_priorities_in_rank_order(flow: Flow) -> None:
    answers = {
        "GS01.skill": WOULD_TRY,  # 2 * 2 = 4
        "GS01.interest": MAYBE,
        "TR03.skill": WITH_HELP,  # 3 * 4 = 12
        "TR03.interest": DEFINITELY,
        "SS01.skill": NO_ABILITY,  # 4 * 4 = 16
        "SS01.interest": DEFINITELY,
        "CM02.skill": NO_ABILITY,  # 4 * 3 = 12, ahead of TR03 by heading
        "CM02.interest": LIKELY,
    }

    lines = message(flow, answers).splitlines()

    assert flow.priority.top == 3
    assert lines[1:4] == ["1. Spotting scams", "2. Using email", "3. Paying bills online"]
    assert "Switching on and logging in" not in "\n".join(lines)


def test_missing_basics_then_barriers_come_before_any_skill(flow: Flow) -> None:
    answers = {
        "SS01.skill": NO_ABILITY,
        "SS01.interest": DEFINITELY,
        "BA01.access": DO_NOT_HAVE,
        "BA02.access": DO_NOT_HAVE,
        "BA03.access": ALWAYS,
        "BL01.blocker": STOPS_ME,
        "BL02.blocker": NO_PROBLEMS,
        "BL05.blocker": BIG_PROBLEMS,
    }

    assert message(flow, answers).splitlines() == [
        "Your priorities:",
        "First, you need: a device to go online and an internet connection.",
        "What holds you back: the cost of devices or data and health, disability or language.",
        "1. Spotting scams",
        SIGNPOSTING,
    ]


def test_a_barrier_alone_still_comes_first(flow: Flow) -> None:
    answers = {"BL04.blocker": STOPS_ME, "TR03.skill": WITH_HELP, "TR03.interest": DEFINITELY}

    assert message(flow, answers).splitlines()[1:3] == [
        "What holds you back: a lack of interest.",
        "1. Paying bills online",
    ]


def test_nothing_to_work_on_gets_a_kind_message(flow: Flow) -> None:
    answers = {"BA01.access": ALWAYS, "GS01.skill": CONFIDENT, "GS01.interest": MAYBE}

    text = message(flow, answers)

    assert "doing well" in text
    assert text.endswith("\n" + SIGNPOSTING)
    assert "Your priorities" not in text


def test_a_quick_check_names_topics_by_their_short_names(flow: Flow) -> None:
    answers = {
        "GS.skill": WOULD_TRY,  # 2 * 3 = 6
        "GS.interest": LIKELY,
        "TR.skill": NO_ABILITY,  # 4 * 4 = 16
        "TR.interest": DEFINITELY,
        "HI.skill": CONFIDENT,  # 1 * 2 = 2: not a priority
        "HI.interest": MAYBE,
    }

    assert message(flow, answers).splitlines()[1:-1] == [
        "1. Shopping, banking and forms",
        "2. Getting started",
    ]


def test_without_signposting_there_is_no_empty_last_line() -> None:
    bare = load_flow()

    text = priorities_message(bare, profile(bare, {"TR03.skill": 1, "TR03.interest": 5}), "en")

    assert text == "Your priorities:\n1. Paying bills online"


def test_every_worst_case_fits_two_gsm7_segments(flow: Flow) -> None:
    cases = worst_case_messages(flow, "en")

    assert len(cases) == 4
    for text in cases:
        assert_fits_two_gsm7_segments(text)
    assert cases[0].splitlines()[1] == (
        "First, you need: a device to go online, an internet connection "
        "and a good place to go online."
    )


def everything_wrong(flow: Flow, basics: int) -> dict[str, int]:
    """Every blocker stops them, every skill is wanted and missing; basics as given."""
    answers = {f"{i.id}.access": basics for i in flow.items if i.section == "basics"}
    answers |= {f"{i.id}.blocker": STOPS_ME for i in flow.items if i.section == "blockers"}
    for item in flow.items:
        if item.section == "skills":
            answers[f"{item.id}.skill"] = NO_ABILITY
            answers[f"{item.id}.interest"] = DEFINITELY
    return answers


def test_the_hardest_respondent_hears_about_basics_before_anything_else(flow: Flow) -> None:
    text = message(flow, everything_wrong(flow, basics=DO_NOT_HAVE))

    # Barriers and skills are whole lines that do not fit after every basic: dropped.
    assert text.splitlines() == [
        "Your priorities:",
        "First, you need: a device to go online, an internet connection "
        "and a good place to go online.",
        SIGNPOSTING,
    ]
    assert_fits_two_gsm7_segments(text)


def test_every_barrier_and_three_priorities_fit_when_basics_are_there(flow: Flow) -> None:
    text = message(flow, everything_wrong(flow, basics=ALWAYS))

    assert text.splitlines() == [
        "Your priorities:",
        "What holds you back: the cost of devices or data, poor signal or broadband, "
        "a lack of skills or confidence, a lack of interest and health, disability or language.",
        "1. Switching on and logging in",
        "2. Using a touchscreen or mouse",
        "3. Changing device settings",
        SIGNPOSTING,
    ]
    assert_fits_two_gsm7_segments(text)


def test_a_long_signposting_drops_the_lowest_ranked_line_first() -> None:
    answers = {
        "GS01.skill": NO_ABILITY,
        "GS01.interest": DEFINITELY,
        "GS02.skill": NO_ABILITY,
        "GS02.interest": DEFINITELY,
        "GS03.skill": NO_ABILITY,
        "GS03.interest": DEFINITELY,
        "BL01.blocker": STOPS_ME,
    }
    head = (
        "Your priorities:\nWhat holds you back: the cost of devices or data.\n"
        "1. Switching on and logging in\n2. Using a touchscreen or mouse\n"
    )
    third = "3. Changing device settings\n"
    signposting = "Free help:"
    while len(head) + len(third) + len(signposting) <= TWO_SEGMENTS:
        signposting += " call us"
    flow = load_flow(council={"signposting": signposting})

    text = message(flow, answers)

    assert text == head + signposting
    assert_fits_two_gsm7_segments(text)


def test_a_council_signposting_that_leaves_no_room_fails_at_start_up() -> None:
    long_signposting = (
        "For free help getting online, call our digital inclusion team on 0300 000 0000, "
        "Monday to Friday 9am to 5pm, visit any library in the borough for free Wi-Fi and "
        "friendly volunteers, or ask at your local community centre about free devices."
    )

    with pytest.raises(FlowError, match=r"priorities message .*signposting.*3 SMS segments"):
        load_flow(council={"signposting": long_signposting})
