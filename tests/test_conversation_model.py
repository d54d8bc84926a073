"""A model of whole conversations, checked against the real turn handler on a real database.

Hypothesis drives one respondent (over SMS or Telegram) through the bilingual questionnaire
with the real `TurnHandler` on a fresh database each example (an SQLite file copied from one
migrated template; on PostgreSQL, with DIBOT_DATABASE_URL, the tables emptied), while a small
model of its own keeps what must hold. The respondent answers with digits, words, letters and
other scripts' digits, taps fresh and stale buttons, edits old messages, sends nonsense and
media, repeats earlier provider message ids, says BACK, SKIP, LATER, HELP, REPEAT, STOP, START
(and YES while opted out), RESTART then confirms or cancels, switches language, is silent for
more or less than the 14-day resume window, and the process restarts (every connection
closed, a new handler, the same database). After every message:

- the answers stored, assessment by assessment (live, completed, abandoned), equal the
  model's: none lost, none doubled, a skip stored as one, BACK withdrawing exactly one;
- the conversation is where the documented rules put it: an answer moves to the next question,
  BACK to the previous, nonsense never answers (the third miss at a question skips it), a
  stale tap or an edit changes nothing, STOP silences everything until START, a long silence
  brings the resume prompt, and past a few messages in a row that answer nothing the bot falls
  silent instead of looping;
- the one reply (or none) asks what the model expects, with that prompt's buttons, in the
  respondent's language;
- a provider message id seen before changes nothing, and gets exactly the replies it got the
  first time.
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import sqlite3
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bot.engine import MISSES_BEFORE_AUTO_SKIP, SILENT_AFTER, SILENT_AFTER_DONE
from bot.matching import Match, command_of, language_named, match_option
from bot.messages import Inbound, Outbound
from bot.render import BUTTON_SEPARATOR
from bot.state import State
from dibot.turns import TurnHandler, TurnResult
from flows.loader import load_flow
from flows.model import (
    SKILLS_BASES,
    Flow,
    Mode,
    Option,
    OptionPair,
    Question,
    SkillsChoice,
    Step,
    TopicBreak,
)
from storage.database import make_engine
from storage.models import Answer, Assessment, Conversation, Respondent, table

FLOW: Flow = load_flow()
"""The shipped flow in both its languages: a new respondent chooses one first."""
EXAMPLES = 1000
EXAMPLES_ON_POSTGRESQL = 250
"""PostgreSQL, with a server round trip per statement, takes four times as long per turn."""
STEPS = 15
SMS_URN = "tel:+447700900123"
TELEGRAM_URN = "telegram:810123"
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TICK = timedelta(minutes=1)
"""Time between one message and the next."""
WINDOW = timedelta(days=FLOW.resume_after_days)
PROMPTS = ("language", "consent", "mode", "resume", "restart")
"""Stages whose prompt's key is the stage's own name."""
TEXT = ""
"""An expected reply with no buttons (help, LATER, STOP, the priorities…)."""

Kind = Literal["text", "button", "edited", "media"]

runs = {"examples": 0, "messages": 0}
"""What the machine did, for the test's own count (and the report)."""


# --- what the respondent can send, worked out from the flow once --------------------------


def other_languages(language: str) -> tuple[str, ...]:
    """The order the engine tries languages in: the respondent's own, then the rest."""
    return (language, *(lang for lang in FLOW.languages if lang != language))


def group_of(key: str) -> str:
    """What decides the options of `key`: its prompt, "topic", "skills" or its scale."""
    if key in PROMPTS:
        return key
    if key.endswith(".topic"):
        return "topic"
    if key == SkillsChoice.key:
        return "skills"
    return FLOW.question(key).aspect


def options_of(key: str) -> tuple[Option, ...]:
    """The options of what `key` asks: a prompt, a topic break, the skills choice, a question."""
    group = group_of(key)
    return FLOW.prompts[group].options if group in FLOW.prompts else FLOW.scales[group].options


def pairs_of(key: str) -> tuple[OptionPair, ...]:
    group = group_of(key)
    return () if group in FLOW.prompts else FLOW.scales[group].pairs


def is_plain(text: str) -> bool:
    """Neither a command nor a language's name, in any language order."""
    return all(
        command_of(FLOW, text, other_languages(lang)) is None for lang in FLOW.languages
    ) and (language_named(FLOW, text) is None)


def answer_forms(key: str, language: str) -> dict[int, tuple[str, ...]]:
    """Replies that choose each option of `key` for a respondent in `language`: the number,
    padded or with a full stop, in Arabic-Indic and full-width digits, the letter, and the
    option's words and texts that choose it alone (a word two options share is left out)."""
    options, pairs = options_of(key), pairs_of(key)
    languages = other_languages(language)
    forms: dict[int, tuple[str, ...]] = {}
    for option in options:
        n = option.number
        letter = chr(ord("a") + n - 1)
        always = (
            str(n),
            f" {n} ",
            f"{n}.",
            chr(0x660 + n),
            chr(0xFF10 + n),
            letter,
            f"{letter.upper()})",
        )
        words = [
            *(
                text
                for lang in languages
                for text in (option.sms.get(lang), option.label.get(lang))
                if text
            ),
            *(word for lang in languages for word in option.words.get(lang, ())),
        ]
        chosen = [
            word
            for word in words
            if is_plain(word) and match_option(FLOW, options, word, languages, pairs) == Match(n)
        ]
        forms[n] = always + tuple(dict.fromkeys(chosen))
    return forms


GROUPS = (*PROMPTS, "topic", "skills", *FLOW.scales)
EXAMPLE_KEYS = {
    group_of(step.key): step.key
    for mode in FLOW.modes.values()
    for step in mode.steps
    if group_of(step.key) not in PROMPTS
}
FORMS = {
    (group, lang): answer_forms(EXAMPLE_KEYS.get(group, group), lang)
    for group in GROUPS
    for lang in FLOW.languages
}
"""(what decides the options, language) -> option number -> replies that choose it."""

NONSENSE = (
    "",
    "   ",
    "0",
    "42",
    "٩٩",
    "xyzzy qwv",
    "purple elephant",
    "🦄",
    "!!!",
    "\u200b",
    "<b>hmm</b>",
    "x'); DROP TABLE answers; --",
    "9" * 40,
)
"""Replies that choose nothing, at any prompt or question."""
COMMANDS = {
    name: tuple(dict.fromkeys(w for lang in FLOW.languages for w in words.get(lang, ())))
    for name, words in FLOW.commands.items()
}
LANGUAGE_WORDS = {
    lang: tuple(w for w in FLOW.language_words[lang] if command_of(FLOW, w, FLOW.languages) is None)
    for lang in FLOW.languages
}


def cased(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.title(), f" {word} ", f"/{word}"])


# --- the model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """What a message means, as the model reads it (the machine sends the words)."""

    kind: Kind
    option: int | None = None
    """For text: the option it chooses of what is being asked (None: it chooses nothing)."""
    command: str | None = None
    language: str | None = None
    """For text: the language it names, to switch to."""
    payload: tuple[str, str] = ("", "")
    """For a button: the key and the number it carries."""
    several: tuple[int, ...] = ()
    """For text: options for the questions of a run in order ("3 4 2"), several answers a
    text; `option` is None then."""


@dataclass
class ModelAssessment:
    mode: str
    answers: dict[str, int | None] = field(default_factory=dict)
    """Question key -> option, or None for a skip."""
    basis: str | None = None
    status: Literal["live", "completed", "abandoned"] = "live"


@dataclass
class Model:
    """The conversation as the documented rules say it must be."""

    stage: str = "new"
    language: str = "en"
    language_chosen: bool = False
    mode: str | None = None
    question: str | None = None
    answers: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    topics_skipped: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    basis: str | None = None
    batch: bool = False
    """Several answers a text: a run of questions on one scale is asked in one message."""
    misses: int = 0
    resting: bool = False
    unanswered: int = 0
    opted_out: bool = False
    last_seen: datetime | None = None
    assessments: list[ModelAssessment] = field(default_factory=list)

    # What is being asked.

    def asked(self) -> str | None:
        """The key of what the respondent is asked now (prompt, question…), None if nothing."""
        if self.stage in PROMPTS:
            return self.stage
        if self.stage == "declined":
            return "consent"
        if self.stage in ("asking", "paused"):
            return self.question
        return None

    def current(self) -> str:
        """What the engine shows again: the consent prompt for a new or declined respondent."""
        if self.stage in ("new", "declined"):
            return "consent"
        asked = self.asked()
        return TEXT if asked is None else asked

    def step_of(self, key: str) -> Step:
        mode = self.flow_mode()
        return mode.steps[mode.positions[key]]

    def flow_mode(self) -> Mode:
        assert self.mode is not None
        return FLOW.modes[self.mode]

    def next_step(self) -> Step | None:
        mode = self.flow_mode()
        passed = set(self.history)
        for step in mode.batch_steps if self.batch else mode.steps:
            if step.key in passed:
                continue
            if isinstance(step, SkillsChoice):
                if self.lacks_device() and not self.skills_begun(mode):
                    return step
                continue
            skills = isinstance(step, TopicBreak) or (
                isinstance(step, Question) and step.section == "skills"
            )
            if skills and self.basis == SKILLS_BASES[0]:
                continue
            if isinstance(step, Question) and (
                step.heading in self.topics_skipped or not self.asks_interest(mode, step)
            ):
                continue
            return step
        return None

    def run(self) -> list[Question]:
        """The questions asked together with the current one (several answers a text): the
        following ones on its scale, section and heading that would be asked now."""
        first = self.step_of(self.question or "")
        assert isinstance(first, Question)
        if not self.batch:
            return [first]
        steps = self.flow_mode().batch_steps
        run = [first]
        for step in steps[steps.index(first) + 1 :]:
            same = isinstance(step, Question) and (step.section, step.heading, step.aspect) == (
                first.section,
                first.heading,
                first.aspect,
            )
            if not same:
                break
            assert isinstance(step, Question)
            if step.key not in self.history and self.asks_interest(self.flow_mode(), step):
                run.append(step)
        return run

    def lacks_device(self) -> bool:
        access = FLOW.scales["access"]
        return any(
            f"{item}.access" in self.answers
            and access.option(self.answers[f"{item}.access"]).score
            <= FLOW.priority.missing_basic_at_most
            for item in FLOW.skills_choice_if_missing
        )

    def skills_begun(self, mode: Mode) -> bool:
        choice = mode.positions[SkillsChoice.key]
        return any(mode.positions[key] > choice for key in self.history)

    def asks_interest(self, mode: Mode, question: Question) -> bool:
        if question.aspect != "interest" or mode.interest_if_skill_at_most is None:
            return True
        skill = self.answers.get(f"{question.item}.skill")
        if skill is None:
            return False
        return FLOW.scales["skill"].option(skill).score <= mode.interest_if_skill_at_most

    def live(self) -> ModelAssessment:
        assert self.assessments[-1].status == "live"
        return self.assessments[-1]

    # One message.

    def take(self, sent: Sent, now: datetime) -> tuple[Model, str | None]:
        """The model after `sent` at `now`, and the reply expected: a prompt's key, TEXT, or
        None for no reply at all."""
        turn = _ModelTurn(copy.deepcopy(self), now)
        expected = turn.dispatch(sent)
        after = turn.model
        if not turn.noise:
            after.unanswered = 0
            return after, expected
        count = self.unanswered + 1
        if count > (SILENT_AFTER_DONE if self.stage == "done" else SILENT_AFTER):
            quiet = copy.deepcopy(self)
            quiet.unanswered, quiet.last_seen = count, now
            return quiet, None
        after.unanswered = count
        return after, expected


@dataclass
class _ModelTurn:
    model: Model
    now: datetime
    noise: bool = False

    def dispatch(self, sent: Sent) -> str | None:
        m = self.model
        command = sent.command if sent.kind == "text" else None
        previous = m.last_seen
        if m.opted_out:
            if command not in ("start", "opt_in"):
                return None  # STOP silences everything until START
            m.opted_out, m.last_seen = False, self.now
            return self.opted_in()
        m.last_seen = self.now
        if command == "stop":
            m.opted_out = True
            return TEXT
        if sent.kind == "text" and sent.language is not None:
            return self.switch(sent.language)
        if m.stage == "new":
            return self.first_prompt()
        if m.stage in ("asking", "paused") and previous and self.now - previous > WINDOW:
            m.stage, m.misses = "resume", 0
            return "resume"
        if sent.kind == "button":
            return self.tap(*sent.payload)
        if command is not None:
            return self.command(command)
        if sent.kind in ("edited", "media"):
            self.noise = True
            return m.current()
        if sent.several:
            return self.answer_run(sent.several)
        return self.answer(sent.option)

    def first_prompt(self) -> str:
        m = self.model
        m.misses = 0
        m.stage = "consent" if m.language_chosen else "language"
        return m.stage

    def switch(self, language: str) -> str:
        m = self.model
        m.language, m.language_chosen, m.misses = language, True, 0
        if m.stage in ("new", "language", "declined"):
            m.stage = "consent"
        elif m.stage == "paused":
            m.stage = "asking"
        return m.current()

    def opted_in(self) -> str:
        m = self.model
        if m.stage in ("new", "declined"):
            return self.first_prompt()
        if m.stage == "paused":
            m.stage = "asking"
        return m.current()

    def command(self, command: str) -> str:
        m = self.model
        if command == "help":
            return TEXT
        if command == "repeat":
            return m.current()
        if command == "start":
            if m.stage == "declined":
                m.stage, m.misses = "consent", 0
                return "consent"
            if m.stage == "resume":
                return self.carry_on()
            if m.stage == "paused":
                m.stage = "asking"
            return m.current()
        if command == "later":
            if m.stage in ("asking", "paused"):
                m.stage = "paused"
            elif m.stage != "done":
                m.resting = True
            return TEXT
        if command == "restart":
            if m.stage in ("asking", "paused", "resume", "done"):
                m.stage, m.misses = "restart", 0
                return "restart"
            if m.stage == "declined":
                m.stage, m.misses = "consent", 0
            return m.current()
        if m.stage == "paused":
            m.stage = "asking"
        if command == "back":
            return self.back()
        assert command == "skip", command
        return self.skip()

    def tap(self, key: str, number: str) -> str:
        m = self.model
        if key != m.asked() or not (number.isascii() and number.isdigit()):
            self.noise = True
            return m.current()
        if m.stage == "paused":
            m.stage = "asking"
        count = len(options_of(key))
        return self.answer(int(number) if 1 <= int(number) <= count else None)

    def answer(self, option: int | None) -> str:
        m = self.model
        if m.stage == "done":
            self.noise = True
            return TEXT
        if m.stage in ("paused", "declined"):
            m.stage = "asking" if m.stage == "paused" else "consent"
            if option is None:
                self.noise = True
                return m.current()
        if option is None and m.resting:
            self.noise, m.resting = True, False
            return m.current()
        m.resting = False
        if option is None:
            return self.missed()
        m.misses = 0
        if m.stage == "language":
            return self.switch(FLOW.languages[option - 1])
        if m.stage == "consent":
            m.stage = "mode" if option == 1 else "declined"
            return "mode" if option == 1 else TEXT
        if m.stage == "mode":
            return self.begin(("quick", "full", "full")[option - 1], batch=option == 3)
        if m.stage == "resume":
            return self.carry_on() if option == 1 else self.start_again()
        if m.stage == "restart":
            return self.start_again() if option == 1 else self.carry_on()
        assert m.question is not None
        step = m.step_of(m.question)
        if isinstance(step, TopicBreak):
            return self.pass_topic(step, skip=option == 2)
        if isinstance(step, SkillsChoice):
            return self.choose_basis(SKILLS_BASES[option - 1])
        if m.batch:
            return self.answer_run((option,))
        m.answers[step.key] = option
        m.history.append(step.key)
        m.live().answers[step.key] = option
        return self.advance()

    def answer_run(self, options: tuple[int, ...]) -> str:
        """Answers to a run in order: kept, and the run done once each has an answer."""
        m = self.model
        run = m.run()
        if len(options) > len(run):
            self.noise = True
            if m.stage == "paused":  # back after LATER: shown again, no miss
                m.stage = "asking"
                return m.current()
            m.misses += 1
            return m.current()
        m.stage, m.misses = "asking", 0
        for question, option in zip(run, options, strict=False):
            m.answers[question.key] = m.live().answers[question.key] = option
        finished = all(question.key in m.answers for question in run)
        taken = run if finished else run[: len(options)]
        m.history.extend(q.key for q in taken if q.key not in m.history)
        return self.advance()

    def missed(self) -> str:
        m = self.model
        self.noise = True
        m.misses += 1
        at_question = m.stage == "asking" and isinstance(m.step_of(m.question or ""), Question)
        if at_question and m.misses >= MISSES_BEFORE_AUTO_SKIP and not m.batch:
            return self.skip()
        return m.current()

    def begin(self, mode: str, batch: bool = False) -> str:
        self.reset()
        self.model.mode, self.model.batch = mode, batch
        self.model.assessments.append(ModelAssessment(mode))
        return self.advance()

    def reset(self) -> None:
        m = self.model
        m.stage, m.mode, m.question, m.basis, m.misses = "mode", None, None, None, 0
        m.batch = False
        m.answers, m.skipped, m.topics_skipped, m.history = {}, [], [], []

    def carry_on(self) -> str:
        m = self.model
        if m.next_step() is None:
            m.stage = "done"
            return TEXT
        m.stage = "asking"
        return m.current()

    def start_again(self) -> str:
        m = self.model
        if m.next_step() is not None:
            m.live().status = "abandoned"
        self.reset()
        return "mode"

    def pass_topic(self, topic: TopicBreak, skip: bool) -> str:
        m = self.model
        if skip:
            m.topics_skipped.append(topic.heading)
        m.history.append(topic.key)
        return self.advance()

    def choose_basis(self, basis: str) -> str:
        m = self.model
        m.basis = m.live().basis = basis
        m.history.append(SkillsChoice.key)
        return self.advance()

    def skip(self) -> str:
        m = self.model
        if m.stage != "asking":
            return m.current()
        step = m.step_of(m.question or "")
        if isinstance(step, TopicBreak):
            return self.pass_topic(step, skip=True)
        if isinstance(step, SkillsChoice):
            return self.choose_basis(SKILLS_BASES[0])
        if m.batch:
            return self.skip_run(step)
        m.skipped.append(step.key)
        m.history.append(step.key)
        m.live().answers[step.key] = None
        return self.advance()

    def skip_run(self, first: Question) -> str:
        """SKIP at a run: a topic not begun is skipped as at its topic break; otherwise the
        run's unanswered questions are skipped and its answers kept."""
        m = self.model
        run = m.run()
        topic = f"{first.heading}.topic"
        begun = any(
            key in FLOW.questions and FLOW.question(key).heading == first.heading
            for key in m.history
        )
        if (
            first.aspect == "skill"
            and topic in m.flow_mode().positions
            and not begun
            and not any(q.key in m.answers for q in run)
        ):
            m.topics_skipped.append(first.heading or "")
            m.history.append(topic)
            return self.advance()
        for question in run:
            if question.key not in m.answers:
                m.skipped.append(question.key)
                m.live().answers[question.key] = None
            m.history.append(question.key)
        return self.advance()

    def back(self) -> str:
        m = self.model
        if m.stage != "asking" or not m.history:
            return m.current()
        if m.batch and m.history[-1] in FLOW.questions:
            newest = FLOW.question(m.history[-1])
            group = (newest.section, newest.heading, newest.aspect)
            taken: list[str] = []
            while m.history and m.history[-1] in FLOW.questions:
                question = FLOW.question(m.history[-1])
                if (question.section, question.heading, question.aspect) != group:
                    break
                taken.insert(0, m.history.pop())
            for key in taken:
                if key in m.skipped:
                    m.live().answers.pop(key)
            m.skipped = [key for key in m.skipped if key not in taken]
            m.question, m.misses = taken[0], 0
            return taken[0]
        last = m.history.pop()
        if last in m.answers or last in m.skipped:
            m.live().answers.pop(last)
        m.answers.pop(last, None)
        m.skipped = [key for key in m.skipped if key != last]
        if last == SkillsChoice.key:
            m.basis = m.live().basis = None
        if last.endswith(".topic"):
            heading = last.split(".", 1)[0]
            m.topics_skipped = [h for h in m.topics_skipped if h != heading]
        m.question, m.misses = last, 0
        return last

    def advance(self) -> str:
        m = self.model
        following = m.next_step()
        m.misses = 0
        if following is None:
            m.stage, m.question = "done", None
            m.live().status = "completed"
            return TEXT
        m.stage, m.question = "asking", following.key
        return following.key


# --- what the database holds --------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    state: State
    assessments: list[tuple[str, str, str | None, dict[str, int | None]]]
    """(mode, status, skills basis, answers) of each assessment, oldest first."""
    respondent: tuple[bool, str]
    """(opted out, language)."""


ASSESSMENTS, ANSWERS = table(Assessment), table(Answer)
CONVERSATIONS, RESPONDENTS = table(Conversation), table(Respondent)
READ_RESPONDENT = sa.select(
    CONVERSATIONS.c.state, RESPONDENTS.c.opted_out, RESPONDENTS.c.language
).join_from(CONVERSATIONS, RESPONDENTS, CONVERSATIONS.c.respondent_id == RESPONDENTS.c.id)
READ_ANSWERS = (
    sa.select(
        ASSESSMENTS.c.id,
        ASSESSMENTS.c.mode,
        ASSESSMENTS.c.completed_at,
        ASSESSMENTS.c.abandoned_at,
        ASSESSMENTS.c.skills_basis,
        ANSWERS.c.question,
        ANSWERS.c.option,
    )
    .join_from(ASSESSMENTS, ANSWERS, ANSWERS.c.assessment_id == ASSESSMENTS.c.id, isouter=True)
    .order_by(ASSESSMENTS.c.id)
)


def read_stored(engine: sa.Engine) -> Stored:
    """The one respondent's conversation, assessments and answers (each example's database
    holds one respondent)."""
    with engine.connect() as conn:
        state, opted_out, language = conn.execute(READ_RESPONDENT).one()
        rows = conn.execute(READ_ANSWERS).all()
        conn.rollback()
    listed: dict[int, tuple[str, str, str | None, dict[str, int | None]]] = {}
    for row in rows:
        if row.completed_at is not None:
            status = "completed"
        else:
            status = "live" if row.abandoned_at is None else "abandoned"
        answers = listed.setdefault(row.id, (row.mode, status, row.skills_basis, {}))[3]
        if row.question is not None:
            assert row.question not in answers
            answers[row.question] = row.option
    return Stored(State.from_json(state), list(listed.values()), (bool(opted_out), language))


def check_stored(stored: Stored, model: Model) -> None:
    state = stored.state
    assert (state.stage, state.question, state.mode) == (model.stage, model.question, model.mode)
    assert dict(state.answers) == model.answers
    assert list(state.history) == model.history
    assert list(state.skipped) == model.skipped
    assert list(state.topics_skipped) == model.topics_skipped
    assert state.skills_basis == model.basis
    assert (state.language, state.language_chosen) == (model.language, model.language_chosen)
    assert (state.misses, state.resting, state.unanswered) == (
        model.misses,
        model.resting,
        model.unanswered,
    )
    assert state.opted_out == model.opted_out
    assert state.last_seen == (model.last_seen.isoformat() if model.last_seen else None)
    assert stored.assessments == [(a.mode, a.status, a.basis, a.answers) for a in model.assessments]
    assert stored.respondent == (model.opted_out, model.language)


def check_reply(replies: tuple[Outbound, ...], expected: str | None, language: str) -> None:
    if expected is None:
        assert replies == ()
        return
    assert len(replies) == 1, replies
    (reply,) = replies
    assert reply.text.strip()
    if expected == TEXT:
        assert reply.buttons == ()
        return
    options = options_of(expected)
    assert [b.payload for b in reply.buttons] == [
        f"{expected}{BUTTON_SEPARATOR}{o.number}" for o in options
    ]
    assert [b.label for b in reply.buttons] == [
        f"{o.number} {o.sms.get(language) or o.sms[FLOW.languages[0]]}" for o in options
    ]


# --- the machine --------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A message as sent once, to be sent again with the same provider id."""

    channel: str
    message_id: str
    inbound: Inbound
    replies: tuple[Outbound, ...]


class Database:
    """One engine for the whole test, so its statements are compiled once, on a fresh database
    for each example: on SQLite a copy of one migrated file (connections open the copy of the
    moment), on PostgreSQL the test database emptied."""

    def __init__(self, url: str, scratch: Path) -> None:
        parsed = sa.engine.make_url(url)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        self.template = Path(parsed.database or "")
        self.scratch = scratch
        self.copy: Path | None = None
        if self.sqlite:
            self.engine = make_engine(url, creator=self.connect)
        else:  # not waiting for each commit to reach the disk: the test is not about crashes
            self.engine = make_engine(url, connect_args={"options": "-c synchronous_commit=off"})

    def connect(self) -> sqlite3.Connection:
        assert self.copy is not None
        return sqlite3.connect(self.copy, check_same_thread=False)

    def fresh(self) -> None:
        self.discard()
        if not self.sqlite:
            with self.engine.begin() as conn:
                conn.execute(sa.delete(table(Respondent)))  # the rest cascades
            return
        self.copy = Path(tempfile.mkdtemp(prefix="dibot-model-", dir=self.scratch)) / "dibot.db"
        shutil.copyfile(self.template, self.copy)

    def discard(self) -> None:
        self.engine.dispose()
        if self.copy is not None:
            shutil.rmtree(self.copy.parent)
            self.copy = None


class Conversations(RuleBasedStateMachine):
    database: Database
    """Set by the test, on a subclass of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.database.fresh()
        self.engine = self.database.engine
        self.now = START
        self.handler = TurnHandler(self.engine, FLOW, clock=lambda: self.now)
        self.model = Model()
        self.sent: list[Message] = []
        self.channel = "sms"
        self.urn = SMS_URN
        self.ids = itertools.count(1)
        runs["examples"] += 1

    def teardown(self) -> None:
        self.database.discard()

    # Sending.

    def send(self, sent: Sent, inbound: Inbound) -> None:
        self.now += TICK
        sms = self.channel == "sms"
        message_id = f"SM{uuid.uuid4().hex}" if sms else str(next(self.ids))
        result = self.handler.handle(
            channel=self.channel,
            message_id=message_id,
            urn=self.urn,
            inbound=inbound,
            queue_replies=self.channel == "telegram",
        )
        runs["messages"] += 1
        assert not result.duplicate
        self.model, expected = self.model.take(sent, self.now)
        check_reply(result.replies, expected, self.model.language)
        check_stored(read_stored(self.engine), self.model)
        self.sent.append(Message(self.channel, message_id, inbound, result.replies))

    def send_text(self, text: str, sent: Sent) -> None:
        self.send(sent, Inbound(text=text))

    def asked(self) -> str | None:
        """What a reply would answer now, as far as words go (None: no question)."""
        if self.model.opted_out:
            return None
        return self.model.asked()

    # Rules.

    @initialize(
        channel=st.sampled_from(["sms", "telegram"]),
        begin=st.sampled_from(["new", "quick", "full"]),
        language=st.sampled_from([1, 2]),
        answers=st.lists(st.integers(min_value=1, max_value=5), max_size=10),
    )
    def arrive(self, channel: str, begin: str, language: int, answers: list[int]) -> None:
        """A new respondent; most of them are brought (through checked turns like any other)
        to a quick or full assessment, some way into it, where most rules have most to do."""
        self.channel = channel
        self.urn = SMS_URN if channel == "sms" else TELEGRAM_URN
        if begin == "new":
            return
        mode = 1 if begin == "quick" else 2
        for option in (None, language, 1, mode, *answers):
            asked = self.asked()
            if option is None or asked is None:
                self.send_text("Hi", Sent("text"))
            else:
                chosen = min(option, len(options_of(asked)))
                self.send_text(str(chosen), Sent("text", option=chosen))

    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        """A reply that chooses an option of what is asked (or any words before the first
        prompt and after the end)."""
        asked = self.asked()
        if asked is None:
            self.send_text("1", Sent("text", option=1))
            return
        forms = FORMS[group_of(asked), self.model.language]
        option = data.draw(st.sampled_from(sorted(forms)), label="option")
        text = data.draw(st.sampled_from(forms[option]), label="text")
        self.send_text(text, Sent("text", option=option))

    @rule(choices=st.lists(st.integers(min_value=1, max_value=5), min_size=2, max_size=8))
    def answer_several(self, choices: list[int]) -> None:
        """Digits in a row, to get far into an assessment (and to its end)."""
        for choice in choices:
            asked = self.asked()
            option = 1 if asked is None else min(choice, len(options_of(asked)))
            self.send_text(str(option), Sent("text", option=option))

    @rule(text=st.sampled_from(NONSENSE))
    def nonsense(self, text: str) -> None:
        run = self.run()
        if text.isascii() and text.isdigit() and 1 < len(text) <= len(run):
            # "42" to a run of two or more is a 4 and a 2, as "3425" is to a run of four
            self.send_text(text, Sent("text", several=tuple(int(d) for d in text)))
            return
        self.send_text(text, Sent("text"))

    def run(self) -> list[Question]:
        """The run asked now (several answers a text), or none."""
        m = self.model
        if m.opted_out or not m.batch or m.stage not in ("asking", "paused"):
            return []
        if not isinstance(m.step_of(m.question or ""), Question):
            return []
        return m.run()

    @precondition(lambda self: bool(self.run()))
    @rule(data=st.data(), separator=st.sampled_from([" ", ",", ", ", "-", "  "]))
    def answer_run(self, data: st.DataObject, separator: str) -> None:
        """Several answers a text: one number a question of the run, or too few, or too many."""
        count = len(self.run())
        size = data.draw(st.integers(min_value=1, max_value=count + 1), label="how many")
        options = data.draw(
            st.lists(st.integers(min_value=1, max_value=5), min_size=size, max_size=size),
            label="options",
        )
        self.send_text(separator.join(map(str, options)), Sent("text", several=tuple(options)))

    @rule(number=st.integers(min_value=1, max_value=9))
    def late_reply(self, number: int) -> None:
        """A digit meant for an earlier question, which by SMS reads as an answer to this one
        when it is in range, and as a miss when it is not."""
        asked = self.asked()
        count = len(options_of(asked)) if asked is not None else 0
        self.send_text(
            str(number), Sent("text", option=number if number <= count or asked is None else None)
        )

    @rule()
    def media(self) -> None:
        self.send(Sent("media"), Inbound(text="", has_media=True))

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        """A provider delivers an earlier message again (a retry, the fallback URL)."""
        message = data.draw(st.sampled_from(self.sent), label="message")
        before = read_stored(self.engine)
        self.now += TICK
        result = self.handler.handle(
            channel=message.channel,
            message_id=message.message_id,
            urn=self.urn,
            inbound=message.inbound,
            queue_replies=message.channel == "telegram",
        )
        runs["messages"] += 1
        assert result == TurnResult(replies=message.replies, duplicate=True, queued=(), events=())
        assert read_stored(self.engine) == before

    @precondition(lambda self: self.channel == "telegram")
    @rule(number=st.integers(min_value=1, max_value=9))
    def tap(self, number: int) -> None:
        """A tap on a button of what is asked now."""
        key = self.asked() or "consent"
        payload = f"{key}{BUTTON_SEPARATOR}{number}"
        self.send(Sent("button", payload=(key, str(number))), Inbound(text="", button=payload))

    @precondition(lambda self: self.channel == "telegram")
    @rule(data=st.data())
    def stale_tap(self, data: st.DataObject) -> None:
        """A tap on a button under an earlier message (or a payload no button has)."""
        earlier = [
            button.payload
            for message in self.sent
            for reply in message.replies
            for button in reply.buttons
        ]
        payload = data.draw(
            st.sampled_from([*earlier, "consent:x", "nonsense", "GS.skill:1", ":", "mode:9"]),
            label="payload",
        )
        key, _, number = payload.rpartition(BUTTON_SEPARATOR)
        self.send(Sent("button", payload=(key, number)), Inbound(text="", button=payload))

    @precondition(lambda self: self.channel == "telegram")
    @rule(text=st.sampled_from(["1", "2", "3", "back", "stop", "Cymraeg"]))
    def edit(self, text: str) -> None:
        """An edit of an earlier message: never an answer, never a command."""
        self.send(Sent("edited"), Inbound(text=text, edited=True))

    def say(self, data: st.DataObject, name: str) -> None:
        word = data.draw(st.sampled_from(COMMANDS[name]).flatmap(cased), label="word")
        self.send_text(word, Sent("text", command=name))

    @rule(data=st.data(), name=st.sampled_from(["help", "repeat"]))
    def ask_for_help(self, data: st.DataObject, name: str) -> None:
        self.say(data, name)

    @rule(data=st.data())
    def back(self, data: st.DataObject) -> None:
        self.say(data, "back")

    @rule(data=st.data())
    def skip(self, data: st.DataObject) -> None:
        self.say(data, "skip")

    @rule(data=st.data())
    def later(self, data: st.DataObject) -> None:
        self.say(data, "later")

    @rule(data=st.data())
    def stop(self, data: st.DataObject) -> None:
        self.say(data, "stop")

    @rule(data=st.data())
    def start(self, data: st.DataObject) -> None:
        """START (or, while opted out, YES: Twilio lifts its block on it too)."""
        names = ["start", "opt_in"] if self.model.opted_out else ["start"]
        self.say(data, data.draw(st.sampled_from(names), label="command"))

    @rule(data=st.data(), confirm=st.sampled_from([None, 1, 2]))
    def restart(self, data: st.DataObject, confirm: int | None) -> None:
        """RESTART, then perhaps start again (1) or carry on (2) at once."""
        self.say(data, "restart")
        if confirm is not None:
            asked = self.asked()
            option = confirm if asked is None or confirm <= len(options_of(asked)) else None
            self.send_text(str(confirm), Sent("text", option=option))

    @rule(data=st.data(), language=st.sampled_from(FLOW.languages))
    def switch_language(self, data: st.DataObject, language: str) -> None:
        word = data.draw(st.sampled_from(LANGUAGE_WORDS[language]).flatmap(cased), label="word")
        self.send_text(word, Sent("text", language=language))

    @rule()
    def restart_process(self) -> None:
        """The process dies and another takes over: every connection closed, a new handler,
        the same database."""
        self.engine.dispose()
        self.handler = TurnHandler(self.engine, FLOW, clock=lambda: self.now)
        if self.sent:
            check_stored(read_stored(self.engine), self.model)

    @rule(gap=st.sampled_from([timedelta(days=13, hours=23), WINDOW + TICK, timedelta(days=40)]))
    def time_passes(self, gap: timedelta) -> None:
        """Silence for a while: under the resume window, just past it, or long past it."""
        self.now += gap


def test_what_the_respondent_sends_means_what_the_model_says() -> None:
    """The machine's words, checked once: each answer form chooses its option (the number and
    the letter always do), nonsense chooses nothing, each command word says its command and
    each language word names its language, in either language order."""
    for (group, language), forms in FORMS.items():
        key = EXAMPLE_KEYS.get(group, group)
        options, pairs, languages = options_of(key), pairs_of(key), other_languages(language)
        for number, texts in forms.items():
            for text in (str(number), chr(ord("a") + number - 1)):
                assert text in texts, (key, text)
            for text in texts:
                assert match_option(FLOW, options, text, languages, pairs) == Match(number)
        for text in NONSENSE:
            match = match_option(FLOW, options, text, languages, pairs)
            assert (match.option, match.either) == (None, None), (key, text)
            assert is_plain(text), text
    for name, words in COMMANDS.items():
        for word in words:
            for language in FLOW.languages:
                assert command_of(FLOW, word, other_languages(language)) == name, word
    for language, words in LANGUAGE_WORDS.items():
        for word in words:
            assert language_named(FLOW, f"/{word.upper()}") == language


def test_conversations_follow_the_model(database_url: str, tmp_path: Path) -> None:
    memory = Path("/dev/shm")  # each turn commits with fsync: far cheaper in memory
    scratch = memory if memory.is_dir() and os.access(memory, os.W_OK) else tmp_path

    class OnThisDatabase(Conversations):
        database = Database(database_url, scratch)

    examples = EXAMPLES if OnThisDatabase.database.sqlite else EXAMPLES_ON_POSTGRESQL
    examples_before = runs["examples"]
    try:
        run_state_machine_as_test(
            OnThisDatabase,
            settings=settings(
                max_examples=examples,
                stateful_step_count=STEPS,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        OnThisDatabase.database.discard()
    assert runs["examples"] - examples_before >= examples
    print(f"conversation model: {runs['examples']} examples, {runs['messages']} messages")
