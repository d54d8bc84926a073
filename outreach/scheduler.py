"""The scheduler: check-ins that have come due are sent their invitation, and residents who
went quiet part-way through the check are reminded. `dibot worker` runs it every tick.

The rules it keeps:
- nothing is decided in quiet hours: a check-in or reminder due then waits, still due, for the
  next time a text may go (so a reminder always shows the question the resident is at when it
  goes); nothing is dropped;
- each check-in and each reminder is one transaction that locks what it changes and checks again,
  under the lock, that it is still due: the check-in's row, then the conversation's (`FOR UPDATE
  SKIP LOCKED` on PostgreSQL, so several workers share the work and a resident mid-turn is
  left for the next tick; SQLite runs one writing transaction at a time). So two workers never
  invite one check-in twice, or send two reminders for one delay;
- a check-in re-asks the questions its baseline (the latest finished baseline assessment)
  answered, in the same mode, and says at the end what changed since that month; a resident
  who opted out, cannot be reached, or has no finished baseline is skipped, with the reason
  kept on the check-in; one in a follow-up thread with an outreach worker waits until it closes;
- a resident is reminded at most once per delay in `[outreach] reminders`, counted from their
  last text (every text of theirs starts the count again), and never while opted out,
  unreachable or in a follow-up thread.
Time is the `now` argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from babel import Locale, UnknownLocaleError
from babel.dates import format_date

from bot.engine import CheckinPlan, invite_to_checkin, remind
from bot.messages import Turn
from bot.state import State
from flows.model import Flow
from outreach.outbound import queue_outreach
from outreach.quiet_hours import DEFAULT_TIMEZONE, QuietHours, next_send_time, parse_timezone
from storage.database import read_only
from storage.models import (
    Answer,
    Assessment,
    Checkin,
    Conversation,
    FollowUpThread,
    Respondent,
    UTCDateTime,
    table,
)
from storage.privacy import Privacy, open_privacy
from storage.repository import LockedConversation, TurnStore, open_thread

checkins = table(Checkin)
conversations = table(Conversation)
respondents = table(Respondent)
assessments = table(Assessment)
answers = table(Answer)
threads = table(FollowUpThread)

CHANNELS = {"tel": "sms", "telegram": "telegram"}
"""The outbox channel that reaches a URN's scheme."""
PAGE = 200
MAX_ACTIONS = 500
"""Check-ins (or reminders) acted on in one run; the rest are for the next tick."""
MONTH_FORMAT = "LLLL y"
"""'March 2027', 'Mawrth 2027'."""

Outcome = Literal["invited", "skipped", "waiting", "gone"]


@dataclass(frozen=True)
class SchedulerSettings:
    quiet: QuietHours
    reminders: tuple[timedelta, ...]
    """Delays after the resident's last text (`outreach.timing.parse_reminders`)."""
    timezone: str = DEFAULT_TIMEZONE
    """The council's: a baseline's month is read in it."""


@dataclass(frozen=True)
class SchedulerReport:
    checkins_invited: int = 0
    checkins_skipped: int = 0
    checkins_waiting: int = 0
    """Due but held: a follow-up thread is open, or a turn of theirs was running."""
    reminders_queued: int = 0
    quiet_until: datetime | None = None
    """Set when quiet hours held everything: when the next run can act."""


def run_due(
    engine: sa.Engine, flow: Flow, settings: SchedulerSettings, now: datetime
) -> SchedulerReport:
    """Invite the check-ins due and queue the reminders due at `now`."""
    if not settings.quiet.allows(now):
        return SchedulerReport(quiet_until=next_send_time(settings.quiet, now))
    scheduler = _Scheduler(engine, flow, settings, now, open_privacy(engine))
    outcomes = scheduler.checkins()
    return SchedulerReport(
        checkins_invited=outcomes.count("invited"),
        checkins_skipped=outcomes.count("skipped"),
        checkins_waiting=outcomes.count("waiting"),
        reminders_queued=scheduler.reminders(),
    )


def channel_of(urn: str) -> str | None:
    """The outbox channel that reaches `urn`; None for one no sender can reach (the terminal)."""
    scheme, _, _ = urn.partition(":")
    return CHANNELS.get(scheme)


def baseline_month(
    completed_at: datetime, languages: tuple[str, ...], timezone: str
) -> dict[str, str]:
    """The month a baseline was finished, in each language, by the council's calendar."""
    day = completed_at.astimezone(parse_timezone(timezone)).date()
    months: dict[str, str] = {}
    for language in languages:
        try:
            locale = Locale.parse(language)
        except (UnknownLocaleError, ValueError):
            locale = Locale.parse("en")
        months[language] = format_date(day, MONTH_FORMAT, locale=locale)
    return months


# --- statements ----------------------------------------------------------------------------

_now = sa.bindparam("now", type_=UTCDateTime())

_open_thread = sa.exists().where(
    threads.c.respondent_id == sa.bindparam("respondent_id"), *open_thread(_now)
)

_due_checkins = (
    sa.select(checkins.c.id)
    .where(
        checkins.c.status == "scheduled",
        checkins.c.due_at <= _now,
        checkins.c.id > sa.bindparam("after"),
    )
    .order_by(checkins.c.id)
    .limit(PAGE)
)

_lock_checkin = (
    sa.select(checkins.c.id, checkins.c.respondent_id)
    .where(
        checkins.c.id == sa.bindparam("checkin_id"),
        checkins.c.status == "scheduled",
        checkins.c.due_at <= _now,
    )
    .with_for_update(skip_locked=True)
)

_respondent = sa.select(
    respondents.c.urn_cipher, respondents.c.opted_out, respondents.c.unreachable
).where(respondents.c.id == sa.bindparam("respondent_id"))

_latest_baseline = (
    sa.select(assessments.c.id, assessments.c.mode, assessments.c.completed_at)
    .where(
        assessments.c.respondent_id == sa.bindparam("respondent_id"),
        assessments.c.kind == "baseline",
        assessments.c.completed_at.is_not(None),
    )
    .order_by(assessments.c.completed_at.desc(), assessments.c.id.desc())
    .limit(1)
)

_chosen_answers = sa.select(answers.c.question, answers.c.option).where(
    answers.c.assessment_id == sa.bindparam("assessment_id"), answers.c.option.is_not(None)
)

_lock_conversation = (
    sa.select(
        respondents.c.id,
        conversations.c.id,
        conversations.c.assessment_id,
        conversations.c.state,
        respondents.c.unreachable,
    )
    .join_from(respondents, conversations, conversations.c.respondent_id == respondents.c.id)
    .where(respondents.c.id == sa.bindparam("respondent_id"))
    .with_for_update(of=conversations, skip_locked=True)
)

_invited = (
    sa.update(checkins)
    .where(checkins.c.id == sa.bindparam("checkin_id"))
    .values(
        status="invited",
        baseline_id=sa.bindparam("baseline_id"),
        outbox_id=sa.bindparam("outbox_id"),
        invited_at=sa.bindparam("now"),
    )
)

_skipped = (
    sa.update(checkins)
    .where(checkins.c.id == sa.bindparam("checkin_id"))
    .values(status="skipped", skip_reason=sa.bindparam("reason"))
)

_count_reminder = (
    sa.update(conversations)
    .where(conversations.c.id == sa.bindparam("conversation_id"))
    .values(reminders_sent=conversations.c.reminders_sent + 1)
)

PART_WAY = ('%"stage":"asking"%', '%"stage":"paused"%')
"""The stages a reminder is for, as `State.to_json` writes them: a first sift in SQL; the
state itself decides (`bot.engine.remind`)."""


def _reminders_due(delays: tuple[timedelta, ...]) -> sa.Select[Any]:
    """Conversations part-way through an unfinished assessment whose next reminder is due:
    their last text at least that reminder's delay ago, from an undimmed respondent not in a
    follow-up thread. Everything a reminder needs is checked again under the row lock."""
    c, r, a = conversations, respondents, assessments
    due = sa.or_(
        *(
            (c.c.reminders_sent == sent) & (c.c.last_inbound_at <= sa.bindparam(f"since_{sent}"))
            for sent in range(len(delays))
        )
    )
    thread_open = sa.exists().where(threads.c.respondent_id == r.c.id, *open_thread(_now))
    return (
        sa.select(
            r.c.id.label("respondent_id"),
            c.c.id,
            c.c.assessment_id,
            c.c.state,
            r.c.unreachable,
            r.c.urn_cipher,
        )
        .join_from(c, r, r.c.id == c.c.respondent_id)
        .join(a, a.c.id == c.c.assessment_id)
        .where(
            c.c.last_inbound_at.is_not(None),
            due,
            a.c.completed_at.is_(None),
            a.c.abandoned_at.is_(None),
            ~r.c.opted_out,
            ~r.c.unreachable,
            sa.or_(*(c.c.state.like(pattern) for pattern in PART_WAY)),
            ~thread_open,
        )
    )


# --- the work ------------------------------------------------------------------------------


@dataclass
class _Scheduler:
    engine: sa.Engine
    flow: Flow
    settings: SchedulerSettings
    now: datetime
    privacy: Privacy

    def __post_init__(self) -> None:
        self.store = TurnStore(self.engine.dialect.name)

    # check-ins

    def checkins(self) -> list[Outcome]:
        outcomes: list[Outcome] = []
        after = 0
        while sum(outcome in ("invited", "skipped") for outcome in outcomes) < MAX_ACTIONS:
            with self.engine.connect() as connection:
                conn = read_only(connection)
                page = list(
                    conn.execute(_due_checkins, {"now": self.now, "after": after}).scalars()
                )
            if not page:
                break
            for checkin_id in page:
                outcomes.append(self.invite(checkin_id))
            after = page[-1]
        return outcomes

    def invite(self, checkin_id: int) -> Outcome:
        with self.engine.begin() as conn:
            due = conn.execute(_lock_checkin, {"checkin_id": checkin_id, "now": self.now}).first()
            if due is None:
                return "gone"  # another worker took it, or it was moved
            outcome, reason = self._invite(conn, checkin_id, due.respondent_id)
            if outcome == "skipped":
                conn.execute(_skipped, {"checkin_id": checkin_id, "reason": reason})
            return outcome

    def _invite(
        self, conn: sa.Connection, checkin_id: int, respondent_id: int
    ) -> tuple[Outcome, str]:
        """Invite, skip (with the reason) or leave waiting, under the conversation's lock."""
        row = conn.execute(_lock_conversation, {"respondent_id": respondent_id}).first()
        if row is None:
            return "waiting", "a turn of theirs is running"
        conversation = LockedConversation(*row)
        who = conn.execute(_respondent, {"respondent_id": respondent_id}).one()
        if who.opted_out:
            return "skipped", "opted out"
        if who.unreachable:
            return "skipped", "messages cannot reach them"
        channel = channel_of(self.privacy.decrypt(who.urn_cipher))
        if channel is None:
            return "skipped", "no channel reaches them (they used the terminal)"
        if conn.execute(sa.select(_open_thread), self._ids(respondent_id)).scalar():
            return "waiting", "a follow-up thread is open"
        baseline = conn.execute(_latest_baseline, {"respondent_id": respondent_id}).first()
        if baseline is None:
            return "skipped", "no finished baseline assessment to follow"
        if baseline.mode not in self.flow.modes:
            return "skipped", f"their baseline's mode ({baseline.mode}) is no longer in the flow"
        chosen = conn.execute(_chosen_answers, {"assessment_id": baseline.id}).all()
        if not chosen:
            return "skipped", "their baseline answered no questions"
        try:
            state = State.from_json(conversation.state)
        except ValueError:
            return "skipped", "their conversation could not be read"
        baseline_answers: dict[str, int] = {row.question: row.option for row in chosen}
        plan = CheckinPlan(
            mode=baseline.mode,
            keys=tuple(baseline_answers),
            baseline=baseline_answers,
            since=baseline_month(
                baseline.completed_at, self.flow.languages, self.settings.timezone
            ),
            baseline_id=baseline.id,
        )
        turn = invite_to_checkin(self.flow, state, plan, self.now)
        if not turn.outbound:
            return "skipped", _not_invited_because(state)
        self._apply(conn, conversation, turn)
        (message,) = turn.outbound
        queued = queue_outreach(
            conn,
            respondent_id=respondent_id,
            channel=channel,
            message=message,
            kind="checkin",
            quiet=self.settings.quiet,
            now=self.now,
            keys=self.privacy.keys,
        )
        conn.execute(
            _invited,
            {
                "checkin_id": checkin_id,
                "baseline_id": baseline.id,
                "outbox_id": queued.outbox_id,
                "now": self.now,
            },
        )
        return "invited", ""

    def _apply(self, conn: sa.Connection, conversation: LockedConversation, turn: Turn) -> None:
        """What inviting did to the conversation: an unfinished assessment set aside, the state."""
        for event in turn.events:
            if event.kind == "assessment_abandoned" and conversation.assessment_id is not None:
                self.store.abandon_assessment(conn, conversation.assessment_id, self.now)
        self._save(conn, conversation, turn.state)

    def _save(self, conn: sa.Connection, conversation: LockedConversation, state: State) -> None:
        self.store.save_conversation(
            conn, conversation, state.to_json(), self.flow, conversation.assessment_id, self.now
        )

    # reminders

    def reminders(self) -> int:
        delays = self.settings.reminders
        if not delays:
            return 0
        since = {f"since_{sent}": self.now - delay for sent, delay in enumerate(delays)}
        candidates = _reminders_due(delays)
        page_query = (
            candidates.where(conversations.c.id > sa.bindparam("after"))
            .order_by(conversations.c.id)
            .limit(PAGE)
        )
        locked_query = candidates.where(
            conversations.c.id == sa.bindparam("conversation_id")
        ).with_for_update(of=conversations, skip_locked=True)
        queued, after = 0, 0
        while queued < MAX_ACTIONS:
            with self.engine.connect() as connection:
                conn = read_only(connection)
                page = conn.execute(page_query, {**since, "now": self.now, "after": after}).all()
            if not page:
                break
            for candidate in page:
                params = {**since, "now": self.now, "conversation_id": candidate.id}
                queued += self.remind(locked_query, params)
            after = page[-1].id
        return queued

    def remind(self, locked_query: sa.Select[Any], params: Mapping[str, Any]) -> int:
        with self.engine.begin() as conn:
            due = conn.execute(locked_query, params).first()
            if due is None:
                return 0  # they wrote, another worker reminded them, or a turn holds the row
            conversation = LockedConversation(*due[:5])
            channel = channel_of(self.privacy.decrypt(due.urn_cipher))
            try:
                state = State.from_json(conversation.state)
            except ValueError:
                return 0
            turn = remind(self.flow, state, self.now)
            if channel is None or not turn.outbound:
                return 0
            if turn.state != state:
                self._save(conn, conversation, turn.state)
            (message,) = turn.outbound
            queue_outreach(
                conn,
                respondent_id=conversation.respondent_id,
                channel=channel,
                message=message,
                kind="reminder",
                quiet=self.settings.quiet,
                now=self.now,
                keys=self.privacy.keys,
            )
            conn.execute(_count_reminder, {"conversation_id": conversation.conversation_id})
            return 1

    def _ids(self, respondent_id: int) -> dict[str, Any]:
        return {"respondent_id": respondent_id, "now": self.now}


def _not_invited_because(state: State) -> str:
    if state.opted_out:
        return "opted out"
    if state.stage == "declined":
        return "they said no to the check"
    return "they have not agreed to take part"
