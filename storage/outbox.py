"""The outbox: replies and check-ins written in a turn's transaction, sent later by workers.

The rule it keeps: a row is handed to the provider automatically only while nothing shows the
provider may already have it, so a message is never sent twice by the machine; whatever may
have gone and is not confirmed is set aside as "unknown" for staff. A row's states:

- pending: waiting to be claimed, from `next_attempt_at`.
- claimed: a worker holds it until `lease_until` (`lease_token` says which claim) and has sent
  nothing yet. A claim whose lease ran out (its worker died or stalled) is due again, and the
  next claim takes it with a new token; the old holder can then no longer begin.
- sending: the holder has begun handing it to the provider (`begin`, which counts an attempt
  and extends the lease to the longest a send may take). Only its holder records the outcome:
  - sent: the provider accepted it (`mark_sent`, with its message id);
  - pending again: the provider certainly did not take it (`retry`, from `retry_at`);
  - failed: it must not or cannot go (`mark_failed`), never retried;
  - unknown: it may have gone and no answer says so (`mark_unknown`), never resent.
  A "sending" row whose lease ran out (its worker died mid-send) becomes unknown at the next
  claim, since the provider may have it.
- A claimed row its holder must not send yet (pacing, stopping) is released: pending again,
  no attempt counted.

Two workers never claim the same row (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: the claim
runs under `BEGIN IMMEDIATE`). Per respondent and channel, rows go in order: a row is claimed
only when no earlier row of theirs is pending, claimed or sending (a webhook claiming its own
turn's replies together counts only rows outside them), so a reply never overtakes one waiting
to be retried; but a reply does not wait behind outreach that is waiting itself (an invitation
held by quiet hours until the morning does not hold back tonight's replies). Rows for
respondents who cannot be reached, or who opted out (except the reply to their STOP), are
never handed out: they are marked failed, with the error saying which ("unreachable" or
"opted out"). Outreach that opens or nudges a conversation, queued before the resident last
wrote, is given up (failed, `SUPERSEDED_ERROR`) when it comes to the head of its line, in the
claim that would have taken it: checked on the rows a claim takes, never on every row due,
which at 100,000 due made each claim a scan of them all. A row's respondent is handed out with
their URN decrypted with the engine's keys (`storage.privacy.keys_of`): the database holds it
only encrypted.

A sending number (or Messaging Service) keeps one rate however many workers send from it: its
`sender_pace` row says when its next text may start and which texts started in the second
before, and `begin_paced` reserves the text's slot (`Pace`) under that row's lock (`FOR
UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` serialises writers), in the transaction
that begins the send. A reservation too far ahead is not made and the row not begun: the
worker releases it until then. A reserved slot a worker dies before using is time lost, never
a second send.

A sender records a send the provider accepted (`Accepted`) in the transaction that begins its
next send or makes its next claim: one commit a send, and still never more than one row of a
sender "sending" at a time.

After a row is sent, the provider's delivery reports (`record_delivery`) move its
`delivery_status` only forward (accepted, queued, sending, sent, then one of delivered,
undelivered or failed, which are final; read may follow delivered).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot.messages import Button, Outbound
from storage.codec import dump_buttons, load_buttons
from storage.models import (
    DELIVERY_STATUSES,
    OUTBOX_KINDS,
    Conversation,
    OutboxEntry,
    Respondent,
    SenderPace,
    table,
)
from storage.privacy import Keys, keys_of

outbox = table(OutboxEntry)
sender_pace = table(SenderPace)
respondents = table(Respondent)
conversations = table(Conversation)

OPTED_OUT_ERROR = "opted out"
UNREACHABLE_ERROR = "unreachable"
SUPERSEDED_ERROR = "not needed: they wrote to us after it was queued"
SUPERSEDABLE_KINDS = ("invitation", "reminder", "checkin")
"""Outreach that opens or nudges a conversation: stale once the resident has written since."""
LEASE_LOST_ERROR = "its worker stopped while sending: not confirmed, not resent"
CLAIM_LEASE = timedelta(seconds=60)
"""How long a claim holds a row it has not begun to send (a webhook holds its turn's replies
for its whole budget)."""
SEND_LEASE = timedelta(seconds=120)
"""How long a row stays "sending" before it is taken for lost: longer than any send lasts."""
UNSETTLED = ("pending", "claimed", "sending")
"""A row in one of these still holds back its respondent's later rows."""


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    channel: str
    urn: str
    text: str
    buttons: tuple[Button, ...]
    attempts: int
    """Tries this one included: sends begun before it, plus one."""
    lease_token: str = ""
    """The claim that holds it: only that claim may begin, settle or release it."""
    created_at: datetime | None = None
    kind: str = "reply"
    """A reply to the respondent's message, or outreach (`storage.models.OUTBOX_KINDS`), which
    only goes within quiet hours."""
    first_due_at: datetime | None = None
    segments: int | None = None
    """SMS segments, as counted when it was queued (None: not counted then)."""


@dataclass(frozen=True)
class Accepted:
    """A begun send the provider took, to record as "sent" (`mark_accepted`): a sender may hand
    it to its next `begin` or `claim`, so one commit records it and starts the next send."""

    message: OutboxMessage
    provider_message_id: str
    at: datetime
    delivery_status: str | None = None
    """Where the provider says it stands (e.g. Twilio's "queued"); kept only when one of
    `storage.models.DELIVERY_STATUSES`."""
    segments: int | None = None


WINDOW = timedelta(seconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Pace:
    """A text's place in its sender's rate: `segments` at `segments_per_second` from `sender`.

    Two rules, in whole microseconds so that no rounding lets a text through early:
    - the rate: each text holds the sender for its segments' share of a second (3 segments at
      10 a second: 0.3 s), so N texts of k segments keep it busy N*k/r seconds, as Twilio's own
      queue would;
    - the window: no sliding second holds more than the rate, texts counted at their start (a
      text longer than the rate goes alone in its second)."""

    sender: str
    segments: int
    segments_per_second: int

    def cost(self) -> timedelta:
        """The text's segments' share of a second, rounded up to a microsecond."""
        return _share(self.segments, self.segments_per_second)

    def slot(
        self, now: datetime, free_at: datetime, recent: Sequence[tuple[datetime, int]]
    ) -> datetime:
        """When the text may start: not before `now`, nor before the sender is `free_at`, nor
        while the texts started in the second before (`recent`, oldest first) leave no room."""
        start = max(now, free_at)
        in_window = [(at, count) for at, count in recent if at > start - WINDOW]
        total = sum(count for _, count in in_window)
        for at, count in in_window:  # oldest first: wait for each to leave the window
            if total == 0 or total + self.segments <= self.segments_per_second:
                break
            start = max(start, at + WINDOW)
            total -= count
        return start


def _share(segments: int, segments_per_second: int) -> timedelta:
    return timedelta(microseconds=-(-segments * 1_000_000 // segments_per_second))


@dataclass(frozen=True)
class Begun:
    """What `begin` with a `Pace` came to."""

    begun: bool
    """The row is "sending" and its slot reserved: send it at `at`."""
    at: datetime | None = None
    """When it may go: its reserved slot if begun; else the earliest slot the sender had
    (None: the claim no longer held the row, which must not be sent)."""


_free_at = (
    sa.select(sender_pace.c.free_at, sender_pace.c.recent)
    .where(sender_pace.c.sender == sa.bindparam("sender"))
    .with_for_update()
)
_reserve = (
    sa.update(sender_pace)
    .where(sender_pace.c.sender == sa.bindparam("of_sender"))
    .values(
        free_at=sa.bindparam("next_free_at", type_=sender_pace.c.free_at.type),
        recent=sa.bindparam("now_recent", type_=sender_pace.c.recent.type),
    )
)
_hold_sender = (
    sa.update(sender_pace)
    .where(
        sender_pace.c.sender == sa.bindparam("of_sender"),
        sender_pace.c.free_at < sa.bindparam("until", type_=sender_pace.c.free_at.type),
    )
    .values(free_at=sa.bindparam("until", type_=sender_pace.c.free_at.type))
)


_add_sender = {
    "postgresql": postgresql.insert(sender_pace).on_conflict_do_nothing(index_elements=["sender"]),
    "sqlite": sqlite.insert(sender_pace).on_conflict_do_nothing(index_elements=["sender"]),
}
"""A sender's first text adds its row; two workers adding it at once both go on."""


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
        next_attempt_at=sa.bindparam("due"),
        first_due_at=sa.bindparam("due"),
        created_at=sa.bindparam("now"),
        updated_at=sa.bindparam("now"),
        kind=sa.bindparam("kind"),
        sent_by=sa.bindparam("sent_by"),
        segments=sa.bindparam("segments"),
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

_now = sa.bindparam("now", type_=outbox.c.next_attempt_at.type)
_ready = sa.or_(
    (outbox.c.status == "pending") & (outbox.c.next_attempt_at <= _now),
    (outbox.c.status == "claimed") & (outbox.c.lease_until <= _now),
)
"""Due now: pending and its time has come, or claimed by a claim whose lease ran out."""


def _first_in_line(exempt_ids: bool) -> sa.ColumnElement[bool]:
    """No earlier row of the same respondent and channel is still unsettled, waiting outreach
    aside for a reply (rows being claimed together, `ids`, not counted when `exempt_ids`).
    Rows that must not go are given up wherever they are in line."""
    earlier = outbox.alias("earlier")
    waiting_outreach = (
        (outbox.c.kind == "reply")
        & (earlier.c.kind != "reply")
        & (earlier.c.status == "pending")
        & (earlier.c.next_attempt_at > _now)
    )
    # A reply does not wait behind outreach that is itself waiting (quiet hours, pacing, a
    # retry): tonight's answers are not held back by an invitation due in the morning.
    waiting = sa.select(earlier.c.id).where(
        earlier.c.respondent_id == outbox.c.respondent_id,
        earlier.c.channel == outbox.c.channel,
        earlier.c.id < outbox.c.id,
        earlier.c.status.in_(UNSETTLED),
        ~waiting_outreach,
    )
    if exempt_ids:
        waiting = waiting.where(earlier.c.id.not_in(sa.bindparam("ids", expanding=True)))
    return ~waiting.exists()


_superseded = outbox.c.kind.in_(SUPERSEDABLE_KINDS) & (
    sa.select(conversations.c.id)
    .where(
        conversations.c.respondent_id == outbox.c.respondent_id,
        conversations.c.last_inbound_at > outbox.c.created_at,
    )
    .exists()
)
"""Outreach that opens or nudges a conversation (an invitation, reminder or check-in
invitation, waiting for quiet hours, say) queued before the resident last wrote (by text, or
through a worker filling in the assessment with them): it would ask them to start what they are
doing or have done."""


def _due_rows(exempt_ids: bool) -> sa.Select[Any]:
    return (
        sa.select(
            outbox.c.id,
            outbox.c.channel,
            respondents.c.urn_cipher,
            outbox.c.text,
            outbox.c.buttons,
            outbox.c.attempts,
            outbox.c.created_at,
            outbox.c.kind,
            outbox.c.first_due_at,
            outbox.c.segments,
            _superseded.label("superseded"),
        )
        .join_from(outbox, respondents, outbox.c.respondent_id == respondents.c.id)
        .where(
            outbox.c.channel == sa.bindparam("channel"),
            _ready,
            ~_blocked,
            _first_in_line(exempt_ids),
        )
        .order_by(outbox.c.id)
        .limit(sa.bindparam("limit"))
        .with_for_update(of=outbox, skip_locked=True)
    )


_due = _due_rows(exempt_ids=False)
_due_by_id = _due_rows(exempt_ids=True).where(outbox.c.id.in_(sa.bindparam("ids", expanding=True)))

_lose_expired_sends = (
    sa.update(outbox)
    .where(
        outbox.c.channel == sa.bindparam("of_channel"),
        outbox.c.status == "sending",
        outbox.c.lease_until <= _now,
    )
    .values(status="unknown", error=LEASE_LOST_ERROR, updated_at=_now)
)

_mark_claimed = (
    sa.update(outbox)
    .where(outbox.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(
        status="claimed",
        lease_token=sa.bindparam("token"),
        lease_until=sa.bindparam("lease_until", type_=outbox.c.next_attempt_at.type),
        updated_at=_now,
    )
)

_give_up_blocked = (
    sa.update(outbox)
    .where(
        outbox.c.channel == sa.bindparam("of_channel"),
        _ready,
        sa.exists().where(respondents.c.id == outbox.c.respondent_id, _blocked),
    )
    .values(
        status="failed",
        error=sa.case(
            (
                sa.select(respondents.c.unreachable)
                .where(respondents.c.id == outbox.c.respondent_id)
                .scalar_subquery(),
                UNREACHABLE_ERROR,
            ),
            else_=OPTED_OUT_ERROR,
        ),
        updated_at=_now,
    )
)
"""Due rows that must not go are given up wherever they are in line, before any claim (kept
out of the claim's own query, whose plan stays a plain anti-join: an OR there made PostgreSQL
test every due row against every other, seconds a claim with 10,000 due)."""


_give_up = (
    sa.update(outbox)
    .where(outbox.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(status="failed", error=sa.bindparam("error"), updated_at=_now)
)


def _held(status: str) -> sa.ColumnElement[bool]:
    """The row is in `status` under the claim `token`."""
    return sa.and_(
        outbox.c.id == sa.bindparam("message_id"),
        outbox.c.status == status,
        outbox.c.lease_token == sa.bindparam("token"),
    )


_begin = (
    sa.update(outbox)
    .where(_held("claimed"), outbox.c.lease_until > _now)
    .values(
        status="sending",
        attempts=outbox.c.attempts + 1,
        lease_until=sa.bindparam("lease_until", type_=outbox.c.next_attempt_at.type),
        updated_at=_now,
    )
)

_release = (
    sa.update(outbox)
    .where(_held("claimed"))
    .values(
        status="pending",
        next_attempt_at=sa.bindparam("not_before", type_=outbox.c.next_attempt_at.type),
        lease_token=None,
        lease_until=None,
        updated_at=_now,
    )
)

_settle = (
    sa.update(outbox)
    .where(_held("sending"))
    .values(
        status=sa.bindparam("status"),
        error=sa.bindparam("error"),
        provider_message_id=sa.bindparam("provider_message_id"),
        next_attempt_at=sa.func.coalesce(
            sa.bindparam("retry_at", type_=outbox.c.next_attempt_at.type),
            outbox.c.next_attempt_at,
        ),
        updated_at=_now,
    )
)

_settle_accepted = (
    sa.update(outbox)
    .where(_held("sending"))
    .values(
        status="sent",
        error=None,
        provider_message_id=sa.bindparam("provider_message_id"),
        segments=sa.func.coalesce(sa.bindparam("segments", type_=sa.Integer), outbox.c.segments),
        delivery_status=sa.func.coalesce(
            outbox.c.delivery_status, sa.bindparam("delivery_status", type_=sa.String)
        ),
        delivery_updated_at=sa.func.coalesce(
            outbox.c.delivery_updated_at,
            sa.bindparam("delivery_at", type_=outbox.c.next_attempt_at.type),
        ),
        updated_at=_now,
    )
)

_count_unknown = sa.select(sa.func.count()).where(
    outbox.c.channel == sa.bindparam("channel"), outbox.c.status == "unknown"
)


def queue(
    conn: sa.Connection,
    *,
    channel: str,
    respondent_id: int,
    message: Outbound,
    now: datetime,
    inbox_id: int | None = None,
    not_before: datetime | None = None,
    kind: str = "reply",
    sent_by: str | None = None,
    segments: int | None = None,
) -> int:
    """Add a message to send as soon as a worker gets to it (not before `not_before`, e.g.
    the end of the council's quiet hours); in the caller's transaction. `kind` says why it is
    sent (`storage.models.OUTBOX_KINDS`), `sent_by` who wrote a follow-up."""
    if kind not in OUTBOX_KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    outbox_id: int = conn.execute(
        _queue,
        {
            "channel": channel,
            "respondent_id": respondent_id,
            "inbox_id": inbox_id,
            "text": message.text,
            "buttons": dump_buttons(message.buttons),
            "now": now,
            "due": not_before or now,
            "kind": kind,
            "sent_by": sent_by,
            "segments": segments,
        },
    ).scalar_one()
    return outbox_id


def claim(
    engine: sa.Engine,
    channel: str,
    limit: int,
    now: datetime,
    lease: timedelta = CLAIM_LEASE,
    *,
    accepted: Sequence[Accepted] = (),
) -> list[OutboxMessage]:
    """Up to `limit` due messages for `channel`, oldest first, each the first in line for its
    respondent, now claimed until `now + lease`; sends `accepted` since are recorded first, in
    the same transaction."""
    params = {"channel": channel, "now": now, "limit": limit}
    return _claim(engine, _due, params, lease, settle_superseded=True, accepted=accepted)


def claim_ids(
    engine: sa.Engine,
    channel: str,
    ids: Sequence[int],
    now: datetime,
    lease: timedelta = CLAIM_LEASE,
) -> list[OutboxMessage]:
    """Like `claim`, for these rows only (those due and not behind an older unsettled row): a
    webhook sends its own turn's replies at once, not whatever older rows wait for the worker."""
    if not ids:
        return []
    params = {"channel": channel, "now": now, "limit": len(ids), "ids": list(ids)}
    return _claim(engine, _due_by_id, params, lease, settle_superseded=False)


def _claim(
    engine: sa.Engine,
    due: sa.Select[Any],
    params: dict[str, Any],
    lease: timedelta,
    *,
    settle_superseded: bool,
    accepted: Sequence[Accepted] = (),
) -> list[OutboxMessage]:
    """Record `accepted`, settle lost sends as unknown, give up on due rows that must not go
    (and, for the worker's claim, outreach no longer needed that has come to the head of its
    line: a turn claiming its own replies does not settle other residents' rows), and claim the
    rest."""
    now = params["now"]
    token = secrets.token_hex(8)
    with engine.begin() as conn:
        _record_accepted(conn, accepted)
        conn.execute(_lose_expired_sends, {"of_channel": params["channel"], "now": now})
        conn.execute(_give_up_blocked, {"of_channel": params["channel"], "now": now})
        rows = conn.execute(due, params).all()
        superseded = [row.id for row in rows if settle_superseded and row.superseded]
        if superseded:
            conn.execute(_give_up, {"ids": superseded, "error": SUPERSEDED_ERROR, "now": now})
            rows = [row for row in rows if row.id not in superseded]
        # Decrypted before anything is marked: a wrong key fails the claim, changing nothing.
        messages = [_message(row, keys_of(engine), token) for row in rows]
        if rows:
            conn.execute(
                _mark_claimed,
                {
                    "ids": [row.id for row in rows],
                    "token": token,
                    "lease_until": now + lease,
                    "now": now,
                },
            )
        return messages


def begin(
    engine: sa.Engine,
    message: OutboxMessage,
    now: datetime,
    lease: timedelta = SEND_LEASE,
    *,
    accepted: Sequence[Accepted] = (),
) -> bool:
    """Record that the send starts now, before anything goes to the provider: "sending", one
    more attempt, held until `now + lease`. False (and nothing changes) when the claim no
    longer holds the row (its lease ran out): then it must not be sent. Sends `accepted` before
    it are recorded first, in the same transaction (one commit for the last send's outcome and
    the next one's start), whether or not this one may begin."""
    params = {"message_id": message.id, "token": message.lease_token, "lease_until": now + lease}
    with engine.begin() as conn:
        _record_accepted(conn, accepted)
        result = conn.execute(_begin, {**params, "now": now})
    return result.rowcount == 1


def begin_paced(
    engine: sa.Engine,
    message: OutboxMessage,
    now: datetime,
    pace: Pace,
    latest: datetime,
    lease: timedelta = SEND_LEASE,
    *,
    accepted: Sequence[Accepted] = (),
) -> Begun:
    """`begin`, and reserve the text's slot in its sender's rate (`Pace`), together under the
    sender's row lock: every worker sending from one number shares its rate. Neither happens
    when the slot would start after `latest` (`Begun.at` says when it could) or the claim no
    longer holds the row. `accepted` is recorded first in any case."""
    with engine.begin() as conn:
        _record_accepted(conn, accepted)
        paced = conn.execute(_free_at, {"sender": pace.sender}).one_or_none()
        if paced is None:
            conn.execute(
                _add_sender[engine.dialect.name],
                {"sender": pace.sender, "free_at": now, "recent": []},
            )
            paced = conn.execute(_free_at, {"sender": pace.sender}).one()
        recent = [(_from_micros(at), count) for at, count in paced.recent]
        at = pace.slot(now, paced.free_at, recent)
        if at > latest:
            return Begun(begun=False, at=at)
        params = {"message_id": message.id, "token": message.lease_token}
        begun = conn.execute(_begin, {**params, "lease_until": now + lease, "now": now})
        if begun.rowcount != 1:
            return Begun(begun=False)
        still = [[_micros(sent), count] for sent, count in recent if sent > at - WINDOW]
        conn.execute(
            _reserve,
            {
                "of_sender": pace.sender,
                "next_free_at": at + pace.cost(),
                "now_recent": [*still, [_micros(at), pace.segments]],
            },
        )
    return Begun(begun=True, at=at)


def _micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def _from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def hold_sender(engine: sa.Engine, sender: str, until: datetime) -> None:
    """Nothing more goes from `sender`, by any worker, before `until` (the provider said to
    wait: a 429 or a Retry-After)."""
    with engine.begin() as conn:
        conn.execute(_hold_sender, {"of_sender": sender, "until": until})


def release(engine: sa.Engine, message: OutboxMessage, not_before: datetime, now: datetime) -> bool:
    """Hand a claimed row back unsent: pending from `not_before`, no attempt counted. Only a
    row still claimed by this claim (not begun) changes; whether it did."""
    return _update(engine, _release, message, {"not_before": not_before, "now": now})


def mark_sent(
    engine: sa.Engine, message: OutboxMessage, provider_message_id: str, now: datetime
) -> bool:
    """The provider accepted the message."""
    return _settle_as(engine, message, "sent", now, provider_message_id=provider_message_id)


def retry(
    engine: sa.Engine, message: OutboxMessage, error: str, now: datetime, at: datetime
) -> bool:
    """The provider certainly did not take it: pending again from `at`."""
    return _settle_as(engine, message, "pending", now, error=error, retry_at=at)


def mark_accepted(
    engine: sa.Engine,
    message: OutboxMessage,
    provider_message_id: str,
    now: datetime,
    *,
    delivery_status: str | None = None,
    segments: int | None = None,
) -> bool:
    """The provider accepted the message ("sent", as `mark_sent`) and said where it stands
    (`delivery_status`, e.g. Twilio's "queued") and how many segments it counts; either is
    kept only when given, and a delivery status already reported is never replaced."""
    sent = Accepted(message, provider_message_id, now, delivery_status, segments)
    with engine.begin() as conn:
        return _record_accepted(conn, [sent]) == [True]


def record_accepted(engine: sa.Engine, accepted: Sequence[Accepted]) -> list[bool]:
    """Record sends the provider accepted (`mark_accepted` for each), in one transaction;
    for each, whether its claim still held it."""
    if not accepted:
        return []
    with engine.begin() as conn:
        return _record_accepted(conn, accepted)


def _record_accepted(conn: sa.Connection, accepted: Sequence[Accepted]) -> list[bool]:
    recorded = []
    for sent in accepted:
        status = sent.delivery_status
        if status is not None and status not in DELIVERY_STATUSES:
            status = None
        params = {
            "message_id": sent.message.id,
            "token": sent.message.lease_token,
            "provider_message_id": sent.provider_message_id,
            "segments": sent.segments,
            "delivery_status": status,
            "delivery_at": sent.at if status is not None else None,
            "now": sent.at,
        }
        recorded.append(conn.execute(_settle_accepted, params).rowcount == 1)
    return recorded


def mark_failed(engine: sa.Engine, message: OutboxMessage, error: str, now: datetime) -> bool:
    """It must not or cannot go: final, never retried."""
    return _settle_as(engine, message, "failed", now, error=error)


def mark_unknown(engine: sa.Engine, message: OutboxMessage, error: str, now: datetime) -> bool:
    """It may have gone and nothing confirms it: final, never resent, listed for staff."""
    return _settle_as(engine, message, "unknown", now, error=error)


_count_pending = sa.select(sa.func.count()).where(
    outbox.c.channel == sa.bindparam("channel"), outbox.c.status == "pending"
)


def count_pending(engine: sa.Engine, channel: str) -> int:
    """Rows of `channel` waiting to be sent (now or later)."""
    with engine.connect() as conn:
        return int(conn.execute(_count_pending, {"channel": channel}).scalar_one())


def count_unknown(engine: sa.Engine, channel: str) -> int:
    """Rows of `channel` whose fate is unknown (see the module docstring)."""
    with engine.connect() as conn:
        return int(conn.execute(_count_unknown, {"channel": channel}).scalar_one())


def _settle_as(
    engine: sa.Engine,
    message: OutboxMessage,
    status: str,
    now: datetime,
    *,
    error: str | None = None,
    provider_message_id: str | None = None,
    retry_at: datetime | None = None,
) -> bool:
    """Record a send's outcome; only the claim that began it can, and only once."""
    params = {
        "status": status,
        "error": error,
        "provider_message_id": provider_message_id,
        "retry_at": retry_at,
        "now": now,
    }
    return _update(engine, _settle, message, params)


def _update(
    engine: sa.Engine, statement: sa.Update, message: OutboxMessage, params: dict[str, Any]
) -> bool:
    with engine.begin() as conn:
        result = conn.execute(
            statement, {"message_id": message.id, "token": message.lease_token, **params}
        )
    return result.rowcount == 1


def _message(row: sa.Row[Any], keys: Keys, token: str) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        channel=row.channel,
        urn=keys.decrypt(row.urn_cipher),
        text=row.text,
        buttons=load_buttons(row.buttons),
        attempts=row.attempts + 1,
        lease_token=token,
        created_at=row.created_at,
        kind=row.kind,
        first_due_at=row.first_due_at,
        segments=row.segments,
    )


# --- delivery reports ----------------------------------------------------------------------

_DELIVERY_RANK = {
    "accepted": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}
"""How far along each of `DELIVERY_STATUSES` is: a report moves a row's status only further on."""


def may_replace(status: str) -> tuple[str, ...]:
    """The delivery statuses a report of `status` moves on from: every earlier one; the final
    ones (delivered, undelivered, failed) never, except that "read" may follow "delivered"."""
    rank = _DELIVERY_RANK[status]
    earlier = (known for known, at in _DELIVERY_RANK.items() if at < rank)
    if status == "read":
        return tuple(known for known in earlier if known not in ("undelivered", "failed"))
    return tuple(earlier)


@dataclass(frozen=True)
class DeliveryRecord:
    """What a delivery report came to."""

    found: bool
    """A row of the channel has this provider message id."""
    recorded: bool
    """The report moved the row's delivery status on (False: unknown id, or a repeat or a
    report out of order, which changes nothing)."""
    status: str | None = None
    """The row's delivery status now."""
    error_code: int | None = None
    urn: str | None = None
    """The row's respondent, decrypted."""


_record_delivery = (
    sa.update(outbox)
    .where(
        outbox.c.provider_message_id == sa.bindparam("message_sid"),
        outbox.c.channel == sa.bindparam("of_channel"),
        outbox.c.delivery_status.is_(None)
        | outbox.c.delivery_status.in_(sa.bindparam("earlier", expanding=True)),
    )
    .values(
        delivery_status=sa.bindparam("reported_status"),
        delivery_error_code=sa.bindparam("reported_code"),
        delivery_updated_at=_now,
    )
    .returning(outbox.c.id)
)

_delivery_of = (
    sa.select(outbox.c.delivery_status, outbox.c.delivery_error_code, respondents.c.urn_cipher)
    .join_from(outbox, respondents, outbox.c.respondent_id == respondents.c.id)
    .where(
        outbox.c.provider_message_id == sa.bindparam("message_sid"),
        outbox.c.channel == sa.bindparam("of_channel"),
    )
    .order_by(outbox.c.id)
    .limit(1)
)


def record_delivery(
    engine: sa.Engine,
    message_sid: str,
    status: str,
    error_code: int | None,
    now: datetime,
    *,
    channel: str = "sms",
) -> DeliveryRecord:
    """Record the provider's report that the message it took as `message_sid` is now `status`
    (`storage.models.DELIVERY_STATUSES`), with its error code, unless the row already says
    as much or more (`may_replace`): reports repeat and arrive out of order. One statement,
    so two reports at once for one message cannot move it backwards."""
    if status not in _DELIVERY_RANK:
        raise ValueError(f"unknown delivery status {status!r}")
    with engine.begin() as conn:
        moved = conn.execute(
            _record_delivery,
            {
                "message_sid": message_sid,
                "of_channel": channel,
                "earlier": list(may_replace(status)),
                "reported_status": status,
                "reported_code": error_code,
                "now": now,
            },
        ).all()
        row = conn.execute(
            _delivery_of, {"message_sid": message_sid, "of_channel": channel}
        ).first()
    if row is None:
        return DeliveryRecord(found=False, recorded=False)
    return DeliveryRecord(
        found=True,
        recorded=bool(moved),
        status=row.delivery_status,
        error_code=row.delivery_error_code,
        urn=keys_of(engine).decrypt(row.urn_cipher),
    )
