"""Reminders in the engine: a resident who went quiet part-way through gets the reminder and the
question they are at in one text, so a reply answers it; nobody else gets one; every reminder
fits the language's SMS budget with the longest council names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.engine import remind, step
from bot.messages import Inbound, Turn
from bot.render import join_lead, pick, prompt_message, question_body, topic_counts
from bot.state import State
from flows.loader import load_flow
from flows.model import Flow, Question, SkillsChoice, TopicBreak
from flows.segments import count_segments

NOW = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)
TWO_DAYS = NOW + timedelta(days=2)
COUNCIL = {"council": "Royal Borough of Kensington and Chelsea"}
WELSH_COUNCIL = {
    "council": "Royal Borough of Kensington and Chelsea",
    "council.cy": "Cyngor Bwrdeistref Sirol Rhondda Cynon Taf",
}
LEAD = "Your digital skills check is waiting: reply with a number to carry on, or STOP to end."


@pytest.fixture(scope="module")
def english() -> Flow:
    return load_flow(council=COUNCIL, languages=["en"])


@pytest.fixture(scope="module")
def welsh() -> Flow:
    return load_flow(council=WELSH_COUNCIL)


def say(flow: Flow, state: State, *texts: str, at: datetime = NOW) -> tuple[State, list[str]]:
    replies: list[str] = []
    for text in texts:
        turn = step(flow, state, Inbound(text), at)
        state = turn.state
        replies.extend(message.text for message in turn.outbound)
    return state, replies


def part_way(flow: Flow) -> State:
    """A quick check at question 3, after two answers."""
    state, _ = say(flow, State(), "Hi", "1", "1", "5", "5")
    assert (state.stage, state.question) == ("asking", "BA03.access")
    return state


def test_a_resident_part_way_is_reminded_with_the_question_they_are_at(english: Flow) -> None:
    state = part_way(english)
    turn = remind(english, state, TWO_DAYS)

    (message,) = turn.outbound
    first, *options = message.text.splitlines()
    assert first.startswith(LEAD + " 3/22 ")
    assert options == say(english, state, "repeat", at=TWO_DAYS)[1][0].splitlines()[1:]
    assert message.buttons  # Telegram shows the answers as buttons, as for the question
    assert turn.state == state
    assert turn.events == ()


def test_the_reply_to_a_reminder_answers_the_question(english: Flow) -> None:
    state = part_way(english)
    remind(english, state, TWO_DAYS)

    answered, replies = say(english, state, "3", at=TWO_DAYS)

    assert answered.answers["BA03.access"] == 3
    assert "4/22 How much does the cost" in replies[0]


def test_a_resident_who_said_later_is_reminded_and_their_answer_counts(english: Flow) -> None:
    state, _ = say(english, part_way(english), "later")
    assert state.stage == "paused"

    turn = remind(english, state, TWO_DAYS)
    answered, _ = say(english, turn.state, "2", at=TWO_DAYS)

    assert "3/22 " in turn.outbound[0].text
    assert answered.answers["BA03.access"] == 2


def test_after_a_long_silence_the_reminder_offers_to_carry_on_or_start_again(
    english: Flow,
) -> None:
    state = part_way(english)
    much_later = NOW + timedelta(days=english.resume_after_days + 1)

    turn = remind(english, state, much_later)
    carried_on, replies = say(english, turn.state, "1", at=much_later)

    lines = turn.outbound[0].text.splitlines()
    assert lines[0].startswith(LEAD)
    assert "You got to question 3 of 22." in lines[0]
    assert turn.state.stage == "resume"
    assert carried_on.stage == "asking"
    assert replies[0].startswith("3/22 ")


@pytest.mark.parametrize(
    "texts",
    [
        (),  # never wrote
        ("Hi",),  # at the privacy notice
        ("Hi", "1"),  # choosing quick or full
        ("Hi", "2"),  # said no
        ("Hi", "1", "1", "stop"),  # opted out part-way
    ],
)
def test_nobody_else_is_reminded(english: Flow, texts: tuple[str, ...]) -> None:
    state, _ = say(english, State(), *texts)

    assert remind(english, state, TWO_DAYS) == Turn(state)


def test_a_finished_check_gets_no_reminder(english: Flow) -> None:
    state = part_way(english)
    state, _ = say(english, state, *["5"] * 5)
    while state.stage == "asking":
        state, _ = say(english, state, "3")

    assert state.stage == "done"
    assert remind(english, state, TWO_DAYS).outbound == ()


def test_a_welsh_speaker_is_reminded_in_welsh(welsh: Flow) -> None:
    state, _ = say(welsh, State(), "Hi", "2", "1", "1", "5")
    assert (state.language, state.stage) == ("cy", "asking")

    text = remind(welsh, state, TWO_DAYS).outbound[0].text

    assert text.startswith("Mae'ch gwiriad yn aros: atebwch gyda rhif i barhau, neu STOP. 2/22 ")


def every_reminder(flow: Flow, language: str) -> list[tuple[str, str]]:
    """(where, text) of the reminder before every step of every mode, and before the choice
    to carry on after a long silence."""
    lead = flow.text("reminder", language)
    sent: list[tuple[str, str]] = []
    for mode in flow.modes.values():
        for place in mode.steps:
            if isinstance(place, Question):
                body = question_body(flow, place, mode.total, language)
            elif isinstance(place, SkillsChoice):
                body = prompt_message(flow, flow.prompts["skills"], language).text
            else:
                assert isinstance(place, TopicBreak)
                topic = pick(flow.heading(place.heading).intro, language, flow.languages[0])
                counts = topic_counts(flow, mode, place.heading)
                body = prompt_message(
                    flow, flow.prompts["topic"], language, "", None, topic=topic, **counts
                ).text
            sent.append((f"{mode.id} {place.key}", join_lead(lead, body)))
        resume = prompt_message(flow, flow.prompts["resume"], language, n=999, total=999).text
        sent.append((f"{mode.id} resume", join_lead(lead, resume)))
    return sent


@pytest.mark.parametrize("language", ["en", "cy"])
def test_every_reminder_fits_the_languages_sms_budget(welsh: Flow, language: str) -> None:
    budget = welsh.segment_budgets[language]
    reminders = every_reminder(welsh, language)
    over = [
        (where, count_segments(text).segments)
        for where, text in reminders
        if count_segments(text).segments > budget
    ]

    assert len(reminders) > 60
    assert over == []
    if language == "en":
        assert all(count_segments(text).encoding == "GSM-7" for _, text in reminders)
