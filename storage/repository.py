"""The statements a turn runs, built once per engine; each method takes the caller's connection.

The turn is the hot path, so this is Core, not the ORM: no session, no identity map, no
statement built per call. Nothing here begins or commits a transaction: the turn handler owns
the one transaction per turn. `lock_conversation` is what serialises one respondent's turns:
`SELECT … FOR UPDATE` on PostgreSQL; on SQLite the transaction's `BEGIN IMMEDIATE` already
holds the write lock. A respondent is found by the digest of their URN (one HMAC per turn) and
their URN is encrypted only when they are first stored; typed text is stored encrypted, or not
at all (see `storage.privacy`). The same locking read says whether an outreach worker's
follow-up thread is open for them (not closed, and before it closes by itself), so a turn
learns it without another query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot.messages import Outbound
from bot.state import State
from flows.model import Flow
from storage.codec import dump_replies, load_replies
from storage.models import (
    Answer,
    Assessment,
    Conversation,
    FollowUpThread,
    InboxEntry,
    Respondent,
    UTCDateTime,
    table,
)
from storage.prepared import Prepared, Row, json_value
from storage.privacy import Privacy, keys_of, load_privacy

respondents = table(Respondent)
conversations = table(Conversation)
assessments = table(Assessment)
answers = table(Answer)
inbox = table(InboxEntry)
threads = table(FollowUpThread)

ANSWER_FIELDS = (
    "item_id",
    "aspect",
    "option",
    "score",
    "raw",
    "answered_at",
    "channel",
    "provider_message_id",
)
"""What answering a question again replaces."""


@dataclass(frozen=True)
class LockedConversation:
    """A respondent's conversation row, locked for the rest of the transaction."""

    respondent_id: int
    conversation_id: int
    assessment_id: int | None
    state: str
    unreachable: bool
    thread_id: int | None = None
    """The follow-up thread open for them when the lock was taken (`lock_conversation`)."""
    seen: tuple[Outbound, ...] | None = None
    """The replies the message named to `lock_conversation` got when it was first seen; None
    if it is new (or no message was named)."""


@dataclass(frozen=True)
class AnswerRecord:
    """One answer (or skip, with `option` None) as the answers table keeps it."""

    question: str
    option: int | None
    score: int | None
    raw: str | None
    answered_at: datetime
    channel: str
    provider_message_id: str


def dialect_insert(dialect_name: str) -> Any:
    """`INSERT … ON CONFLICT` for the databases dibot runs on."""
    if dialect_name == "postgresql":
        return postgresql.insert
    if dialect_name == "sqlite":
        return sqlite.insert
    raise ValueError(f"dibot runs on SQLite or PostgreSQL, not {dialect_name}")


def _param(name: str, type_: sa.types.TypeEngine[Any]) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=type_)


class TurnStore:
    """Prebuilt statements for one dialect, compiled once per process (`storage.prepared`)."""

    _built: ClassVar[dict[str, dict[str, Prepared]]] = {}

    def __init__(self, dialect_name: str) -> None:
        built = TurnStore._built.get(dialect_name)
        if built is None:
            built = TurnStore._built[dialect_name] = _statements(dialect_name)
        self._dialect_name = dialect_name
        self._lock: Prepared = built["_lock"]
        self._lock_with_thread: Prepared = built["_lock_with_thread"]
        self._lock_turn: Prepared = built["_lock_turn"]
        self._add_respondent: Prepared = built["_add_respondent"]
        self._add_conversation: Prepared = built["_add_conversation"]
        self._save_conversation: Prepared = built["_save_conversation"]
        self._mark_inbound: Prepared = built["_mark_inbound"]
        self._close_thread: Prepared = built["_close_thread"]
        self._close_threads_of: Prepared = built["_close_threads_of"]
        self._stored_replies: Prepared = built["_stored_replies"]
        self._add_inbound: Prepared = built["_add_inbound"]
        self._start_assessment: Prepared = built["_start_assessment"]
        self._complete_assessment: Prepared = built["_complete_assessment"]
        self._set_skills_basis: Prepared = built["_set_skills_basis"]
        self._abandon_assessment: Prepared = built["_abandon_assessment"]
        self._save_answer: Prepared = built["_save_answer"]
        self._clear_answer: Prepared = built["_clear_answer"]
        self._set_opted_out: Prepared = built["_set_opted_out"]
        self._set_consent: Prepared = built["_set_consent"]
        self._set_language: Prepared = built["_set_language"]
        self._set_reachable: Prepared = built["_set_reachable"]
        self._set_unreachable: Prepared = built["_set_unreachable"]

    # --- the conversation ----------------------------------------------------------------

    def find_conversation(
        self, conn: sa.Connection, urn: str, privacy: Privacy | None = None
    ) -> LockedConversation | None:
        """The respondent's conversation, locked, if they were ever stored; creates nothing."""
        digest = _privacy(conn, privacy).digest(urn)
        row = self._lock.first(conn, {"digest": digest})
        return None if row is None else _locked(row)

    def lock_conversation(
        self,
        conn: sa.Connection,
        urn: str,
        flow: Flow,
        initial_state: State,
        now: datetime,
        privacy: Privacy | None = None,
        *,
        message: tuple[str, str] | None = None,
    ) -> LockedConversation:
        """The respondent's conversation, locked, with the follow-up thread open for them at
        `now`; respondent and conversation are created on their first message (concurrent first
        messages wait for each other, then agree). `privacy` is the database's
        (`storage.privacy.open_privacy`); a turn passes it, anyone else may leave it to be read
        here. `message` (channel, provider message id): its replies if it was seen before come
        back as `seen`, read under the lock (on SQLite in the locking statement itself)."""
        privacy = _privacy(conn, privacy)
        digest = privacy.digest(urn)
        channel, message_id = message if message is not None else ("", "")
        found = {"digest": digest, "now": now, "channel": channel, "message_id": message_id}
        lock = self._lock_turn if message is not None else self._lock_with_thread
        row = lock.first(conn, found)
        if row is None:
            self._add_respondent.run(
                conn,
                {
                    "cipher": privacy.encrypt(urn),
                    "digest": digest,
                    "language": initial_state.language,
                    "now": now,
                },
            )
            self._add_conversation.run(
                conn,
                {
                    "digest": digest,
                    "flow_id": flow.id,
                    "flow_version": flow.version,
                    "state": initial_state.to_json(),
                    "now": now,
                },
            )
            row = lock.first(conn, found)
            if row is None:
                raise RuntimeError("a respondent just stored was not found")
        conversation = _locked(row)
        if message is None or self._dialect_name == "sqlite":
            return conversation
        return replace(conversation, seen=self.stored_replies(conn, channel, message_id))

    def save_conversation(
        self,
        conn: sa.Connection,
        conversation: LockedConversation,
        state: str,
        flow: Flow,
        assessment_id: int | None,
        now: datetime,
        *,
        inbound: bool = False,
    ) -> None:
        """Store the state; `inbound` when the respondent wrote (reminders count afresh)."""
        self._save_conversation.run(
            conn,
            {
                "conversation_id": conversation.conversation_id,
                "state": state,
                "flow_id": flow.id,
                "flow_version": flow.version,
                "assessment_id": assessment_id,
                "now": now,
                "inbound_at": now if inbound else None,
            },
        )

    def mark_inbound(self, conn: sa.Connection, conversation_id: int, now: datetime) -> None:
        """The respondent wrote, and their state stays as it was (a text held for a worker):
        reminders count afresh from now."""
        self._mark_inbound.run(conn, {"conversation_id": conversation_id, "now": now})

    # --- follow-up threads ---------------------------------------------------------------

    def close_thread(
        self, conn: sa.Connection, thread_id: int, now: datetime, closed_by: str
    ) -> None:
        """Close the thread (if nobody closed it yet): the bot takes their texts again."""
        self._close_thread.run(
            conn,
            {"thread_id": thread_id, "now": now, "closed_by": closed_by[:100]},
        )

    def close_threads_of(
        self, conn: sa.Connection, respondent_id: int, now: datetime, closed_by: str
    ) -> int:
        """Close every thread open for the respondent at `now`; how many were."""
        return self._close_threads_of.run(
            conn, {"of_respondent": respondent_id, "now": now, "closed_by": closed_by[:100]}
        )

    # --- the inbox: one row per provider message -----------------------------------------

    def stored_replies(
        self, conn: sa.Connection, channel: str, message_id: str
    ) -> tuple[Outbound, ...] | None:
        """The replies given the first time this message was seen; None if it is new."""
        replies = self._stored_replies.scalar(conn, {"channel": channel, "message_id": message_id})
        return _replies(replies)

    def add_inbound(
        self,
        conn: sa.Connection,
        channel: str,
        message_id: str,
        respondent_id: int,
        replies: Iterable[Outbound],
        now: datetime,
    ) -> int:
        """Record the message as seen, with its replies; fails if it was seen already."""
        inbox_id: int = self._add_inbound.scalar(
            conn,
            {
                "channel": channel,
                "message_id": message_id,
                "respondent_id": respondent_id,
                "replies": dump_replies(replies),
                "now": now,
            },
        )
        return inbox_id

    # --- assessments and answers ---------------------------------------------------------

    def start_assessment(
        self,
        conn: sa.Connection,
        respondent_id: int,
        mode: str,
        flow: Flow,
        now: datetime,
        *,
        kind: str = "baseline",
        baseline_id: int | None = None,
    ) -> int:
        """A new assessment: a baseline, or a check-in following `baseline_id`."""
        assessment_id: int = self._start_assessment.scalar(
            conn,
            {
                "respondent_id": respondent_id,
                "mode": mode,
                "flow_id": flow.id,
                "flow_version": flow.version,
                "now": now,
                "kind": kind,
                "baseline_id": baseline_id,
            },
        )
        return assessment_id

    def complete_assessment(self, conn: sa.Connection, assessment_id: int, now: datetime) -> None:
        self._complete_assessment.run(conn, {"assessment_id": assessment_id, "now": now})

    def set_skills_basis(self, conn: sa.Connection, assessment_id: int, basis: str | None) -> None:
        self._set_skills_basis.run(conn, {"assessment_id": assessment_id, "basis": basis})

    def abandon_assessment(self, conn: sa.Connection, assessment_id: int, now: datetime) -> None:
        self._abandon_assessment.run(conn, {"assessment_id": assessment_id, "now": now})

    def save_answer(
        self,
        conn: sa.Connection,
        assessment_id: int,
        answer: AnswerRecord,
        privacy: Privacy | None = None,
    ) -> None:
        """Insert the answer, or replace the one the question already has. The raw text is
        stored only encrypted, with `privacy`'s keys: without them it is not stored at all. NUL
        characters are dropped from it (as PostgreSQL's text would have to)."""
        raw = answer.raw
        if raw is not None:
            raw = None if privacy is None else privacy.encrypt(raw.replace("\x00", ""))
        item_id, _, aspect = answer.question.partition(".")
        self._save_answer.run(
            conn,
            {
                "assessment_id": assessment_id,
                "question": answer.question,
                "item_id": item_id,
                "aspect": aspect,
                "option": answer.option,
                "score": answer.score,
                "raw": raw,
                "answered_at": answer.answered_at,
                "channel": answer.channel,
                "provider_message_id": answer.provider_message_id,
            },
        )

    def clear_answer(self, conn: sa.Connection, assessment_id: int, question: str) -> None:
        self._clear_answer.run(conn, {"assessment_id": assessment_id, "question": question})

    # --- the respondent ------------------------------------------------------------------

    def set_opted_out(
        self, conn: sa.Connection, respondent_id: int, opted_out: bool, now: datetime
    ) -> None:
        self._set_opted_out.run(
            conn,
            {
                "respondent_id": respondent_id,
                "opted_out": opted_out,
                "now": now if opted_out else None,
            },
        )

    def set_consent(
        self, conn: sa.Connection, respondent_id: int, consented_at: datetime | None
    ) -> None:
        """Record agreement after the privacy notice (None: they said no)."""
        self._set_consent.run(conn, {"respondent_id": respondent_id, "consented_at": consented_at})

    def set_language(self, conn: sa.Connection, respondent_id: int, language: str) -> None:
        self._set_language.run(conn, {"respondent_id": respondent_id, "language": language})

    def set_reachable(self, conn: sa.Connection, respondent_id: int) -> None:
        self._set_reachable.run(conn, {"respondent_id": respondent_id})

    def set_unreachable(
        self, conn: sa.Connection, urn: str, privacy: Privacy | None = None
    ) -> None:
        digest = _privacy(conn, privacy).digest(urn)
        self._set_unreachable.run(conn, {"target_digest": digest})


def _statements(dialect_name: str) -> dict[str, Prepared]:
    """The turn's statements for one dialect, by the name `TurnStore` keeps each under."""
    insert = dialect_insert(dialect_name)
    r, c = respondents, conversations

    stmt_lock = (
        sa.select(r.c.id, c.c.id, c.c.assessment_id, c.c.state, r.c.unreachable)
        .join_from(r, c, c.c.respondent_id == r.c.id)
        .where(r.c.urn_digest == sa.bindparam("digest"))
        .with_for_update(of=c)
    )
    stmt_lock_with_thread = stmt_lock.add_columns(
        sa.select(threads.c.id)
        .where(threads.c.respondent_id == r.c.id, *open_thread(_param("now", UTCDateTime())))
        .order_by(threads.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt_add_respondent = (
        insert(r)
        .values(
            urn_cipher=sa.bindparam("cipher"),
            urn_digest=sa.bindparam("digest"),
            language=sa.bindparam("language"),
            opted_out=False,
            unreachable=False,
            created_at=sa.bindparam("now"),
        )
        .on_conflict_do_nothing(index_elements=[r.c.urn_digest])
    )
    created = _param("now", UTCDateTime())
    stmt_add_conversation = (
        insert(c)
        .from_select(
            ["respondent_id", "flow_id", "flow_version", "state", "created_at", "updated_at"],
            sa.select(
                r.c.id,
                _param("flow_id", sa.String()),
                _param("flow_version", sa.String()),
                _param("state", sa.Text()),
                created,
                created,
            ).where(r.c.urn_digest == sa.bindparam("digest")),
        )
        .on_conflict_do_nothing(index_elements=[c.c.respondent_id])
    )
    inbound_at = _param("inbound_at", UTCDateTime())
    stmt_save_conversation = (
        sa.update(c)
        .where(c.c.id == sa.bindparam("conversation_id"))
        .values(
            state=sa.bindparam("state"),
            flow_id=sa.bindparam("flow_id"),
            flow_version=sa.bindparam("flow_version"),
            assessment_id=sa.bindparam("assessment_id"),
            updated_at=sa.bindparam("now"),
            last_inbound_at=sa.func.coalesce(inbound_at, c.c.last_inbound_at),
            reminders_sent=sa.case((inbound_at.is_(None), c.c.reminders_sent), else_=0),
        )
    )
    stmt_mark_inbound = (
        sa.update(c)
        .where(c.c.id == sa.bindparam("conversation_id"))
        .values(last_inbound_at=sa.bindparam("now"), reminders_sent=0)
    )
    stmt_close_thread = (
        sa.update(threads)
        .where(threads.c.id == sa.bindparam("thread_id"), threads.c.closed_at.is_(None))
        .values(closed_at=sa.bindparam("now"), closed_by=sa.bindparam("closed_by"))
    )
    closing = _param("now", UTCDateTime())
    stmt_close_threads_of = (
        sa.update(threads)
        .where(threads.c.respondent_id == sa.bindparam("of_respondent"), *open_thread(closing))
        .values(closed_at=closing, closed_by=sa.bindparam("closed_by"))
    )
    stmt_stored_replies = sa.select(inbox.c.replies).where(
        inbox.c.channel == sa.bindparam("channel"),
        inbox.c.provider_message_id == sa.bindparam("message_id"),
    )
    stmt_add_inbound = (
        sa.insert(inbox)
        .values(
            channel=sa.bindparam("channel"),
            provider_message_id=sa.bindparam("message_id"),
            respondent_id=sa.bindparam("respondent_id"),
            received_at=sa.bindparam("now"),
            replies=sa.bindparam("replies"),
        )
        .returning(inbox.c.id)
    )
    stmt_start_assessment = (
        sa.insert(assessments)
        .values(
            respondent_id=sa.bindparam("respondent_id"),
            mode=sa.bindparam("mode"),
            flow_id=sa.bindparam("flow_id"),
            flow_version=sa.bindparam("flow_version"),
            started_at=sa.bindparam("now"),
            kind=sa.bindparam("kind"),
            baseline_id=sa.bindparam("baseline_id"),
        )
        .returning(assessments.c.id)
    )
    stmt_complete_assessment = (
        sa.update(assessments)
        .where(assessments.c.id == sa.bindparam("assessment_id"))
        .values(completed_at=sa.bindparam("now"))
    )
    stmt_set_skills_basis = (
        sa.update(assessments)
        .where(assessments.c.id == sa.bindparam("assessment_id"))
        .values(skills_basis=sa.bindparam("basis"))
    )
    stmt_abandon_assessment = (
        sa.update(assessments)
        .where(
            assessments.c.id == sa.bindparam("assessment_id"),
            assessments.c.completed_at.is_(None),
        )
        .values(abandoned_at=sa.bindparam("now"))
    )
    upsert = insert(answers).values(
        assessment_id=sa.bindparam("assessment_id"),
        question=sa.bindparam("question"),
        **{name: sa.bindparam(name) for name in ANSWER_FIELDS},
    )
    stmt_save_answer = upsert.on_conflict_do_update(
        index_elements=[answers.c.assessment_id, answers.c.question],
        set_={name: upsert.excluded[name] for name in ANSWER_FIELDS},
    )
    stmt_clear_answer = sa.delete(answers).where(
        answers.c.assessment_id == sa.bindparam("assessment_id"),
        answers.c.question == sa.bindparam("question"),
    )
    stmt_set_opted_out = (
        sa.update(r)
        .where(r.c.id == sa.bindparam("respondent_id"))
        .values(opted_out=sa.bindparam("opted_out"), opted_out_at=sa.bindparam("now"))
    )
    stmt_set_consent = (
        sa.update(r)
        .where(r.c.id == sa.bindparam("respondent_id"))
        .values(consented_at=sa.bindparam("consented_at"))
    )
    stmt_set_language = (
        sa.update(r)
        .where(r.c.id == sa.bindparam("respondent_id"))
        .values(language=sa.bindparam("language"))
    )
    stmt_set_reachable = (
        sa.update(r).where(r.c.id == sa.bindparam("respondent_id")).values(unreachable=False)
    )
    stmt_set_unreachable = (
        sa.update(r).where(r.c.urn_digest == sa.bindparam("target_digest")).values(unreachable=True)
    )
    # SQLite: the transaction already holds the write lock (BEGIN IMMEDIATE), so the message's
    # replies, if it was seen, are read in the locking statement itself. PostgreSQL reads them
    # in a statement of their own after the row lock: a statement that waited for the lock
    # still sees the rows as they were when it began, before the turn it waited for committed.
    stmt_lock_turn = stmt_lock_with_thread
    if dialect_name == "sqlite":
        stmt_lock_turn = stmt_lock_with_thread.add_columns(stmt_stored_replies.scalar_subquery())
    statements = {
        "_lock": stmt_lock,
        "_lock_with_thread": stmt_lock_with_thread,
        "_add_respondent": stmt_add_respondent,
        "_add_conversation": stmt_add_conversation,
        "_save_conversation": stmt_save_conversation,
        "_mark_inbound": stmt_mark_inbound,
        "_close_thread": stmt_close_thread,
        "_close_threads_of": stmt_close_threads_of,
        "_stored_replies": stmt_stored_replies,
        "_add_inbound": stmt_add_inbound,
        "_start_assessment": stmt_start_assessment,
        "_complete_assessment": stmt_complete_assessment,
        "_set_skills_basis": stmt_set_skills_basis,
        "_abandon_assessment": stmt_abandon_assessment,
        "_save_answer": stmt_save_answer,
        "_clear_answer": stmt_clear_answer,
        "_set_opted_out": stmt_set_opted_out,
        "_set_consent": stmt_set_consent,
        "_set_language": stmt_set_language,
        "_set_reachable": stmt_set_reachable,
        "_set_unreachable": stmt_set_unreachable,
        "_lock_turn": stmt_lock_turn,
    }
    return {name: Prepared(statement) for name, statement in statements.items()}


def open_thread(now: datetime | sa.BindParameter[datetime]) -> tuple[sa.ColumnElement[bool], ...]:
    """Where a follow-up thread is open at `now`: until a worker (or the resident's STOP or
    START) closes it, or it closes by itself at `closes_at`."""
    return (threads.c.closed_at.is_(None), threads.c.closes_at > now)


def _locked(row: Row) -> LockedConversation:
    """The locking statement's row: respondent, conversation, assessment, state, unreachable
    (0 or 1 on SQLite), the open thread and, when asked for on SQLite, the stored replies."""
    respondent_id, conversation_id, assessment_id, state, unreachable, *rest = row
    return LockedConversation(
        respondent_id=respondent_id,
        conversation_id=conversation_id,
        assessment_id=assessment_id,
        state=state,
        unreachable=bool(unreachable),
        thread_id=rest[0] if rest else None,
        seen=_replies(rest[1]) if len(rest) > 1 else None,
    )


def _replies(stored: object) -> tuple[Outbound, ...] | None:
    """An inbox row's replies as the driver gives them (None: no such row)."""
    return None if stored is None else load_replies(json_value(stored))


def _privacy(conn: sa.Connection, privacy: Privacy | None) -> Privacy:
    """`privacy`, or the database's own read with the connection's keys."""
    return privacy if privacy is not None else load_privacy(conn, keys_of(conn))
