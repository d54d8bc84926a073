"""The "your priorities" SMS: what comes first, what it names, and that it always makes sense.

The neediest resident hears the most: missing basics, then barriers (lack of interest among
them), then the first thing to learn, then the help that fits their answers; only the
lower-ranked things to learn give way to long council texts, and a council text that would
push out anything more is refused when the flow loads.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from flows.loader import FlowError, load_flow
from flows.model import Flow
from flows.segments import count_segments
from scoring import priorities_message, profile, worst_case_messages

SIGNPOSTING = "For free help call 0300 000 0000."
DEVICE_HELP = "Borrow a tablet: call 07700 900100."
DATA_HELP = "Free SIM and data: ask at any library."
SKILLS_HELP = "Free classes: call 07700 900101."
THREE_SEGMENTS = 459
"""Septets in three concatenated GSM-7 segments."""

NO_ABILITY, WITH_HELP, WOULD_TRY, CONFIDENT, COULD_TEACH = 1, 2, 3, 4, 5
NOT_INTERESTED, UNLIKELY, MAYBE, LIKELY, DEFINITELY = 1, 2, 3, 4, 5
DO_NOT_HAVE, ALWAYS = 1, 5
STOPS_ME, BIG_PROBLEMS, NO_PROBLEMS = 1, 2, 5
COUNCIL = {
    "council": "Testshire Council",
    "signposting": SIGNPOSTING,
    "help_device": DEVICE_HELP,
    "help_data": DATA_HELP,
    "help_skills": SKILLS_HELP,
}


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow(council=COUNCIL)


def message(flow: Flow, answers: dict[str, int], checkin: str | None = None) -> str:
    return priorities_message(flow, profile(flow, answers), "en", checkin)


def assert_fits_three_gsm7_segments(text: str) -> None:
    count = count_segments(text)
    assert count.encoding == "GSM-7", text
    assert count.units <= THREE_SEGMENTS, text


def test_the_questionnaires_example_names_paying_bills(flow: Flow) -> None:
    text = message(flow, {"TR03.skill": WITH_HELP, "TR03.interest": DEFINITELY})

    assert text.splitlines() == [
        "Your priorities:",
        "Things to learn next:",
        "1. Paying bills online",
        SKILLS_HELP,
        SIGNPOSTING,
    ]


def test_names_only_the_top_priorities_in_rank_order(flow: Flow) -> None:
    answers = {
        "GS01.skill": WOULD_TRY,  # 2 * 2 = 4
        "GS01.interest": MAYBE,
        "TR03.skill": WITH_HELP,  # 3 * 4 = 12, interest 4
        "TR03.interest": DEFINITELY,
        "SS01.skill": NO_ABILITY,  # 4 * 4 = 16
        "SS01.interest": DEFINITELY,
        "CM02.skill": NO_ABILITY,  # 4 * 3 = 12, interest 3: after TR03, though earlier
        "CM02.interest": LIKELY,
    }

    lines = message(flow, answers).splitlines()

    assert flow.priority.top == 3
    assert lines[1:5] == [
        "Things to learn next:",
        "1. Spotting scams",
        "2. Paying bills online",
        "3. Using email",
    ]
    assert "Switching on and logging in" not in "\n".join(lines)


def test_missing_basics_then_barriers_then_skills_then_the_help_that_fits(flow: Flow) -> None:
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
        "First, you need: a device and internet access.",
        "What holds you back: cost and health, disability or language.",
        "Things to learn next:",
        "1. Spotting scams",
        DEVICE_HELP,
        DATA_HELP,
        SKILLS_HELP,
        SIGNPOSTING,
    ]


def test_only_the_help_that_fits_is_sent(flow: Flow) -> None:
    no_device = message(flow, {"BA01.access": DO_NOT_HAVE, "BA02.access": ALWAYS})
    poor_signal = message(flow, {"BL02.blocker": STOPS_ME})

    assert DEVICE_HELP in no_device
    assert DATA_HELP not in no_device
    assert SKILLS_HELP not in no_device
    assert poor_signal.splitlines() == [
        "Your priorities:",
        "What holds you back: poor signal.",
        SIGNPOSTING,
    ]


def test_confident_and_keen_is_no_priority_in_either_mode(flow: Flow) -> None:
    """Every skill "Confidently", every interest "Definitely": doing well, quick or full."""
    quick = {f"{h.id}.skill": CONFIDENT for h in flow.headings}
    quick |= {f"{h.id}.interest": DEFINITELY for h in flow.headings}
    full = {f"{i.id}.skill": CONFIDENT for i in flow.items if i.section == "skills"}

    for answers in (quick, full):
        text = message(flow, answers)
        assert text.splitlines() == [
            "Thank you. You're doing well: nothing stands out that you need help with right now.",
            SIGNPOSTING,
        ]


def test_no_skill_and_no_interest_is_a_barrier_never_doing_well(flow: Flow) -> None:
    for units in ([h.id for h in flow.headings], [i.id for i in flow.items if i.heading]):
        answers = {f"{unit}.skill": NO_ABILITY for unit in units}
        answers |= {f"{unit}.interest": NOT_INTERESTED for unit in units}

        text = message(flow, answers)

        assert "doing well" not in text
        assert text.splitlines() == [
            "Your priorities:",
            "What holds you back: lack of interest.",
            SKILLS_HELP,
            SIGNPOSTING,
        ]


def test_lack_of_interest_named_once_when_also_answered_as_a_blocker(flow: Flow) -> None:
    answers = {"BL04.blocker": STOPS_ME, "GS01.skill": NO_ABILITY}
    answers["GS01.interest"] = UNLIKELY  # 1 * 4 = 4: still a priority

    assert message(flow, answers).splitlines()[1:4] == [
        "What holds you back: lack of interest.",
        "Things to learn next:",
        "1. Switching on and logging in",
    ]


def test_low_skills_whose_interest_was_skipped_are_not_doing_well(flow: Flow) -> None:
    text = message(flow, {"GS01.skill": NO_ABILITY, "GS02.skill": WITH_HELP})

    assert text.splitlines() == [
        "Thank you. No one thing to learn stood out from your answers.",
        SKILLS_HELP,
        SIGNPOSTING,
    ]


def test_nothing_answered_is_not_doing_well(flow: Flow) -> None:
    assert message(flow, {}).startswith("Thank you. No one thing to learn stood out")


def test_a_quick_check_names_topics_to_learn(flow: Flow) -> None:
    answers = {
        "GS.skill": WOULD_TRY,  # 2 * 3 = 6
        "GS.interest": LIKELY,
        "TR.skill": NO_ABILITY,  # 4 * 4 = 16
        "TR.interest": DEFINITELY,
        "HI.skill": CONFIDENT,  # confident: never a priority
        "HI.interest": DEFINITELY,
    }

    assert message(flow, answers).splitlines()[1:4] == [
        "Topics to learn next:",
        "1. Shopping, banking and forms",
        "2. Getting started",
    ]


def test_a_planned_check_in_is_said_last(flow: Flow) -> None:
    text = message(flow, {"TR03.skill": WITH_HELP, "TR03.interest": DEFINITELY}, "March 2027")

    assert text.splitlines()[-2:] == [SIGNPOSTING, "We'll text you again in March 2027."]


def test_without_council_texts_there_are_no_empty_lines() -> None:
    bare = load_flow(council={"signposting": ""})

    text = priorities_message(bare, profile(bare, {"TR03.skill": 1, "TR03.interest": 5}), "en")

    assert text == "Your priorities:\nThings to learn next:\n1. Paying bills online"


def test_council_texts_may_use_the_councils_own_placeholders() -> None:
    filled = load_flow(council={"helpline": "07700 900123", "signposting": "Free help: {helpline}"})

    text = priorities_message(filled, profile(filled, {}), "en")

    assert text.endswith("\nFree help: 07700 900123")
    assert "{" not in text


@pytest.mark.parametrize(
    ("council", "problem"),
    [
        ({"signposting": "Call {phone}"}, r"\[council\] signposting: placeholder \{phone\}"),
        ({"signposting": "Help: {signposting}"}, r"placeholder \{signposting\}.*is this text"),
        (
            {"helpline": "{council}", "signposting": "Call {helpline}"},
            r"\[council\] signposting: placeholder \{helpline\}.*placeholders of its own",
        ),
        ({"help_data.cy": "Data: {nonsense}"}, r"\[council\.cy\] help_data: placeholder"),
    ],
)
def test_a_council_placeholder_that_cannot_be_filled_is_refused(
    council: dict[str, str], problem: str
) -> None:
    with pytest.raises(FlowError, match=problem):
        load_flow(council=council)


def test_every_worst_case_fits_three_gsm7_segments(flow: Flow) -> None:
    cases = worst_case_messages(flow, "en")

    for text in cases:
        assert_fits_three_gsm7_segments(text)
    lines = cases[0].splitlines()
    # no room for the line on what changed and the check-in date: they give way, nothing else
    assert lines[0] == "Your priorities:"
    assert lines[1] == "First, you need: a device, internet access and a place to go online."
    assert lines[2].startswith("What holds you back: cost, poor signal, ")
    assert lines[3:5] == ["Things to learn next:", "1. Checking news and travel times"]
    assert lines[-4:] == [DEVICE_HELP, DATA_HELP, SKILLS_HELP, SIGNPOSTING]


def test_after_a_check_in_what_changed_comes_first_when_there_is_room(flow: Flow) -> None:
    answers = {"TR03.skill": WITH_HELP, "TR03.interest": DEFINITELY}
    change = "You are more confident with 3 things since March 2027."

    text = priorities_message(flow, profile(flow, answers), "en", "June 2027", change=change)

    assert text.splitlines()[:2] == [change, "Your priorities:"]
    assert text.splitlines()[-1] == "We'll text you again in June 2027."


def everything_wrong(flow: Flow, basics: int) -> dict[str, int]:
    """Every blocker stops them, every skill is wanted and missing; basics as given."""
    answers = {f"{i.id}.access": basics for i in flow.items if i.section == "basics"}
    answers |= {f"{i.id}.blocker": STOPS_ME for i in flow.items if i.section == "blockers"}
    for item in flow.items:
        if item.section == "skills":
            answers[f"{item.id}.skill"] = NO_ABILITY
            answers[f"{item.id}.interest"] = DEFINITELY
    return answers


def test_the_hardest_respondent_hears_everything_they_most_need(flow: Flow) -> None:
    text = message(flow, everything_wrong(flow, basics=DO_NOT_HAVE))

    assert text.splitlines() == [
        "Your priorities:",
        "First, you need: a device, internet access and a place to go online.",
        "What holds you back: cost, poor signal, skills or confidence, lack of interest and "
        "health, disability or language.",
        "Things to learn next:",
        "1. Switching on and logging in",
        "2. Using a touchscreen or mouse",
        "3. Changing device settings",
        DEVICE_HELP,
        DATA_HELP,
        SKILLS_HELP,
        SIGNPOSTING,
    ]
    assert_fits_three_gsm7_segments(text)


def test_a_long_signposting_drops_the_lowest_ranked_priority_first() -> None:
    answers = {
        "GS01.skill": NO_ABILITY,
        "GS01.interest": DEFINITELY,
        "GS02.skill": NO_ABILITY,
        "GS02.interest": DEFINITELY,
        "GS03.skill": NO_ABILITY,
        "GS03.interest": DEFINITELY,
        "BL02.blocker": STOPS_ME,
    }
    head = (
        "Your priorities:\nWhat holds you back: poor signal.\nThings to learn next:\n"
        "1. Switching on and logging in\n2. Using a touchscreen or mouse\n"
    )
    third = "3. Changing device settings\n"
    signposting = "Free help:"
    while len(head) + len(third) + len(signposting) <= THREE_SEGMENTS:
        signposting += " call us"
    # Longer than the loader accepts, so set past it: the message still keeps its budget.
    loaded = load_flow(council={"signposting": "x"})
    flow = replace(loaded, messages={**loaded.messages, "priorities_end": {"en": signposting}})

    text = message(flow, answers)

    assert text == head + signposting
    assert_fits_three_gsm7_segments(text)


def test_council_texts_that_would_push_out_what_the_neediest_need_fail_at_start_up() -> None:
    long_help = (
        "Borrow a free tablet or laptop for three months from the council's device library: "
        "call 07700 900100, Monday to Friday, 9am to 5pm."
    )

    with pytest.raises(FlowError) as refused:
        load_flow(council={**COUNCIL, "help_device": long_help})

    said = str(refused.value)
    # named longest first, as the ones most worth shortening
    assert said.startswith("[council] help_device, help_data, signposting, help_skills: too long")
    assert "4 SMS segments" in said
    assert "over 3 ([segments.priorities] en)" in said


def test_a_long_welsh_council_text_is_refused_naming_the_welsh_table() -> None:
    long_welsh = (
        "Benthyg llechen am ddim gan y cyngor: ffoniwch 07700 900100, dydd Llun i ddydd "
        "Gwener, 9yb i 5yp. Mae croeso i bawb â diddordeb, ac mae help ar gael i chi. "
    ) * 3

    with pytest.raises(FlowError, match=r"^\[council\.cy\] help_device.*too long"):
        load_flow(council={**COUNCIL, "help_device.cy": long_welsh.strip()})
