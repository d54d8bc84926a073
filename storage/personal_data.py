"""What is held about people, kept only as long as needed: retention, erasure, subject access
and re-encryption under a new key.

The rules it keeps:
- Retention removes exactly what is older than the policy (strictly before `now - days`):
  the typed text of answers (`raw`) and the provider's id of the message that carried them (an
  answer's option, score, time and channel always stay) and the texts of
  timeline messages (the entry stays: when, which way, what kind, by whom), after
  `raw_text_days`; inbox rows with the replies kept for duplicates, and outbox rows already sent
  or given up, after `inbox_days`. It works in small batches, each its own transaction, so
  turns never wait long behind it.
- Erasure removes one person entirely: their respondent row (the encrypted URN and its digest),
  conversation, assessments with every answer, inbox and outbox rows, timeline, follow-up
  threads, scheduled check-ins, enrolments and cohort memberships. Nothing is kept for
  aggregate counts: no report reads them yet, so nothing must stay. On SQLite the deleted
  content is overwritten (`secure_delete`) and the WAL truncated after the commit.
- A subject-access export holds everything about one person and nobody else, decrypted.
- Rekeying encrypts every URN, every kept typed text, every timeline text and the lookup key
  again under the first key, so the old key can then be dropped; digests never change.
Nothing here prints: the `dibot` commands say what was done.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from storage.models import (
    Checkin,
    Cohort,
    CohortMember,
    Enrolment,
    OutboxEntry,
    TimelineEntry,
    table,
)
from storage.privacy import Keys, Privacy, rewrap_lookup_key
from storage.repository import answers, assessments, conversations, inbox, respondents, threads

outbox = table(OutboxEntry)
enrolments = table(Enrolment)
cohorts = table(Cohort)
cohort_members = table(CohortMember)
timeline = table(TimelineEntry)
checkins = table(Checkin)

BATCH = 2000
SETTLED = ("sent", "failed")
"""Outbox rows no worker will send again."""


# --- retention ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionPolicy:
    raw_text_days: int
    """Days an answer's typed text is kept (0: removed at the next run)."""
    inbox_days: int
    """Days inbox rows (the duplicate window) and settled outbox rows are kept."""


@dataclass(frozen=True)
class RetentionReport:
    raw_texts: int
    inbox_messages: int
    outbox_messages: int
    timeline_texts: int = 0
    message_ids: int = 0
    """Answers (with no typed text kept) whose provider message id was removed."""


def _before(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    return column < sa.bindparam("cutoff", type_=column.type)


_old_raw = (
    sa.select(answers.c.id)
    .where(answers.c.raw.is_not(None), _before(answers.c.answered_at))
    .limit(BATCH)
)
_clear_raw = (
    sa.update(answers)
    .where(answers.c.id.in_(_old_raw.scalar_subquery()))
    .values(raw=None, provider_message_id=None)
)
_old_message_id = (
    sa.select(answers.c.id)
    .where(answers.c.provider_message_id.is_not(None), _before(answers.c.answered_at))
    .limit(BATCH)
)
_clear_message_id = (
    sa.update(answers)
    .where(answers.c.id.in_(_old_message_id.scalar_subquery()))
    .values(provider_message_id=None)
)
_old_timeline_text = (
    sa.select(timeline.c.id)
    .where(timeline.c.text_cipher.is_not(None), _before(timeline.c.at))
    .limit(BATCH)
)
_clear_timeline_text = (
    sa.update(timeline)
    .where(timeline.c.id.in_(_old_timeline_text.scalar_subquery()))
    .values(text_cipher=None)
)
_old_inbox = sa.select(inbox.c.id).where(_before(inbox.c.received_at)).limit(BATCH)
_delete_inbox = sa.delete(inbox).where(inbox.c.id.in_(_old_inbox.scalar_subquery()))
_old_outbox = (
    sa.select(outbox.c.id)
    .where(outbox.c.status.in_(SETTLED), _before(outbox.c.updated_at))
    .limit(BATCH)
)
_delete_outbox = sa.delete(outbox).where(outbox.c.id.in_(_old_outbox.scalar_subquery()))


def apply_retention(engine: sa.Engine, policy: RetentionPolicy, now: datetime) -> RetentionReport:
    """Remove what the policy no longer keeps; how many of each were removed."""
    raw_cutoff = now - timedelta(days=policy.raw_text_days)
    inbox_cutoff = now - timedelta(days=policy.inbox_days)
    return RetentionReport(
        raw_texts=_in_batches(engine, _clear_raw, raw_cutoff),
        message_ids=_in_batches(engine, _clear_message_id, raw_cutoff),
        inbox_messages=_in_batches(engine, _delete_inbox, inbox_cutoff),
        outbox_messages=_in_batches(engine, _delete_outbox, inbox_cutoff),
        timeline_texts=_in_batches(engine, _clear_timeline_text, raw_cutoff),
    )


def _in_batches(engine: sa.Engine, statement: sa.Executable, cutoff: datetime) -> int:
    total = 0
    while True:
        with engine.begin() as conn:
            count = conn.execute(statement, {"cutoff": cutoff}).rowcount
        total += count
        if count < BATCH:
            return total


# --- one person ----------------------------------------------------------------------------------

_find = sa.select(respondents).where(respondents.c.urn_digest == sa.bindparam("digest"))
_lock_conversation = (
    sa.select(conversations.c.id)
    .where(conversations.c.respondent_id == sa.bindparam("respondent_id"))
    .with_for_update()
)


_RESPONDENT: sa.BindParameter[int] = sa.bindparam("respondent_id")


def _theirs(table_: sa.Table) -> sa.ColumnElement[bool]:
    return table_.c.respondent_id == _RESPONDENT


def _their_assessments() -> sa.ScalarSelect[Any]:
    return (
        sa.select(assessments.c.id)
        .where(assessments.c.respondent_id == sa.bindparam("respondent_id"))
        .scalar_subquery()
    )


ERASURE_ORDER: tuple[tuple[str, sa.Delete], ...] = (
    ("answers", sa.delete(answers).where(answers.c.assessment_id.in_(_their_assessments()))),
    ("outbox messages", sa.delete(outbox).where(_theirs(outbox))),
    ("inbox messages", sa.delete(inbox).where(_theirs(inbox))),
    ("timeline entries", sa.delete(timeline).where(_theirs(timeline))),
    ("follow-up threads", sa.delete(threads).where(_theirs(threads))),
    ("check-ins", sa.delete(checkins).where(_theirs(checkins))),
    ("enrolments", sa.delete(enrolments).where(_theirs(enrolments))),
    ("cohort memberships", sa.delete(cohort_members).where(_theirs(cohort_members))),
    ("conversations", sa.delete(conversations).where(_theirs(conversations))),
    ("assessments", sa.delete(assessments).where(_theirs(assessments))),
    ("respondents", sa.delete(respondents).where(respondents.c.id == _RESPONDENT)),
)
"""Children first, so it holds with or without cascading foreign keys."""


def erase(engine: sa.Engine, privacy: Privacy, urn: str) -> dict[str, int] | None:
    """Delete everything held about `urn`; rows removed per table, or None if nobody is held.
    A turn of theirs in progress finishes first (their conversation row is locked)."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as conn:
        if sqlite:
            conn.exec_driver_sql("PRAGMA secure_delete=ON")
        found = conn.execute(_find, {"digest": privacy.digest(urn)}).first()
        if found is None:
            return None
        params = {"respondent_id": found.id}
        conn.execute(_lock_conversation, params).all()
        removed = {name: conn.execute(delete, params).rowcount for name, delete in ERASURE_ORDER}
    if sqlite:
        with engine.connect() as conn:
            conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    return removed


def subject_access(
    engine: sa.Engine, privacy: Privacy, urn: str, now: datetime
) -> dict[str, Any] | None:
    """Everything held about `urn`, decrypted, as JSON-ready data; None if nobody is held."""
    with engine.connect() as conn:
        found = conn.execute(_find, {"digest": privacy.digest(urn)}).first()
        if found is None:
            return None
        params = {"respondent_id": found.id}
        return {
            "exported_at": _time(now),
            "respondent": _respondent(found, privacy),
            "conversation": _conversation(conn, params),
            "assessments": _assessments(conn, params, privacy),
            "inbox": _rows(
                conn,
                sa.select(
                    inbox.c.channel,
                    inbox.c.provider_message_id,
                    inbox.c.received_at,
                    inbox.c.replies,
                )
                .where(inbox.c.respondent_id == found.id)
                .order_by(inbox.c.id),
            ),
            "outbox": _rows(
                conn,
                sa.select(
                    outbox.c.channel,
                    outbox.c.kind,
                    outbox.c.text,
                    outbox.c.buttons,
                    outbox.c.sent_by,
                    outbox.c.status,
                    outbox.c.attempts,
                    outbox.c.error,
                    outbox.c.delivery_status,
                    outbox.c.delivery_error_code,
                    outbox.c.created_at,
                    outbox.c.updated_at,
                )
                .where(outbox.c.respondent_id == found.id)
                .order_by(outbox.c.id),
            ),
            "enrolments": _rows(
                conn,
                sa.select(
                    enrolments.c.enrolled_at,
                    enrolments.c.enrolled_by,
                    enrolments.c.lawful_basis,
                    cohorts.c.name.label("cohort"),
                )
                .outerjoin(cohorts, cohorts.c.id == enrolments.c.cohort_id)
                .where(enrolments.c.respondent_id == found.id)
                .order_by(enrolments.c.id),
            ),
            "cohorts": _rows(
                conn,
                sa.select(cohorts.c.name, cohorts.c.initiative, cohort_members.c.added_at)
                .join(cohort_members, cohort_members.c.cohort_id == cohorts.c.id)
                .where(cohort_members.c.respondent_id == found.id)
                .order_by(cohorts.c.name),
            ),
            "timeline": _timeline(conn, params, privacy),
            "followup_threads": _rows(
                conn,
                sa.select(
                    threads.c.id,
                    threads.c.opened_by,
                    threads.c.opened_at,
                    threads.c.closes_at,
                    threads.c.closed_at,
                    threads.c.closed_by,
                )
                .where(threads.c.respondent_id == found.id)
                .order_by(threads.c.id),
            ),
            "checkins": _rows(
                conn,
                sa.select(
                    checkins.c.due_at,
                    checkins.c.status,
                    checkins.c.skip_reason,
                    checkins.c.baseline_id,
                    checkins.c.scheduled_by,
                    checkins.c.scheduled_at,
                    checkins.c.invited_at,
                    cohorts.c.name.label("cohort"),
                )
                .outerjoin(cohorts, cohorts.c.id == checkins.c.cohort_id)
                .where(checkins.c.respondent_id == found.id)
                .order_by(checkins.c.id),
            ),
        }


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _plain(value: Any) -> Any:
    return _time(value) if isinstance(value, datetime) else value


def _rows(conn: sa.Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    return [
        {key: _plain(value) for key, value in row._mapping.items()} for row in conn.execute(query)
    ]


def _respondent(row: sa.Row[Any], privacy: Privacy) -> dict[str, Any]:
    return {
        "urn": privacy.decrypt(row.urn_cipher),
        "language": row.language,
        "consented_at": _time(row.consented_at),
        "opted_out": row.opted_out,
        "opted_out_at": _time(row.opted_out_at),
        "unreachable": row.unreachable,
        "created_at": _time(row.created_at),
    }


def _conversation(conn: sa.Connection, params: dict[str, Any]) -> dict[str, Any] | None:
    query = sa.select(
        conversations.c.flow_id,
        conversations.c.flow_version,
        conversations.c.state,
        conversations.c.created_at,
        conversations.c.updated_at,
    ).where(conversations.c.respondent_id == params["respondent_id"])
    rows = _rows(conn, query)
    if not rows:
        return None
    conversation = rows[0]
    with contextlib.suppress(ValueError):  # unreadable: exported as it is stored
        conversation["state"] = json.loads(conversation["state"])
    return conversation


def _assessments(
    conn: sa.Connection, params: dict[str, Any], privacy: Privacy
) -> list[dict[str, Any]]:
    held = _rows(
        conn,
        sa.select(
            assessments.c.id,
            assessments.c.mode,
            assessments.c.flow_id,
            assessments.c.flow_version,
            assessments.c.started_at,
            assessments.c.completed_at,
            assessments.c.abandoned_at,
            assessments.c.skills_basis,
            assessments.c.kind,
            assessments.c.baseline_id,
        )
        .where(assessments.c.respondent_id == params["respondent_id"])
        .order_by(assessments.c.id),
    )
    for assessment in held:
        assessment["answers"] = [
            _answer(row, privacy)
            for row in conn.execute(
                sa.select(answers)
                .where(answers.c.assessment_id == assessment["id"])
                .order_by(answers.c.id)
            )
        ]
    return held


def _timeline(
    conn: sa.Connection, params: dict[str, Any], privacy: Privacy
) -> list[dict[str, Any]]:
    """Every message in and out, texts decrypted (None once retention removed them)."""
    held = _rows(
        conn,
        sa.select(
            timeline.c.at,
            timeline.c.direction,
            timeline.c.channel,
            timeline.c.kind,
            timeline.c.text_cipher.label("text"),
            timeline.c.thread_id,
            timeline.c.by,
        )
        .where(timeline.c.respondent_id == params["respondent_id"])
        .order_by(timeline.c.at, timeline.c.id),
    )
    for entry in held:
        if entry["text"] is not None:
            entry["text"] = privacy.decrypt(entry["text"])
    return held


def _answer(row: sa.Row[Any], privacy: Privacy) -> dict[str, Any]:
    return {
        "question": row.question,
        "item_id": row.item_id,
        "aspect": row.aspect,
        "option": row.option,
        "score": row.score,
        "typed_text": None if row.raw is None else privacy.decrypt(row.raw),
        "answered_at": _time(row.answered_at),
        "channel": row.channel,
    }


# --- a new key --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RekeyReport:
    urns: int
    raw_texts: int
    timeline_texts: int = 0


def rekey(engine: sa.Engine, keys: Keys) -> RekeyReport:
    """Encrypt everything encrypted again under the first of `keys` (any of them decrypts
    it now), a batch per transaction; the lookup key last, so a run stopped half-way is
    simply run again."""
    urns = _rotate(engine, keys, respondents.c.id, respondents.c.urn_cipher)
    raw_texts = _rotate(engine, keys, answers.c.id, answers.c.raw)
    timeline_texts = _rotate(engine, keys, timeline.c.id, timeline.c.text_cipher)
    with engine.begin() as conn:
        rewrap_lookup_key(conn, keys)
    return RekeyReport(urns=urns, raw_texts=raw_texts, timeline_texts=timeline_texts)


def _rotate(engine: sa.Engine, keys: Keys, key: sa.Column[Any], column: sa.Column[Any]) -> int:
    table_ = column.table
    update = (
        sa.update(table_)
        .where(key == sa.bindparam("row_id"))
        .values({column.name: sa.bindparam("token")})
    )
    total = 0
    for batch in _batches(engine, key, column):
        with engine.begin() as conn:
            conn.execute(
                update, [{"row_id": row_id, "token": keys.rotate(token)} for row_id, token in batch]
            )
        total += len(batch)
    return total


def _batches(
    engine: sa.Engine, key: sa.Column[Any], column: sa.Column[Any]
) -> Iterator[list[tuple[int, str]]]:
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(key, column)
                .where(key > last, column.is_not(None))
                .order_by(key)
                .limit(BATCH)
            ).all()
        if not rows:
            return
        yield [(row[0], row[1]) for row in rows]
        last = rows[-1][0]
