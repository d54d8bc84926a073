"""The engine's rules, checked on whole conversations driven through step()."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.engine import step
from bot.messages import Event, Inbound, Turn
from bot.state import State
from flows.loader import load_flow
from flows.model import Flow, Question

T0 = datetime(2026, 11, 2, 9, 0)


@pytest.fixture(scope="module")
def flow() -> Flow:
    """English only, as a council in England would run it: the language choice and Welsh are
    tested in test_languages.py."""
    return load_flow(languages=["en"])


class Conversation:
    """A respondent texting the engine, state reloaded from JSON every turn."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.state = State()
        self.now = T0
        self.events: list[Event] = []
        self.turns = 0

    def send(
        self,
        text: str = "",
        button: str | None = None,
        media: bool = False,
        after: timedelta = timedelta(minutes=1),
    ) -> Turn:
        self.now += after
        turn = step(
            self.flow, State.from_json(self.state.to_json()), Inbound(text, button, media), self.now
        )
        assert len(turn.outbound) <= 1
        self.state = turn.state
        self.events.extend(turn.events)
        self.turns += 1
        return turn

    def said(self, text: str = "", **kwargs: object) -> str:
        turn = self.send(text, **kwargs)  # type: ignore[arg-type]
        return turn.outbound[0].text if turn.outbound else ""

    def answered(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for event in self.events:
            if event.kind == "answered" and event.question and event.option:
                found[event.question] = event.option
            if event.kind == "cleared" and event.question:
                found.pop(event.question, None)
        return found

    def start(self, mode: str) -> None:
        self.send("hello")
        if self.state.stage == "language":
            self.send("1")  # English
        self.send("1")
        self.send("1" if mode == "quick" else "2")


def test_quick_check_is_22_answers_then_priorities(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    for _ in range(22):
        reply = talk.said("3")
    assert "priorities" in reply.lower()
    assert talk.state.stage == "done"
    assert len(talk.answered()) == 22
    assert [e.kind for e in talk.events].count("assessment_completed") == 1
    assert talk.turns == 25


def test_full_assessment_asks_interest_only_where_skill_can_make_a_priority(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("full")
    skill_by_number = {"GS": "1", "CM": "2", "HI": "3", "TR": "4", "PS": "5", "SS": "3", "AD": "2"}
    while talk.state.stage == "asking":
        key = talk.state.question or ""
        current = flow.modes["full"].steps[flow.modes["full"].positions[key]]
        if not isinstance(current, Question):
            talk.send("1")
        elif current.aspect == "skill":
            talk.send(skill_by_number[current.heading or ""])
        else:
            talk.send("5")
    answers = talk.answered()
    skills = [q for q in answers if q.endswith(".skill")]
    interests = {q.removesuffix(".interest") for q in answers if q.endswith(".interest")}
    assert len(skills) == 48
    expected = {q.removesuffix(".skill") for q in skills if int(answers[q]) <= 3}
    assert interests == expected
    assert all(q[:2] not in ("TR", "PS") for q in interests)
    assert talk.state.stage == "done"


def test_back_changes_the_last_answer(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    talk.send("2")
    reply = talk.said("back")
    assert "1/22" in reply
    assert talk.answered() == {}
    talk.send("4")
    assert talk.answered() == {"BA01.access": 4}


def test_back_at_the_first_question_goes_nowhere(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    reply = talk.said("BACK")
    assert reply.startswith(flow.text("back_nothing", "en"))
    assert talk.state.question == "BA01.access"


def test_nonsense_re_asks_then_offers_skip_then_skips(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    first = talk.said("banana")
    second = talk.said("banana")
    third = talk.said("banana")
    assert "1/22" in first
    assert "1/22" in second
    assert "SKIP" in second
    assert "SKIP" not in first
    assert "2/22" in third
    assert [e.kind for e in talk.events][-1] == "skipped"


def test_out_of_range_does_not_advance(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    reply = talk.said("7")
    assert "1 to 5" in reply
    assert "1/22" in reply
    assert talk.answered() == {}


def test_stop_silences_until_start_which_resumes_at_the_same_question(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    talk.send("2")
    assert talk.send("stop").events == (Event("opted_out"),)
    assert talk.send("3").outbound == ()
    assert talk.send("help").outbound == ()
    assert talk.answered() == {"BA01.access": 2}
    reply = talk.said("START")
    assert "2/22" in reply
    assert talk.events[-1] == Event("opted_in")


def test_later_pauses_and_any_message_resumes_without_answering(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    talk.send("2")
    assert talk.said("later") == flow.text("later", "en")
    reply = talk.said("hello again", after=timedelta(days=3))
    assert reply.startswith(flow.text("welcome_back", "en"))
    assert "2/22" in reply
    assert talk.answered() == {"BA01.access": 2}


@pytest.mark.parametrize(("days", "asked_to_resume"), [(13, False), (15, True)])
def test_after_weeks_away_carry_on_or_start_again(
    flow: Flow, days: int, asked_to_resume: bool
) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    talk.send("2")
    reply = talk.said("4", after=timedelta(days=days))
    assert ("question 2 of 22" in reply) is asked_to_resume
    if asked_to_resume:
        assert talk.answered() == {"BA01.access": 2}
        assert "2/22" in talk.said("1")
        talk.send("4")
        assert talk.answered() == {"BA01.access": 2, "BA02.access": 4}


def test_starting_again_abandons_the_unfinished_assessment(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    talk.send("2")
    assert "cleared" in talk.said("restart")
    talk.send("1")
    assert talk.state.stage == "mode"
    assert talk.state.answers == {}
    assert talk.events[-1].kind == "assessment_abandoned"


def test_a_stale_button_changes_nothing(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    talk.send(button="BA01.access:2")
    reply = talk.said(button="BA01.access:5")
    assert reply.startswith(flow.text("stale_button", "en"))
    assert "2/22" in reply
    assert talk.answered() == {"BA01.access": 2}


def test_state_round_trips_through_json_at_every_turn(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("full")
    for text in ["1", "2", "skip", "back", "3", "4", "5", "1", "2", "1", "1", "2", "later"]:
        talk.send(text)
        assert State.from_json(talk.state.to_json()) == talk.state


def test_evolving_a_state_leaves_the_old_one_and_refuses_unknown_fields() -> None:
    before = State(stage="asking", question="BA01.access", answers={"BA02.access": 2})
    after = before.evolve(question="BA03.access", answers={**before.answers, "BA01.access": 4})
    assert before == State(stage="asking", question="BA01.access", answers={"BA02.access": 2})
    assert after == State(
        stage="asking", question="BA03.access", answers={"BA02.access": 2, "BA01.access": 4}
    )
    with pytest.raises(TypeError, match="no field questoin"):
        before.evolve(questoin="BA03.access")


@pytest.mark.parametrize("bad", ['{"stage": "flying", "schema": 1}', "[]", '{"schema": 9}'])
def test_corrupt_state_is_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(ValueError, match=r"stage|schema|object"):
        State.from_json(bad)


def test_a_state_from_an_older_flow_version_carries_on(flow: Flow) -> None:
    """A council removed item GS02 while someone was answering it: they move on, nothing lost."""
    talk = Conversation(flow)
    talk.start("full")
    old = talk.state.evolve(
        question="GS99.skill",
        answers={**talk.state.answers, "BA01.access": 3, "GS98.skill": 2},
        history=(*talk.state.history, "BA01.access", "GS98.skill"),
    )
    turn = step(flow, old, Inbound("hello"), T0)
    assert turn.state.answers == {"BA01.access": 3}
    assert turn.state.question == "BA02.access"
    assert "2/56" in turn.outbound[0].text


def test_yes_opts_back_in_only_after_stop_as_twilio_does(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.send("hello")
    reply = talk.said("yes")
    assert talk.state.stage == "mode"
    assert "Which check" in reply
    talk.send("1")
    talk.send("stop")
    assert "1/22" in talk.said("YES")
    assert talk.events[-1] == Event("opted_in")


def test_an_auto_reply_storm_gets_a_few_replies_then_silence(flow: Flow) -> None:
    """A phone that answers every text automatically must not ping-pong with the bot."""
    talk = Conversation(flow)
    talk.start("quick")
    replies = [talk.send("I am away until Monday.").outbound for _ in range(40)]
    assert sum(1 for sent in replies if sent) == 6
    assert [e.kind for e in talk.events].count("skipped") == 2
    assert talk.state.question == "BA03.access"
    assert "4/22" in talk.said("4")
    assert talk.state.unanswered == 0


def test_after_the_end_one_reply_then_silence(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    for _ in range(22):
        talk.send("3")
    assert talk.said("thanks") == flow.text("done_again", "en")
    assert talk.said("ok") == ""
    assert talk.said("cheers") == ""
    assert "priorities" in talk.said("REPEAT").lower()


def test_nonsense_at_consent_falls_silent_too(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.send("hello")
    replies = [talk.said("Out of office") for _ in range(10)]
    assert [bool(reply) for reply in replies] == [True] * 6 + [False] * 4
    assert "Which check" in talk.said("1")


def test_a_typed_answer_after_later_is_taken(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    talk.send("later")
    assert "2/22" in talk.said("4", after=timedelta(days=2))
    assert talk.answered() == {"BA01.access": 4}


def test_someone_who_said_no_can_still_agree_by_tap_or_text(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.send("hello")
    talk.send("2")
    assert talk.state.stage == "declined"
    assert "Which check" in talk.said(button="consent:1")
    other = Conversation(flow)
    other.send("hello")
    other.send("no thanks")
    assert other.said("what is this").startswith("Hi, this is")
    assert "Which check" in other.said("1")


def test_start_at_the_carry_on_prompt_carries_on(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    talk.send("2")
    prompt = talk.said("hello", after=timedelta(days=20))
    assert prompt.count(flow.text("welcome_back", "en")) == 1
    reply = talk.said("START")
    assert reply.startswith("2/22 ")


def test_braces_in_a_councils_text_are_just_text() -> None:
    flow = load_flow(languages=["en"], council={"helpline": "0300 000 0000 {ext 2}"})
    talk = Conversation(flow)
    talk.send("hello")
    assert talk.said("help").endswith("Help: 0300 000 0000 {ext 2}")


def test_a_flow_change_that_leaves_nothing_to_ask_finishes_properly(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    answers = {q.key: 3 for q in flow.modes["quick"].steps if isinstance(q, Question)}
    nearly = talk.state.evolve(  # on a question the new flow no longer has, the last one
        answers=answers, history=tuple(answers), question="ZZ.interest"
    )
    turn = step(flow, nearly, Inbound("hello"), T0)
    assert turn.state.stage == "done"
    assert [e.kind for e in turn.events] == ["assessment_completed"]
    assert "priorities" in turn.outbound[0].text.lower()


def test_an_edit_of_an_earlier_message_answers_nothing(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.start("quick")
    talk.send("2")
    turn = talk.send("5", after=timedelta(minutes=3))
    edited = step(flow, talk.state, Inbound("1", edited=True), talk.now)
    assert edited.state.answers == talk.state.answers
    assert edited.events == ()
    assert edited.outbound[0].text.startswith(flow.text("edited", "en") + " 3/22 ")
    assert turn.events[0].question == "BA02.access"


def test_later_at_the_choice_of_check_welcomes_them_back_to_it(flow: Flow) -> None:
    talk = Conversation(flow)
    talk.send("hello")
    talk.send("1")
    assert talk.said("LATER") == flow.text("later", "en")
    back = talk.said("hi again", after=timedelta(days=2))
    assert back.startswith(flow.text("welcome_back", "en") + " Which check would you like?")
    assert talk.said("banana").startswith("Sorry")  # a re-ask once they are back
    assert "1/22" in talk.said("1")


def test_a_conversation_already_in_the_skills_is_not_sent_back_to_the_skills_choice() -> None:
    """A state saved before the skills choice existed: no device, and two skills answered."""
    flow = load_flow()
    answers = {"BA01.access": 1, "BA02.access": 1, "BA03.access": 1}
    answers |= {f"BL0{n}.blocker": 5 for n in range(1, 6)}
    answers |= {"GS.skill": 3, "GS.interest": 4}
    state = State(
        stage="asking",
        language_chosen=True,
        mode="quick",
        question="CM.skill",
        answers=answers,
        history=tuple(answers),
        last_seen=T0.isoformat(),
    )

    turn = step(flow, state, Inbound("2"), T0)

    assert turn.state.question == "CM.interest"
    assert turn.outbound[0].text.startswith("Got it. 12/22 If you could text, email")


def test_every_state_field_has_a_type_the_loader_checks() -> None:
    from dataclasses import fields

    from bot.state import FIELD_TYPES

    assert set(FIELD_TYPES) == {field.name for field in fields(State)}
