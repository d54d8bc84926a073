"""Assisted assessment: an outreach worker fills in the assessment with a resident (on the
doorstep, on the phone), one question a page, through the same flow, engine and turn handler
as the resident's texts.

The rules it keeps:
- every step is taken as the resident's inbound text by `dibot.turns.TurnHandler` on channel
  "assisted": the chosen option's number, or BACK, SKIP or START in the resident's language, so
  it is matched, stored and scored exactly as over SMS, in the resident's one conversation. A
  resident part-way through by text is taken over where they are (and can carry on by text
  afterwards); nothing is queued to be texted, and the turns are on their timeline with channel
  "assisted". Left part-way, it is where they carry on by text, and the usual reminders may
  follow, as for anyone who stopped answering;
- a page names the conversation as it showed it (the prompt's key and a digest of the saved
  state), and the turn is taken only if the conversation is still exactly so under the turn's
  lock: a stale tab, a double submit or a text from the resident in between never answers the
  wrong question, and is refused with a message saying so;
- the assessment records who helped: `assessments.assisted_by`, the member's email, set by the
  first assisted turn that records into it (starting it, or answering in one begun by text);
- the privacy notice is asked as it is by text, and "no" stops the assessment; nothing starts
  for a resident who opted out, or while a worker's follow-up thread holds their texts;
- every view and every step, taken or refused, is a line in the audit log.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot.engine import step
from bot.messages import Inbound
from bot.render import fill, pick, topic_counts
from bot.state import State
from dashboard.accounts import StaffMember
from dashboard.site import Site, respondent_or_404
from dibot.turns import TurnHandler
from flows.model import Flow, Option, Question, SkillsChoice, TopicBreak
from outreach.phone import masked_urn
from storage.database import read_only
from storage.models import Answer, Assessment, Conversation, FollowUpThread, table
from storage.privacy import keys_of
from storage.repository import open_thread

CHANNEL = "assisted"
"""The channel of assisted turns: their answers, inbox rows and timeline entries say it."""
AUDIT = "assisted assessment"

conversations = table(Conversation)
assessments = table(Assessment)
answers = table(Answer)
threads = table(FollowUpThread)

RECORDING_EVENTS = frozenset(
    {
        "assessment_started",
        "answered",
        "skipped",
        "cleared",
        "skills_basis_chosen",
        "assessment_completed",
    }
)
"""Events that write to the assessment: the turn that first does so marks it assisted."""

STALE = (
    "That answer was not recorded: the question it was for has already been answered, or the "
    "conversation has moved on (another tab, a second click, or a text from the resident). "
    "Check the question below with them."
)
OPTED_OUT = (
    "They have opted out of texts from the service, so an assessment cannot start. They can "
    "opt back in by texting START."
)
THREAD_OPEN = (
    "A follow-up conversation with them is open, so the assessment is on hold until it closes."
)
NO_ANSWER = "Select their answer"
NOT_AN_OPTION = "Select one of the answers shown"
NOT_NOW = "That cannot be done at this question"
RESUMED = (
    "They had not answered for a long time, so the check first asks whether to carry on or "
    "start again. Nothing was recorded for the question: choose with them below."
)

Kind = Literal["start", "question", "declined", "done"]

PROMPT_TITLES = {
    "language": "Their language",
    "consent": "Privacy notice",
    "mode": "Quick check or full assessment",
    "topic": "Next topic",
    "skills": "Questions about skills",
    "resume": "Carry on or start again",
    "restart": "Start again",
    "checkin": "Check-in",
}
"""The page's heading at each of the engine's prompts (a question is its own heading)."""


@dataclass(frozen=True)
class Choice:
    number: int
    label: str


@dataclass(frozen=True)
class Screen:
    """What the page shows for a conversation's state: the engine's current prompt."""

    kind: Kind
    key: str
    """The prompt the answer names: a question key ("GS01.skill"), a prompt ("consent"),
    or "new" / "done"."""
    text: str = ""
    """The question or prompt in the resident's language; at the end, the priorities message."""
    choices: tuple[Choice, ...] = ()
    number: int | None = None
    """The question's progress number ("Question 5 of 22"), for questions only."""
    total: int | None = None
    can_go_back: bool = False
    can_skip: bool = False
    title: str = ""
    """The page's heading when the prompt is not a question (which is its own heading)."""

    @property
    def commands(self) -> tuple[str, ...]:
        """The engine's commands this screen offers the worker."""
        if self.kind == "start":
            return ("start",)
        return (*(("back",) if self.can_go_back else ()), *(("skip",) if self.can_skip else ()))


def digest(state: State) -> str:
    """What a page names the conversation by: exactly this saved state."""
    return hashlib.sha256(state.to_json().encode("utf-8")).hexdigest()[:32]


def read_state(flow: Flow, saved: str) -> State:
    """The saved state; one that cannot be read starts again, as the turn handler does."""
    try:
        return State.from_json(saved)
    except ValueError:
        return State(language=flow.languages[0], lost_place=True)


def screen_of(flow: Flow, state: State, now: datetime) -> Screen:
    """The page for `state`: the prompt the engine is waiting on, as choices to pick from."""
    language, fallback = state.language, flow.languages[0]
    stage = state.stage

    def prompt(key: str, kind: Kind = "question", values: Mapping[str, object] = {}) -> Screen:
        shown = flow.prompts[key]
        return Screen(
            kind,
            key,
            fill(pick(shown.text, language, fallback), **values),
            _choices(shown.options, language, fallback),
            title=PROMPT_TITLES.get(key, ""),
        )

    if stage == "new":
        return Screen("start", "new")
    if stage == "done":
        said = step(flow, state, Inbound(command_word(flow, "repeat", language)), now)
        return Screen("done", "done", "\n".join(reply.text for reply in said.outbound))
    if stage == "declined":
        return prompt("consent", "declined")
    if stage in ("language", "consent", "mode", "restart"):
        return prompt(stage)
    mode = flow.modes[state.mode or ""]
    if stage == "checkin":
        asked = sum(
            isinstance(s, Question) and (not state.only or s.key in state.only) for s in mode.steps
        )
        return prompt("checkin", values={"questions": asked})
    current = mode.steps[mode.positions[state.question or ""]]
    if stage == "resume":
        number = _progress_number(flow, state)
        return prompt("resume", values={"n": number, "total": mode.total})
    back, skip = bool(state.history), True
    if isinstance(current, TopicBreak):
        intro = pick(flow.heading(current.heading).intro, language, fallback)
        counts = topic_counts(flow, mode, current.heading)
        shown = prompt("topic", values={"topic": intro, **counts})
    elif isinstance(current, SkillsChoice):
        shown = prompt("skills")
    else:
        options = flow.scale_of(current).options
        shown = Screen(
            "question",
            current.key,
            pick(current.text, language, fallback),
            _choices(options, language, fallback),
            number=current.number,
            total=mode.total,
        )
    return Screen(
        shown.kind,
        current.key,
        shown.text,
        shown.choices,
        shown.number,
        shown.total,
        can_go_back=back,
        can_skip=skip,
        title=shown.title,
    )


def _choices(options: tuple[Option, ...], language: str, fallback: str) -> tuple[Choice, ...]:
    return tuple(Choice(o.number, pick(o.label, language, fallback)) for o in options)


def _progress_number(flow: Flow, state: State) -> int:
    """The number of the current question, or of the first question after a topic break."""
    mode = flow.modes[state.mode or ""]
    for later in mode.steps[mode.positions[state.question or ""] :]:
        if isinstance(later, Question):
            return later.number
    return mode.total


def command_word(flow: Flow, command: str, language: str) -> str:
    """The command as the resident would text it, in their language."""
    words = flow.commands[command]
    return (words.get(language) or words[flow.languages[0]])[0]


@dataclass(frozen=True)
class Situation:
    """The resident's conversation as the page reads it."""

    urn: str
    state: State
    opted_out: bool
    thread_open: bool
    assisted_by: str | None
    """Who helped with their current assessment, if anyone has."""
    by_text: int
    """Answers their current assessment took by text (or Telegram), before any help."""

    @property
    def blocked(self) -> str | None:
        if self.opted_out or self.state.opted_out:
            return OPTED_OUT
        if self.thread_open:
            return THREAD_OPEN
        return None


def read_situation(conn: sa.Connection, flow: Flow, respondent: Any, now: datetime) -> Situation:
    """The respondent's conversation, their current assessment and any open follow-up thread."""
    row = conn.execute(
        sa.select(conversations.c.state, conversations.c.assessment_id).where(
            conversations.c.respondent_id == respondent.id
        )
    ).first()
    state = read_state(flow, row.state) if row is not None else State(language=flow.languages[0])
    assessment_id = row.assessment_id if row is not None else None
    assisted_by, by_text = None, 0
    if assessment_id is not None:
        assisted_by = conn.execute(
            sa.select(assessments.c.assisted_by).where(assessments.c.id == assessment_id)
        ).scalar()
        by_text = conn.execute(
            sa.select(sa.func.count()).where(
                answers.c.assessment_id == assessment_id, answers.c.channel != CHANNEL
            )
        ).scalar_one()
    thread = conn.execute(
        sa.select(threads.c.id).where(threads.c.respondent_id == respondent.id, *open_thread(now))
    ).first()
    return Situation(
        urn=keys_of(conn).decrypt(respondent.urn_cipher),
        state=state,
        opted_out=bool(respondent.opted_out),
        thread_open=thread is not None,
        assisted_by=assisted_by,
        by_text=by_text,
    )


def mark_assisted(conn: sa.Connection, respondent_id: int, email: str) -> None:
    """The resident's current assessment was helped by `email`, unless someone is named."""
    current = (
        sa.select(conversations.c.assessment_id)
        .where(conversations.c.respondent_id == respondent_id)
        .scalar_subquery()
    )
    conn.execute(
        sa.update(assessments)
        .where(assessments.c.id == current, assessments.c.assisted_by.is_(None))
        .values(assisted_by=email)
    )


@dataclass(frozen=True)
class Posted:
    """What the page posted: the step it answers, and the answer or command."""

    step: str
    at: str
    option: str
    command: str

    @classmethod
    def from_form(cls, form: Any) -> Posted:
        def value(name: str) -> str:
            found = form.get(name, "")
            return found if isinstance(found, str) else ""

        return cls(value("step"), value("at"), value("option").strip(), value("command"))


def problem_with(posted: Posted, screen: Screen) -> str | None:
    """Why the posted answer cannot be taken at `screen`, in GOV.UK's words; None if it can."""
    if posted.command:
        return None if posted.command in screen.commands else NOT_NOW
    if screen.kind not in ("question", "declined"):
        return NOT_NOW
    if not posted.option:
        return NO_ANSWER
    if posted.option not in {str(choice.number) for choice in screen.choices}:
        return NOT_AN_OPTION
    return None


def register(pages: Blueprint, site: Site) -> None:
    handlers: list[TurnHandler] = []

    def handler() -> TurnHandler:
        """The turn handler of assisted turns, on the dashboard's clock (built on first use)."""
        if not handlers:
            runtime = site.runtime
            keep = runtime.config.privacy.raw_text_days > 0
            handlers.append(
                TurnHandler(site.engine, runtime.flow, clock=site.now, keep_raw_text=keep)
            )
        return handlers[0]

    def page(
        respondent: Any, situation: Situation, *, error: str | None = None, status: int = 200
    ) -> ResponseReturnValue:
        flow = site.runtime.flow
        screen = screen_of(flow, situation.state, site.now())
        shown = screen.choices or screen.kind == "start"
        html = render_template(
            "assisted.html",
            respondent_id=respondent.id,
            phone=masked_urn(situation.urn),
            situation=situation,
            screen=screen,
            at=digest(situation.state),
            language=situation.state.language,
            default_language=flow.languages[0],
            language_name=flow.language_names.get(situation.state.language, ""),
            error=error,
            error_field="option" if shown and not situation.blocked else "main-content",
        )
        return html, status

    @pages.route(
        "/respondents/<int:respondent_id>/assisted", methods=["GET", "POST"], endpoint="assisted"
    )
    @site.staff_page
    def assisted(member: StaffMember, respondent_id: int) -> ResponseReturnValue:
        flow = site.runtime.flow
        if request.method == "GET":
            with site.engine.connect() as conn:
                respondent = respondent_or_404(read_only(conn), member, respondent_id)
                situation = read_situation(conn, flow, respondent, site.now())
            site.audit_view(member, AUDIT, respondent_id=respondent_id, detail="viewed")
            return page(respondent, situation)
        with site.engine.connect() as conn:
            # only reads, so it never waits behind a turn: the turn's lock decides (`if_state`)
            respondent = respondent_or_404(read_only(conn), member, respondent_id)
            situation = read_situation(conn, flow, respondent, site.now())
        return take_step(member, respondent, situation)

    def take_step(
        member: StaffMember, respondent: Any, situation: Situation
    ) -> ResponseReturnValue:
        flow = site.runtime.flow
        posted = Posted.from_form(request.form)
        screen = screen_of(flow, situation.state, site.now())
        expected = digest(situation.state)

        def refused(why: str, **shown: Any) -> ResponseReturnValue:
            """The page as it is now, saying why nothing was taken; an audit line of it."""
            with site.engine.begin() as conn:
                site.audit(
                    conn,
                    member,
                    AUDIT,
                    respondent_id=respondent.id,
                    detail=f"refused at {screen.key}: {why}"[:200],
                )
                now_at = read_situation(conn, flow, respondent, site.now())
            return page(respondent, now_at, **shown)

        if situation.blocked is not None:
            return refused("blocked", status=409)
        if posted.step != screen.key or posted.at != expected:
            return refused("stale", error=STALE, status=409)
        problem = problem_with(posted, screen)
        if problem is not None:
            return refused(problem, error=problem, status=400)
        language = situation.state.language
        text = command_word(flow, posted.command, language) if posted.command else posted.option
        at_start = screen.kind == "start"
        still: Callable[[State], bool] = (
            (lambda state: state.stage == "new" and not state.opted_out)
            if at_start
            else (lambda state: digest(state) == expected)
        )
        result = handler().handle(
            channel=CHANNEL,
            message_id=f"assisted-{uuid.uuid4().hex}",
            urn=situation.urn,
            inbound=Inbound(text=text),
            if_state=still,
        )
        if result.stale:
            return refused("stale", error=STALE, status=409)
        recorded = any(event.kind in RECORDING_EVENTS for event in result.events)
        with site.engine.begin() as conn:
            if recorded:
                mark_assisted(conn, respondent.id, member.email)
            now_at = read_situation(conn, flow, respondent, site.now())
            done = posted.command or "answered"
            site.audit(
                conn,
                member,
                AUDIT,
                respondent_id=respondent.id,
                detail=f"{done} at {screen.key}",
            )
        if not result.replies and not result.events:
            return page(respondent, now_at, error=THREAD_OPEN, status=409)
        if now_at.state.stage == "resume" and situation.state.stage != "resume":
            flash(RESUMED)
        return redirect(url_for("dashboard.assisted", respondent_id=respondent.id), 303)
