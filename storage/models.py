"""The tables, as typed SQLAlchemy models; the migrations in `storage/migrations` match them.

The staff side may use these through the ORM; the turn's hot path uses their `__table__`s with
statements built once (see `storage.repository`). Times are stored in UTC and always come
back timezone-aware, on SQLite as on PostgreSQL. Ids are 64-bit on PostgreSQL and SQLite's
rowid on SQLite. Of what respondents send, only the raw text of an answer is kept, encrypted,
for `privacy.raw_text_days`; the inbox keeps the replies it got (for duplicates) for
`privacy.inbox_days`, the outbox what is to be sent. A respondent's URN is never stored in clear:
`urn_cipher` is its Fernet token and `urn_digest` the keyed hash that finds it (`storage.privacy`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""A primary key: BIGINT on PostgreSQL, INTEGER (the rowid, so it autoincrements) on SQLite."""


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite keeps no offset: stored naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime()}  # noqa: RUF012


class PrivacyKey(Base):
    """A key the database needs, encrypted with `[privacy] encryption_key`: the lookup key of
    URN digests (see `storage.privacy`)."""

    __tablename__ = "privacy_keys"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    wrapped: Mapped[str] = mapped_column(sa.Text)


class Respondent(Base):
    """A person, addressed by a URN such as "tel:+447700900123" or "telegram:123456", which is
    stored only encrypted (`urn_cipher`) and found by its keyed hash (`urn_digest`)."""

    __tablename__ = "respondents"
    __table_args__ = (sa.Index("ix_respondents_team", "team_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    urn_cipher: Mapped[str] = mapped_column(sa.Text)
    urn_digest: Mapped[bytes] = mapped_column(sa.LargeBinary(32), unique=True)
    language: Mapped[str] = mapped_column(sa.String(16))
    consented_at: Mapped[datetime | None]
    """When they agreed after the privacy notice; None until then, or after they said no."""
    opted_out: Mapped[bool] = mapped_column(default=False)
    opted_out_at: Mapped[datetime | None]
    unreachable: Mapped[bool] = mapped_column(default=False)
    """The provider says messages cannot reach them (Telegram: blocked the bot); cleared by
    their next message."""
    created_at: Mapped[datetime]
    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("teams.id", ondelete="SET NULL"))
    """The team that enrolled them: its workers see them on the dashboard (admins see all).
    None for a resident who started by texting in, until an admin enrols them."""


class Assessment(Base):
    """One run through the questionnaire in one mode; a check-in is another assessment."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    respondent_id: Mapped[int] = mapped_column(
        sa.ForeignKey("respondents.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[str] = mapped_column(sa.String(16))
    flow_id: Mapped[str] = mapped_column(sa.String(64))
    flow_version: Mapped[str] = mapped_column(sa.String(32))
    started_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    abandoned_at: Mapped[datetime | None]
    skills_basis: Mapped[str | None] = mapped_column(sa.String(16))
    """For a respondent with no device or connection: "not_asked" (they skipped the skills:
    not asked, never zero) or "as_if" (answered as if they had one); None otherwise."""
    kind: Mapped[str] = mapped_column(sa.String(16), server_default="baseline")
    """"baseline", or "checkin": a re-assessment of the questions its baseline answered."""
    baseline_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("assessments.id", ondelete="SET NULL")
    )
    """The baseline a check-in follows."""
    assisted_by: Mapped[str | None] = mapped_column(sa.String(254))
    """The member of staff who filled it in with the resident (on the doorstep, on the phone);
    None when the resident answered by themselves."""


class Conversation(Base):
    """The live conversation of a respondent: the engine's state as JSON, nothing else.

    Its row is what a turn locks, so one respondent's turns run one at a time.
    """

    __tablename__ = "conversations"
    __table_args__ = (sa.Index("ix_conversations_reminders", "reminders_sent", "last_inbound_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    respondent_id: Mapped[int] = mapped_column(
        sa.ForeignKey("respondents.id", ondelete="CASCADE"), unique=True
    )
    assessment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("assessments.id", ondelete="SET NULL"), index=True
    )
    """The assessment answers go to: the latest one started."""
    flow_id: Mapped[str] = mapped_column(sa.String(64))
    flow_version: Mapped[str] = mapped_column(sa.String(32))
    state: Mapped[str] = mapped_column(sa.Text)
    """`bot.state.State.to_json()`."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_inbound_at: Mapped[datetime | None]
    """When the respondent last wrote: reminders count from it."""
    reminders_sent: Mapped[int] = mapped_column(server_default="0")
    """Reminders sent since they last wrote (at most `[outreach] reminders`)."""


class Answer(Base):
    """One question's answer in an assessment; `option` is None when the question was skipped.

    A question not asked has no row. Answering again (after BACK) replaces the row.
    """

    __tablename__ = "answers"
    __table_args__ = (sa.UniqueConstraint("assessment_id", "question"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    assessment_id: Mapped[int] = mapped_column(sa.ForeignKey("assessments.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(sa.String(32))
    """The question key, e.g. "GS01.skill"."""
    item_id: Mapped[str] = mapped_column(sa.String(16))
    aspect: Mapped[str] = mapped_column(sa.String(16))
    option: Mapped[int | None]
    """The option number chosen (as shown), or None: skipped."""
    score: Mapped[int | None]
    raw: Mapped[str | None] = mapped_column(sa.Text)
    """What the respondent typed (or the button they tapped), encrypted (a Fernet token);
    None once `dibot retention` has removed it, or when it is not kept at all."""
    answered_at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(sa.String(16))
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(128))
    """The message that carried it; None once `dibot retention` has removed it with `raw`."""


class InboxEntry(Base):
    """Every inbound message seen, once per (channel, provider message id), with the replies
    it got, so a duplicate delivery gets the same replies and changes nothing."""

    __tablename__ = "inbox"
    __table_args__ = (sa.UniqueConstraint("channel", "provider_message_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    provider_message_id: Mapped[str] = mapped_column(sa.String(128))
    respondent_id: Mapped[int] = mapped_column(
        sa.ForeignKey("respondents.id", ondelete="CASCADE"), index=True
    )
    received_at: Mapped[datetime]
    replies: Mapped[list[Any]] = mapped_column(sa.JSON)
    """[{"text": …, "buttons": [{"label": …, "payload": …}]}], see `storage.codec`."""


OUTBOX_STATUSES = ("pending", "claimed", "sending", "sent", "failed", "unknown")
OUTBOX_KINDS = ("reply", "invitation", "followup", "reminder", "checkin")
DELIVERY_STATUSES = (
    "accepted",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "read",
)
"""What the provider's status callbacks say after it took a message (Twilio's words)."""


class OutboxEntry(Base):
    """A message to send outside the webhook response, written in the turn's transaction.

    pending → claimed (leased to a worker) → sending → sent | failed | unknown, or back to
    pending for a retry; the states and their rules are in `storage.outbox`.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.CheckConstraint(sa.column("status").in_(OUTBOX_STATUSES), name="status"),
        sa.Index("ix_outbox_due", "status", "channel", "next_attempt_at"),
        sa.Index("ix_outbox_provider_message_id", "provider_message_id"),
        sa.Index("ix_outbox_in_line", "respondent_id", "channel", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    respondent_id: Mapped[int] = mapped_column(sa.ForeignKey("respondents.id", ondelete="CASCADE"))
    """Indexed with `channel` and `id` (`ix_outbox_in_line`): what keeps a claim quick."""
    inbox_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("inbox.id", ondelete="SET NULL"), index=True
    )
    """The inbound message whose turn queued this, if any."""
    text: Mapped[str] = mapped_column(sa.Text)
    buttons: Mapped[list[Any]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(128))
    error: Mapped[str | None] = mapped_column(sa.Text)
    lease_until: Mapped[datetime | None]
    """Until when the claim holding it ("claimed" or "sending") holds it."""
    lease_token: Mapped[str | None] = mapped_column(sa.String(32))
    """Which claim holds it."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(sa.String(16), server_default="reply")
    """Why it is sent: a "reply" to the respondent's message, or outreach ("invitation",
    "followup", "reminder", "checkin"), which only quiet hours allow."""
    first_due_at: Mapped[datetime | None]
    """When it was first due (after quiet hours): retries give up counting from here."""
    sent_by: Mapped[str | None] = mapped_column(sa.String(100))
    """Who wrote a follow-up (an outreach worker); None for the bot's own messages."""
    segments: Mapped[int | None]
    """SMS segments, as counted when queued."""
    delivery_status: Mapped[str | None] = mapped_column(sa.String(16))
    """The provider's latest word after it took the message (`DELIVERY_STATUSES`); a final
    one (delivered, undelivered, failed) is never replaced by an earlier one."""
    delivery_error_code: Mapped[int | None]
    """The provider's error code with an undelivered or failed status (Twilio's 30003…)."""
    delivery_updated_at: Mapped[datetime | None]


def table(model: type[Base]) -> sa.Table:
    """The Core table behind a model, for statements on the hot path."""
    return cast(sa.Table, model.__table__)


class Cohort(Base):
    """A group a council follows as one: an enrolment drive, a device loan scheme, a digital
    champions programme; `initiative` is what the council calls the work it measures."""

    __tablename__ = "cohorts"
    __table_args__ = (sa.Index("ix_cohorts_team", "team_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    initiative: Mapped[str | None] = mapped_column(sa.String(100))
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    created_at: Mapped[datetime]
    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("teams.id", ondelete="SET NULL"))
    """The team that runs it (None: made on the command line, seen by admins only)."""


class CohortMember(Base):
    """A respondent in a cohort; a respondent can be in several."""

    __tablename__ = "cohort_members"

    cohort_id: Mapped[int] = mapped_column(
        sa.ForeignKey("cohorts.id", ondelete="CASCADE"), primary_key=True
    )
    respondent_id: Mapped[int] = mapped_column(
        sa.ForeignKey("respondents.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime]


class Enrolment(Base):
    """Who enrolled a respondent, when, on what lawful basis, and the invitation it queued."""

    __tablename__ = "enrolments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    respondent_id: Mapped[int] = mapped_column(
        sa.ForeignKey("respondents.id", ondelete="CASCADE"), index=True
    )
    cohort_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cohorts.id", ondelete="SET NULL"))
    enrolled_by: Mapped[str] = mapped_column(sa.String(100))
    lawful_basis: Mapped[str] = mapped_column(sa.String(64))
    enrolled_at: Mapped[datetime]
    invitation_id: Mapped[int | None] = mapped_column(Id)
    """The outbox row of the invitation, if one was queued."""


class Checkin(Base):
    """A re-assessment scheduled for a respondent: at `due_at` (held to quiet hours) the worker
    invites them to answer again what their baseline answered."""

    __tablename__ = "checkins"
    __table_args__ = (sa.Index("ix_checkins_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    respondent_id: Mapped[int] = mapped_column(
        sa.ForeignKey("respondents.id", ondelete="CASCADE"), index=True
    )
    cohort_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cohorts.id", ondelete="SET NULL"))
    """The cohort it was scheduled for, if it was scheduled for one."""
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(16))
    """"scheduled", then "invited" (the invitation queued) or "skipped" (`skip_reason`)."""
    skip_reason: Mapped[str | None] = mapped_column(sa.String(200))
    baseline_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("assessments.id", ondelete="SET NULL")
    )
    """The assessment it re-asks, chosen when the invitation goes."""
    outbox_id: Mapped[int | None] = mapped_column(Id)
    scheduled_by: Mapped[str] = mapped_column(sa.String(100))
    scheduled_at: Mapped[datetime]
    invited_at: Mapped[datetime | None]


class FollowUpThread(Base):
    """An outreach worker's follow-up conversation with a respondent: while it is open (not
    closed and before `closes_at`) the bot stays quiet and their texts wait for the worker."""

    __tablename__ = "threads"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    respondent_id: Mapped[int] = mapped_column(
        sa.ForeignKey("respondents.id", ondelete="CASCADE"), index=True
    )
    opened_by: Mapped[str] = mapped_column(sa.String(100))
    opened_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    """When it closes by itself (`[outreach] thread_hours` after the worker's last text)."""
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(sa.String(100))


class TimelineEntry(Base):
    """One message in or out of a respondent's conversation, for staff to read; its text is
    encrypted (a Fernet token) and removed by `dibot retention` after `privacy.raw_text_days`."""

    __tablename__ = "timeline"
    __table_args__ = (sa.Index("ix_timeline_respondent_id", "respondent_id"),)
    """By respondent alone: their entries are few and sorted by time when read, and the time in
    the index took a fifth of the bytes a turn leaves once retention has passed."""

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    respondent_id: Mapped[int] = mapped_column(sa.ForeignKey("respondents.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    direction: Mapped[str] = mapped_column(sa.String(3))
    """"in" (from the respondent) or "out"."""
    channel: Mapped[str] = mapped_column(sa.String(16))
    kind: Mapped[str] = mapped_column(sa.String(16))
    """In: "message" (taken by the bot) or "held" (kept for a worker: a thread was open).
    Out: an outbox kind ("reply", "invitation", "followup", "reminder", "checkin")."""
    text_cipher: Mapped[str | None] = mapped_column(sa.Text)
    thread_id: Mapped[int | None] = mapped_column(sa.ForeignKey("threads.id", ondelete="SET NULL"))
    outbox_id: Mapped[int | None] = mapped_column(Id)
    """The outbox row that carries it, for its delivery status (None: a webhook's reply)."""
    by: Mapped[str | None] = mapped_column(sa.String(100))
    """The worker who wrote it, for a follow-up."""


STAFF_ROLES = ("admin", "worker")


class Team(Base):
    """A council outreach team: a worker sees their own team's respondents only."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    created_at: Mapped[datetime]


class Staff(Base):
    """A dashboard account: an email (lower-cased), its team and role, an Argon2id hash."""

    __tablename__ = "staff"
    __table_args__ = (sa.CheckConstraint(sa.column("role").in_(STAFF_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id"), index=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime]
    password_changed_at: Mapped[datetime]
    """Sessions signed in before it are over (a password change logs other sessions out)."""
    disabled: Mapped[bool] = mapped_column(default=False)


class StaffSession(Base):
    """A signed-in session, kept on the server so logging out ends it everywhere a copy of its
    cookie is: `id` is the SHA-256 of the random token the cookie holds (a copy of the table
    opens no session)."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class LoginThrottle(Base):
    """Failed logins counted per key ("email:<address>" or "address:<remote address>") in a
    window; while `locked_until` is ahead, every attempt under that key is refused."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(sa.String(300), primary_key=True)
    failures: Mapped[int]
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class AuditEntry(Base):
    """Something a member of staff did (or tried): logins, logouts, password changes, and
    every view or export of a respondent's data."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[datetime]
    staff_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(sa.String(32))
    respondent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("respondents.id", ondelete="SET NULL")
    )
    detail: Mapped[str] = mapped_column(sa.Text, default="")


class SenderPace(Base):
    """When a sending number (or Messaging Service) may next hand a text to the provider: one
    row per sender, shared by every worker process, so the configured rate is the number's,
    not each worker's (`storage.outbox.begin` reserves a text's slot under its row lock)."""

    __tablename__ = "sender_pace"

    sender: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    free_at: Mapped[datetime]
    """The end of the share of time the last text reserved: the next may start from here."""
    recent: Mapped[list[Any]] = mapped_column(sa.JSON)
    """The texts that started in the last second before the last one reserved, and it:
    [microseconds since 1970 UTC, segments], oldest first (no second holds more than the
    rate)."""


class Persona(Base):
    """A baseline in the questionnaire's own item ids that describes a kind of person (or the
    expected baseline of a cohort): `answers` maps question key -> option number, as a
    respondent's would (`impact.personas`), in one mode ("quick" or "full")."""

    __tablename__ = "personas"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    """Its stable id, e.g. "isolated-older-renter": loading a file again updates by slug."""
    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.Text)
    mode: Mapped[str] = mapped_column(sa.String(16))
    answers: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    source: Mapped[str] = mapped_column(sa.Text)
    """Where it comes from (e.g. "dibot's own illustrative personas")."""
    cohort_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("cohorts.id", ondelete="SET NULL"), index=True
    )
    """The cohort whose expected baseline it is, if any."""
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
