"""A respondent's timeline: every message in and out of their conversation, for staff.

The rule it keeps: a message's text is written only encrypted (`Keys.encrypt`), and read back
only through `read`, which decrypts it; `dibot retention` removes texts after
`privacy.raw_text_days` and keeps the rest (when, which way, why, by whom). An outgoing entry
carried by an outbox row shows that row's send and delivery status. Nothing here commits: the
caller's transaction writes the entry with the message it records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage.models import OutboxEntry, TimelineEntry, table
from storage.prepared import Prepared
from storage.privacy import Keys, keys_of

timeline = table(TimelineEntry)
outbox = table(OutboxEntry)

DIRECTIONS = ("in", "out")
IN_KINDS = ("message", "held")
"""An inbound the bot took, or one kept for an outreach worker while a thread was open."""

COLUMNS = (
    "respondent_id",
    "at",
    "direction",
    "channel",
    "kind",
    "text_cipher",
    "thread_id",
    "outbox_id",
    "by",
)
_records: dict[int, Prepared] = {}
"""One multi-row INSERT per number of entries, compiled when first used."""


def _record(count: int) -> Prepared:
    prepared = _records.get(count)
    if prepared is None:
        # Typed as their columns: SQLAlchemy types the first row's parameters, not the others'.
        rows: list[dict[str, Any]] = [
            {name: sa.bindparam(f"{name}_{row}", type_=timeline.c[name].type) for name in COLUMNS}
            for row in range(count)
        ]
        prepared = _records[count] = Prepared(sa.insert(timeline).values(rows))
    return prepared


_read = (
    sa.select(
        timeline.c.id,
        timeline.c.at,
        timeline.c.direction,
        timeline.c.channel,
        timeline.c.kind,
        timeline.c.text_cipher,
        timeline.c.thread_id,
        timeline.c.outbox_id,
        timeline.c.by,
        outbox.c.status.label("send_status"),
        outbox.c.delivery_status,
        outbox.c.delivery_error_code,
        outbox.c.error.label("send_error"),
    )
    .join_from(timeline, outbox, outbox.c.id == timeline.c.outbox_id, isouter=True)
    .where(timeline.c.respondent_id == sa.bindparam("respondent_id"))
    .order_by(timeline.c.at, timeline.c.id)
)


@dataclass(frozen=True)
class Entry:
    """One message to record."""

    respondent_id: int
    at: datetime
    direction: str
    channel: str
    kind: str
    text: str | None
    thread_id: int | None = None
    outbox_id: int | None = None
    by: str | None = None


@dataclass(frozen=True)
class TimelineItem:
    """One message as staff read it."""

    id: int
    at: datetime
    direction: str
    channel: str
    kind: str
    text: str | None
    """None once retention removed it."""
    thread_id: int | None
    outbox_id: int | None
    by: str | None
    send_status: str | None
    """The outbox row's status (pending, sent, failed…), for a message sent by a worker."""
    delivery_status: str | None
    delivery_error_code: int | None
    send_error: str | None


def record(conn: sa.Connection, entries: list[Entry], keys: Keys | None = None) -> None:
    """Write `entries` (texts encrypted with `keys`, else the connection's) in one statement,
    one multi-row INSERT (`storage.prepared`)."""
    if not entries:
        return
    for entry in entries:
        if entry.direction not in DIRECTIONS:
            raise ValueError(f"a timeline entry goes in or out, not {entry.direction!r}")
    keys = keys if keys is not None else keys_of(conn)
    params = {
        f"{name}_{row}": value
        for row, entry in enumerate(entries)
        for name, value in _row(entry, keys).items()
    }
    _record(len(entries)).run(conn, params)


def read(conn: sa.Connection, respondent_id: int, keys: Keys | None = None) -> list[TimelineItem]:
    """The respondent's timeline, oldest first, texts decrypted."""
    keys = keys if keys is not None else keys_of(conn)
    rows = conn.execute(_read, {"respondent_id": respondent_id}).all()
    return [_item(row, keys) for row in rows]


def _row(entry: Entry, keys: Keys) -> dict[str, Any]:
    text = None if entry.text is None else keys.encrypt(entry.text.replace("\x00", ""))
    return {
        "respondent_id": entry.respondent_id,
        "at": entry.at,
        "direction": entry.direction,
        "channel": entry.channel,
        "kind": entry.kind,
        "text_cipher": text,
        "thread_id": entry.thread_id,
        "outbox_id": entry.outbox_id,
        "by": None if entry.by is None else entry.by[:100],
    }


def _item(row: Any, keys: Keys) -> TimelineItem:
    return TimelineItem(
        id=row.id,
        at=row.at,
        direction=row.direction,
        channel=row.channel,
        kind=row.kind,
        text=None if row.text_cipher is None else keys.decrypt(row.text_cipher),
        thread_id=row.thread_id,
        outbox_id=row.outbox_id,
        by=row.by,
        send_status=row.send_status,
        delivery_status=row.delivery_status,
        delivery_error_code=row.delivery_error_code,
        send_error=row.send_error,
    )
