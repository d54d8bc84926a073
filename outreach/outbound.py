"""Queueing outreach: a message the bot or a worker starts (an invitation, a follow-up, a
reminder, a check-in), as opposed to a reply to the resident's own text.

The rule it keeps: every outreach message is queued in the caller's transaction together with
its timeline entry, held to the council's quiet hours (it waits, never dropped), and counted in
SMS segments as queued. The sender holds it to quiet hours again when it goes (a retry may fall
outside them). Time is the `now` argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from bot.messages import Outbound
from flows.segments import count_segments
from outreach.quiet_hours import QuietHours, next_send_time
from storage import outbox, timeline
from storage.privacy import Keys

SMS_CHANNEL = "sms"


@dataclass(frozen=True)
class Queued:
    outbox_id: int
    segments: int
    """SMS segments of the text (counted the same way for Telegram, where it costs nothing)."""
    send_after: datetime | None
    """When quiet hours let it go; None: at once."""


def queue_outreach(
    conn: sa.Connection,
    *,
    respondent_id: int,
    channel: str,
    message: Outbound,
    kind: str,
    quiet: QuietHours,
    now: datetime,
    by: str | None = None,
    thread_id: int | None = None,
    keys: Keys | None = None,
) -> Queued:
    """Queue `message` for the worker, due at the next time quiet hours allow, and put it on
    the respondent's timeline."""
    due = next_send_time(quiet, now)
    send_after = due if due > now else None
    segments = count_segments(message.text).segments
    outbox_id = outbox.queue(
        conn,
        channel=channel,
        respondent_id=respondent_id,
        message=message,
        now=now,
        not_before=send_after,
        kind=kind,
        sent_by=by,
        segments=segments,
    )
    timeline.record(
        conn,
        [
            timeline.Entry(
                respondent_id=respondent_id,
                at=now,
                direction="out",
                channel=channel,
                kind=kind,
                text=message.text,
                thread_id=thread_id,
                outbox_id=outbox_id,
                by=by,
            )
        ],
        keys,
    )
    return Queued(outbox_id, segments, send_after)
