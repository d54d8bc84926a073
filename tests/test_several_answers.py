"""Several answers a text: what a resident types to a run of questions is read as they meant it
or not at all, and answering this way stores exactly what answering one at a time stores.

Whole conversations are in tests/transcripts/several_answers_*.txt and
welsh_several_answers.txt; these tests hold the rules across every answer set.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from bench import sms_cost
from bot.batch import Reading, read_answers
from bot.engine import questions_asked, step
from bot.messages import Event, Inbound
from bot.state import State
from flows.loader import load_flow
from flows.model import Question
from flows.segments import count_segments

FLOW = load_flow()
START = datetime(2026, 11, 2, 9, 0)


def read(text: str, count: int = 4, languages: tuple[str, ...] = ("en", "cy")) -> Reading:
    scale = FLOW.scales["skill"]
    return read_answers(FLOW, scale.options, text, count, languages, scale.pairs)


@pytest.mark.parametrize(
    "text", ["3 4 2 5", "3,4,2,5", "3, 4, 2, 5", "3-4-2-5", "3425", " 3 4 2 5. ", "3 and 4 2 5"]
)
def test_one_answer_an_item_in_any_common_form(text: str) -> None:
    assert read(text) == Reading({0: 3, 1: 4, 2: 2, 3: 5})


def test_number_words_in_english_and_welsh_are_answers() -> None:
    assert read("three four two five") == Reading({0: 3, 1: 4, 2: 2, 3: 5})
    assert read("tri pedwar dau pump", languages=("cy", "en")) == Reading({0: 3, 1: 4, 2: 2, 3: 5})


def test_too_few_keeps_what_was_sent_for_the_first_items() -> None:
    assert read("3 4 2") == Reading({0: 3, 1: 4, 2: 2})
    assert read("342") == Reading({0: 3, 1: 4, 2: 2})


def test_too_many_keeps_nothing_and_says_how_many() -> None:
    assert read("3 4 2 5 1") == Reading(sent=5)
    assert read("34251") == Reading(sent=5)


def test_what_is_not_an_answer_leaves_only_its_item_unanswered() -> None:
    assert read("3 4 x 5") == Reading({0: 3, 1: 4, 3: 5}, unread=1)
    assert read("3 4 9 5") == Reading({0: 3, 1: 4, 3: 5}, unread=1)
    assert read("9 9 9 9") == Reading(unread=4)


def test_a_lone_answer_answers_the_first_item() -> None:
    assert read("4") == Reading({0: 4})
    assert read("not at all") == Reading({0: 1})
    assert read("Confidently") == Reading({0: 4})


def test_letters_change_the_items_they_name() -> None:
    assert read("B 4") == Reading({1: 4})
    assert read("b4 d2") == Reading({1: 4, 3: 2})
    assert read("A=3, C=1") == Reading({0: 3, 2: 1})
    assert read("E 4") == Reading(unread=1)  # the run has four items: nothing is guessed


@pytest.mark.parametrize("text", ["👍", "🦄", "purple elephant", "<b>hmm</b>", "", "yes"])
def test_words_emoji_and_nonsense_answer_nothing(text: str) -> None:
    assert read(text).answers == {}


# --- the same answers, one a text or several ---------------------------------------------


def finish(mode_option: str, answer: Callable[[Question], int]) -> tuple[State, list[Event], str]:
    """A full assessment from the first text to the priorities, answering each question with
    `answer`; one a text ("2") or each run in one text ("3")."""
    state, now = State(), START
    events: list[Event] = []
    script = iter(["hi", "1", "1", mode_option])
    last = ""
    while state.stage != "done":
        text = next(script, None)
        if text is None:
            run = questions_asked(FLOW, state)
            # a topic break: carry on; the skills choice: answer as if they had a device
            prompt = "1" if (state.question or "").endswith(".topic") else "2"
            text = " ".join(str(answer(question)) for question in run) if run else prompt
        now += timedelta(minutes=1)
        turn = step(FLOW, State.from_json(state.to_json()), Inbound(text), now)
        state, last = turn.state, turn.outbound[0].text
        events.extend(turn.events)
    return state, events, last


ANSWER_SETS: dict[str, Callable[[Question], int]] = {
    "all 1": lambda q: 1,
    "all 5": lambda q: 5,
    "by number": lambda q: 1 + q.number % 5,
    "low skills, keen": lambda q: 2 if q.aspect == "skill" else 5,
    "every other": lambda q: 1 if q.number % 2 else 4,
}


@pytest.mark.parametrize("name", ANSWER_SETS)
def test_several_a_text_stores_what_one_a_text_stores(name: str) -> None:
    answer = ANSWER_SETS[name]
    one, one_events, one_priorities = finish("2", answer)
    several, several_events, several_priorities = finish("3", answer)

    def stored(events: list[Event]) -> dict[str | None, tuple[int | None, int | None]]:
        return {e.question: (e.option, e.score) for e in events if e.kind == "answered"}

    assert several.answers == one.answers
    assert stored(several_events) == stored(one_events)
    assert several.skills_basis == one.skills_basis
    assert several_priorities == one_priorities
    assert sum(e.kind == "assessment_completed" for e in several_events) == 1


def test_someone_answering_every_question_1_is_not_told_they_are_doing_well() -> None:
    _, _, priorities = finish("3", ANSWER_SETS["all 1"])
    assert "doing well" not in priorities
    assert "First, you need: a device" in priorities
    assert "lack of interest" in priorities


def test_one_a_text_stays_the_default_and_quick_is_never_in_runs() -> None:
    state = State(stage="mode", language_chosen=True)
    for option, mode in (("1", "quick"), ("2", "full")):
        turn = step(FLOW, state, Inbound(option), START)
        assert (turn.state.mode, turn.state.batch) == (mode, False)
        assert len(questions_asked(FLOW, turn.state)) == 1
    turn = step(FLOW, state, Inbound("3"), START)
    assert (turn.state.mode, turn.state.batch) == ("full", True)
    assert [q.key for q in questions_asked(FLOW, turn.state)] == [
        "BA01.access",
        "BA02.access",
        "BA03.access",
    ]


def test_a_state_saved_before_several_answers_existed_loads_as_one_a_text() -> None:
    saved = State(stage="asking", mode="full", question="BA02.access", answers={"BA01.access": 5})
    data = saved.to_json().replace(',"batch":false', "")
    assert '"batch"' not in data
    loaded = State.from_json(data)
    assert loaded == saved
    assert loaded.batch is False
    batch = saved.evolve(batch=True)
    assert State.from_json(batch.to_json()) == batch


def test_a_check_in_after_a_baseline_answered_several_a_text_is_one_a_text() -> None:
    from bot.engine import CheckinPlan, invite_to_checkin

    done = State(stage="done", mode="full", batch=True, language_chosen=True)
    plan = CheckinPlan(mode="full", keys=("BA01.access",), baseline={"BA01.access": 2}, since={})
    assert invite_to_checkin(FLOW, done, plan, START).state.batch is False


# --- what it costs --------------------------------------------------------------------


def test_every_run_message_is_within_the_run_budget_in_every_language() -> None:
    for language in FLOW.languages:
        state, now = State(), START
        script = iter(["hi", str(FLOW.languages.index(language) + 1), "1", "3"])
        while state.stage != "done":
            run = questions_asked(FLOW, state)
            text = next(script, None) or (" ".join("2" for _ in run) if run else "2")
            now += timedelta(minutes=1)
            state = (turn := step(FLOW, state, Inbound(text), now)).state
            if state.stage == "asking":
                for outbound in turn.outbound:
                    assert count_segments(outbound.text).segments <= FLOW.batch_budgets[language]


def test_the_sms_cost_section_reports_what_the_engine_sends() -> None:
    section = sms_cost.section(FLOW)
    assert section.key == "sms_cost"
    rows = {(c["language"], c["way"], c["name"]): c for c in section.raw["costs"]}
    for language in FLOW.languages:
        low = sms_cost.full_reply("2")
        again = sms_cost.complete(
            FLOW, language, "", sms_cost.SEVERAL, sms_cost.several_reply(FLOW, low)
        )
        row = rows[language, "several a text", sms_cost.MOST]
        assert (row["turns"], row["segments"], row["answers"]) == (
            again.turns,
            again.segments,
            104,
        )
        naive = rows[language, "naive form", "104 questions, every option in full"]
        assert naive["messages"] == 104
        assert row["share_of_naive"] == round(again.segments / naive["segments"], 4)
        one = rows[language, "one a text", sms_cost.MOST]
        assert row["segments"] < one["segments"] < naive["segments"]
        assert f"| {naive['segments']} |" in section.markdown
    assert [goal.name[-4:] for goal in section.goals] == [f"({lang})" for lang in FLOW.languages]
    for goal in section.goals:
        assert goal.met == (float(goal.measured.split("%")[0]) <= 40)


def test_a_skill_changed_to_confident_after_back_takes_back_its_interest() -> None:
    """BACK past a run of interests to its skills, then one skill changed to confident: that
    item's interest is no longer asked, so the answer given for it is cleared, not kept."""
    mode = FLOW.modes["full"]
    assert mode.interest_if_skill_at_most is not None
    skill = FLOW.scales["skill"]
    confident = next(o.number for o in skill.options if o.score > mode.interest_if_skill_at_most)
    state, now = State(), START
    sent: list[Event] = []

    def say(text: str) -> None:
        nonlocal state, now
        now += timedelta(minutes=1)
        turn = step(FLOW, State.from_json(state.to_json()), Inbound(text), now)
        state = turn.state
        sent.extend(turn.events)

    for text in ["hi", "1", "1", "3"]:
        say(text)
    while not (state.question or "").endswith(".interest"):  # low skills, so interests come
        run = questions_asked(FLOW, state)
        prompt = "1" if (state.question or "").endswith(".topic") else "2"
        say(" ".join("1" for _ in run) if run else prompt)
    interests = questions_asked(FLOW, state)
    say(" ".join("5" for _ in interests))
    changed = interests[0].item
    assert state.answers[f"{changed}.interest"] == 5

    say("back")  # the interests again, answers kept
    say("back")  # the skills
    assert state.question is not None
    assert FLOW.questions[state.question].aspect == "skill"
    say(f"A{confident}")

    assert state.answers[f"{changed}.skill"] == confident
    assert f"{changed}.interest" not in state.answers
    assert Event("cleared", question=f"{changed}.interest") in sent
    stored: dict[str | None, int | None] = {}
    for event in sent:  # the answers as storage applies the events, in order
        if event.kind == "answered":
            stored[event.question] = event.option
        elif event.kind == "cleared":
            stored.pop(event.question, None)
    assert stored == dict(state.answers)
    assert all(f"{q.item}.interest" in state.answers for q in interests[1:])
    # What they read next: the interests again, without the item now answered as confident.
    asked_next = [q.key for q in questions_asked(FLOW, state)]
    assert f"{changed}.interest" not in asked_next
    assert asked_next == [f"{q.item}.interest" for q in interests[1:]]
