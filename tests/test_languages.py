"""Welsh, everywhere a respondent reads: chosen first, switched at any point with every answer
kept, answered in either language, and within Welsh's own SMS budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.engine import step
from bot.messages import Event, Inbound, Turn
from bot.state import State
from dibot.turns import TurnHandler
from flows.loader import load_flow
from flows.model import Flow, Heading, Item
from flows.segments import count_segments
from scoring.message import worst_case_messages
from tests.people import urn_of

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
WELSH_COUNCIL = {
    "council": "Cyngor Sir Ddinbych",
    "privacy_url": "sirddinbych.gov.uk/preifatrwydd",
    "helpline": "07700 900102",
    "signposting": "For free help call 07700 900102.",
    "council.cy": "Cyngor Sir Ddinbych",
    "signposting.cy": "Am help am ddim, ffoniwch 07700 900102 neu ewch i'ch llyfrgell.",
}
WELSH_LETTERS = set("âêîôûŵŷÂÊÎÔÛŴŶ")


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow(council=WELSH_COUNCIL)


class Talk:
    def __init__(self, flow: Flow) -> None:
        self.flow, self.state, self.now = flow, State(), T0
        self.events: list[Event] = []

    def send(self, text: str) -> str:
        self.now += timedelta(minutes=1)
        turn: Turn = step(self.flow, self.state, Inbound(text), self.now)
        self.state = turn.state
        self.events.extend(turn.events)
        return turn.outbound[0].text if turn.outbound else ""


def test_the_language_choice_comes_first_in_both_languages(flow: Flow) -> None:
    first = Talk(flow).send("Helo")
    assert first == "Choose a language: / Dewiswch iaith:\n1 English\n2 Cymraeg"


@pytest.mark.parametrize("choice", ["2", "dau", "Cymraeg", "CYMRAEG", "welsh", "b"])
def test_welsh_is_chosen_by_number_word_or_name(flow: Flow, choice: str) -> None:
    talk = Talk(flow)
    talk.send("Helo")
    reply = talk.send(choice)
    assert talk.state.language == "cy"
    assert reply.startswith("Helo, Cyngor Sir Ddinbych sydd yma.")


def test_switching_language_mid_way_keeps_every_answer(flow: Flow) -> None:
    talk = Talk(flow)
    for text in ["hi", "1", "1", "1", "2", "4"]:
        talk.send(text)
    before = dict(talk.state.answers)
    reply = talk.send("CYMRAEG")
    assert reply.startswith("Iawn, Cymraeg o hyn ymlaen. 3/22 ")
    assert talk.state.answers == before == {"BA01.access": 2, "BA02.access": 4}
    assert talk.events[-1] == Event("language_changed")
    talk.send("tri")
    assert talk.send("English").startswith("OK, English from now on. 4/22 ")
    assert talk.state.answers == {**before, "BA03.access": 3}


@pytest.mark.parametrize(
    ("text", "option"),
    [
        ("un", 1),
        ("dau", 2),
        ("dwy", 2),
        ("tri", 3),
        ("tair", 3),
        ("pedair", 4),
        ("pump", 5),
        ("Weithiau", 3),
        ("weithiau", 3),
        ("fel arfer", 4),
        ("two", 2),
        ("Always", 5),
    ],
)
def test_answers_in_either_language(flow: Flow, text: str, option: int) -> None:
    talk = Talk(flow)
    for reply in ["Helo", "2", "1", "1"]:
        talk.send(reply)
    assert talk.state.question == "BA01.access"
    talk.send(text)
    assert talk.state.answers == {"BA01.access": option}


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("NÔL", "BA01.access"),
        ("nol", "BA01.access"),
        ("yn ôl", "BA01.access"),
        ("Yn ol", "BA01.access"),
        ("HEPGOR", "BA03.access"),
        ("back", "BA01.access"),
    ],
)
def test_welsh_commands_with_or_without_accents(flow: Flow, text: str, question: str) -> None:
    talk = Talk(flow)
    for reply in ["Helo", "2", "1", "1", "3"]:
        talk.send(reply)
    talk.send(text)
    assert talk.state.question == question
    assert talk.state.language == "cy"


def test_help_in_welsh_names_the_welsh_commands(flow: Flow) -> None:
    talk = Talk(flow)
    for reply in ["Helo", "2", "1", "1"]:
        talk.send(reply)
    help_text = talk.send("CYMORTH")
    assert "NÔL" in help_text
    assert "07700 900102" in help_text


def test_every_welsh_message_keeps_its_accents_within_its_own_budget(flow: Flow) -> None:
    budget = flow.segment_budgets["cy"]
    assert (budget, flow.segment_budgets["en"]) == (3, 2)
    welsh = [q.text["cy"] for q in flow.questions.values()]
    assert any(WELSH_LETTERS & set(text) for text in welsh), "Welsh letters were stripped"
    for message in worst_case_messages(flow, "cy"):  # sent once: a budget of its own
        count = count_segments(message)
        assert count.segments <= flow.priorities_budgets["cy"], message


def test_the_welsh_priorities_message_uses_the_councils_welsh_signposting(flow: Flow) -> None:
    talk = Talk(flow)
    # no device, no internet, every blocker; then "1": skip the skills
    for reply in ["Helo", "2", "1", "1", *["1"] * 8, "1"]:
        last = talk.send(reply)
    assert talk.state.stage == "done"
    assert last.startswith("Eich blaenoriaethau:\nYn gyntaf, mae arnoch angen: dyfais,")
    assert last.endswith(WELSH_COUNCIL["signposting.cy"])
    assert count_segments(last).segments <= flow.priorities_budgets["cy"]


def test_every_item_text_is_translated_not_copied() -> None:
    """A Welsh item text identical to its English one is a forgotten translation."""
    welsh = load_flow(languages=["en", "cy"])
    named: list[Item | Heading] = [*welsh.items, *welsh.headings]
    copied = [
        f"{entry.id}.{field}"
        for entry in named
        for field in ("title", "short", "sms")
        if getattr(entry, field)["cy"] == getattr(entry, field)["en"]
    ]
    assert copied == []


def test_a_new_respondent_whose_telegram_is_in_welsh_starts_in_welsh(
    engine: sa.Engine,
) -> None:
    flow = load_flow(council=WELSH_COUNCIL)
    handler = TurnHandler(engine, flow, clock=lambda: T0)
    welsh = handler.handle(
        channel="telegram",
        message_id="1",
        urn="telegram:1001",
        inbound=Inbound("/start"),
        language="cy",
    )
    english = handler.handle(
        channel="telegram",
        message_id="2",
        urn="telegram:1002",
        inbound=Inbound("/start"),
        language="en",
    )
    assert welsh.replies[0].text.startswith("Helo, Cyngor Sir Ddinbych sydd yma.")
    assert english.replies[0].text.startswith("Choose a language: / Dewiswch iaith:")
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT urn_cipher, language FROM respondents")).all()
    languages = {urn_of(engine, cipher): str(language) for cipher, language in rows}
    assert languages == {"telegram:1001": "cy", "telegram:1002": "en"}
