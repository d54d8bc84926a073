"""The outbox: replies and check-ins written in a turn's transaction, sent later by workers.

A row goes pending → sending (claimed) → sent | failed, or back to pending with a later
`next_attempt_at` for a retry. A row left in "sending" (the worker died after the provider may
have accepted it) is never sent again automatically: a double send is worse than a gap that
delivery status callbacks and staff can see. Two workers never claim the same row (PostgreSQL:
`FOR UPDATE SKIP LOCKED`; SQLite: the claim runs under `BEGIN IMMEDIATE`). Rows for respondents
who cannot be reached, or who opted out (except the reply to their STOP), are never handed out:
they are marked failed, with the error saying which ("unreachable" or "opted out"). A worker
that claimed a row it must not send yet (pacing) releases it: pending again, its claim not
counted as an attempt. A row's respondent is handed out with their URN decrypted with the
engine's keys (`storage.privacy.keys_of`): the database holds it only encrypted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bot.messages import Button, Outbound
from storage.codec import dump_buttons, load_buttons
from storage.models import OutboxEntry, Respondent, table
from storage.privacy import Keys, keys_of

outbox = table(OutboxEntry)
respondents = table(Respondent)

OPTED_OUT_ERROR = "opted out"
UNREACHABLE_ERROR = "unreachable"


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    channel: str
    urn: str
    text: str
    buttons: tuple[Button, ...]
    attempts: int
    """Claims so far, this one included."""


_queue = (
    sa.insert(outbox)
    .values(
        channel=sa.bindparam("channel"),
        respondent_id=sa.bindparam("respondent_id"),
        inbox_id=sa.bindparam("inbox_id"),
        text=sa.bindparam("text"),
        buttons=sa.bindparam("buttons"),
        status="pending",
        attempts=0,
        next_attempt_at=sa.bindparam("now"),
        created_at=sa.bindparam("now"),
        updated_at=sa.bindparam("now"),
    )
    .returning(outbox.c.id)
)

_blocked = respondents.c.unreachable | (
    respondents.c.opted_out
    & (
        outbox.c.inbox_id.is_(None)
        | respondents.c.opted_out_at.is_(None)
        | (outbox.c.created_at < respondents.c.opted_out_at)
    )
)
"""Never send to someone unreachable; to someone opted out, only what a turn of theirs queued
since they opted out (the engine's confirmation of STOP): no check-in, nothing older."""

_due = (
    sa.select(
        outbox.c.id,
        outbox.c.channel,
        respondents.c.urn_cipher,
        outbox.c.text,
        outbox.c.buttons,
        outbox.c.attempts,
        _blocked.label("blocked"),
        respondents.c.unreachable,
    )
    .join_from(outbox, respondents, outbox.c.respondent_id == respondents.c.id)
    .where(
        outbox.c.status == "pending",
        outbox.c.channel == sa.bindparam("channel"),
        outbox.c.next_attempt_at <= sa.bindparam("now", type_=outbox.c.next_attempt_at.type),
    )
    .order_by(outbox.c.id)
    .limit(sa.bindparam("limit"))
    .with_for_update(of=outbox, skip_locked=True)
)

_due_by_id = _due.where(outbox.c.id.in_(sa.bindparam("ids", expanding=True)))

_mark_sending = (
    sa.update(outbox)
    .where(outbox.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(status="sending", attempts=outbox.c.attempts + 1, updated_at=sa.bindparam("now"))
)

_give_up_blocked = (
    sa.update(outbox)
    .where(outbox.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(status="failed", error=sa.bindparam("error"), updated_at=sa.bindparam("now"))
)

_release = (
    sa.update(outbox)
    .where(outbox.c.id == sa.bindparam("message_id"), outbox.c.status == "sending")
    .values(
        status="pending",
        attempts=outbox.c.attempts - 1,
        next_attempt_at=sa.bindparam("not_before", type_=outbox.c.next_attempt_at.type),
        updated_at=sa.bindparam("now"),
    )
)

_mark_sent = (
    sa.update(outbox)
    .where(outbox.c.id == sa.bindparam("message_id"), outbox.c.status == "sending")
    .values(
        status="sent",
        provider_message_id=sa.bindparam("provider_message_id"),
        error=None,
        updated_at=sa.bindparam("now"),
    )
)

_mark_failed = (
    sa.update(outbox)
    .where(outbox.c.id == sa.bindparam("message_id"), outbox.c.status == "sending")
    .values(
        status=sa.bindparam("status"),
        error=sa.bindparam("error"),
        next_attempt_at=sa.func.coalesce(
            sa.bindparam("retry_at", type_=outbox.c.next_attempt_at.type),
            outbox.c.next_attempt_at,
        ),
        updated_at=sa.bindparam("now"),
    )
)


def queue(
    conn: sa.Connection,
    *,
    channel: str,
    respondent_id: int,
    message: Outbound,
    now: datetime,
    inbox_id: int | None = None,
) -> int:
    """Add a message to send as soon as a worker gets to it; in the caller's transaction."""
    outbox_id: int = conn.execute(
        _queue,
        {
            "channel": channel,
            "respondent_id": respondent_id,
            "inbox_id": inbox_id,
            "text": message.text,
            "buttons": dump_buttons(message.buttons),
            "now": now,
        },
    ).scalar_one()
    return outbox_id


def claim(engine: sa.Engine, channel: str, limit: int, now: datetime) -> list[OutboxMessage]:
    """Up to `limit` due messages for `channel`, oldest first, now marked "sending"."""
    return _claim(engine, _due, {"channel": channel, "now": now, "limit": limit})


def claim_ids(
    engine: sa.Engine, channel: str, ids: Sequence[int], now: datetime
) -> list[OutboxMessage]:
    """Like `claim`, for these rows only (those still due): a webhook sends its own turn's
    replies at once, not whatever older rows wait for the worker."""
    if not ids:
        return []
    params = {"channel": channel, "now": now, "limit": len(ids), "ids": list(ids)}
    return _claim(engine, _due_by_id, params)


def _claim(engine: sa.Engine, due: sa.Select[Any], params: dict[str, Any]) -> list[OutboxMessage]:
    """Mark the due rows "sending" and hand them out; give up on those that must not go."""
    now = params["now"]
    with engine.begin() as conn:
        rows = conn.execute(due, params).all()
        unreachable = [row.id for row in rows if row.blocked and row.unreachable]
        opted_out = [row.id for row in rows if row.blocked and not row.unreachable]
        claimed = [row for row in rows if not row.blocked]
        # Decrypted before anything is marked: a wrong key fails the claim, changing nothing.
        messages = [_message(row, keys_of(engine)) for row in claimed]
        for ids, error in ((unreachable, UNREACHABLE_ERROR), (opted_out, OPTED_OUT_ERROR)):
            if ids:
                conn.execute(_give_up_blocked, {"ids": ids, "error": error, "now": now})
        if claimed:
            conn.execute(_mark_sending, {"ids": [row.id for row in claimed], "now": now})
    return messages


def mark_sent(engine: sa.Engine, message_id: int, provider_message_id: str, now: datetime) -> None:
    """The provider accepted the message. Only a claimed ("sending") row changes."""
    with engine.begin() as conn:
        conn.execute(
            _mark_sent,
            {"message_id": message_id, "provider_message_id": provider_message_id, "now": now},
        )


def mark_failed(
    engine: sa.Engine, message_id: int, error: str, now: datetime, retry_at: datetime | None
) -> None:
    """The send failed: give up (`retry_at` None) or try again from `retry_at`."""
    with engine.begin() as conn:
        conn.execute(
            _mark_failed,
            {
                "message_id": message_id,
                "status": "failed" if retry_at is None else "pending",
                "error": error,
                "retry_at": retry_at,
                "now": now,
            },
        )


def release(engine: sa.Engine, message_id: int, not_before: datetime, now: datetime) -> bool:
    """Hand a claimed row back unsent: pending from `not_before`, its claim not counted as an
    attempt. Only a "sending" row changes; whether one did."""
    with engine.begin() as conn:
        result = conn.execute(
            _release, {"message_id": message_id, "not_before": not_before, "now": now}
        )
    return result.rowcount == 1


def _message(row: sa.Row[Any], keys: Keys) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        channel=row.channel,
        urn=keys.decrypt(row.urn_cipher),
        text=row.text,
        buttons=load_buttons(row.buttons),
        attempts=row.attempts + 1,
    )
