"""Follow-ups: an outreach worker texts a resident, and the bot stays quiet while they talk.

The rules it keeps:
- a follow-up goes only to someone held (enrolled, or who texted), not opted out, and whom
  messages can reach; its text is never empty nor longer than `MAX_SEGMENTS` SMS segments.
  Refused, it queues nothing and says why, never naming the number or quoting the text;
- it is queued as outreach (`outreach.outbound.queue_outreach`: held to quiet hours, on the
  timeline with who wrote it) on the resident's own channel (a phone number by SMS, a Telegram
  chat by Telegram), in one transaction that opens their follow-up thread, or keeps the open
  one open longer: until `thread_hours` after the text goes (after quiet hours let it go);
- while the thread is open (not closed, and before `closes_at`), their texts wait for the
  worker and the bot says nothing (`dibot.turns`); it closes when a worker closes it, when the
  resident texts STOP or START, or by itself at `closes_at`; the assessment then carries on
  where it was;
- a text written against what the worker last saw (`queue_followup(after=…)`, the dashboard's
  form) goes only if no other follow-up was queued to the resident since: the same form sent
  twice texts them once;
- a template's placeholders are names in braces ({worker}); each must be given a value, or the
  template is refused naming it; `{{` and `}}` write a brace.
Time is the `now` argument.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from bot.messages import Outbound, clean_text
from bot.state import State
from channels.identifiers import is_telegram_id
from flows.model import Flow
from flows.segments import SegmentCount, count_segments
from outreach.outbound import queue_outreach
from outreach.phone import urn_for_phone
from outreach.quiet_hours import QuietHours, next_send_time
from storage.models import OutboxEntry, TimelineEntry, UTCDateTime, table
from storage.repository import LockedConversation, TurnStore, open_thread, threads

timeline = table(TimelineEntry)
outbox = table(OutboxEntry)

MAX_SEGMENTS = 10
"""The longest follow-up, in SMS segments: ten are 1,530 plain characters, or 670 with an
emoji, a curly quote or a Welsh ŵ in them (UCS-2)."""
SMS_CHANNEL = "sms"
TELEGRAM_CHANNEL = "telegram"
MAX_NAME = 100


class FollowUpError(ValueError):
    """What was asked cannot be done; the message says what and why, never a phone number."""


class NotLatest(FollowUpError):
    """Another follow-up was queued to them after the sender last looked (`queue_followup`)."""


class NothingOpen(FollowUpError):
    """No thread is open with them to close."""


@dataclass(frozen=True)
class FollowUpRequest:
    phone: str | None
    """A UK number as the worker typed it; or None with `telegram`."""
    text: str
    by: str
    """The worker who wrote it."""
    telegram: str | None = None
    """A Telegram chat id, for a resident who talks to dibot on Telegram."""


@dataclass(frozen=True)
class Sent:
    respondent_id: int
    channel: str
    outbox_id: int
    segments: SegmentCount
    send_after: datetime | None
    """When quiet hours let it go; None: at once."""
    thread_id: int
    thread_closes_at: datetime
    new_thread: bool
    """No thread was open: this text opened one (else it kept the open one open longer)."""


@dataclass(frozen=True)
class Closed:
    thread_id: int
    opened_by: str
    opened_at: datetime
    held: int
    """Texts of theirs the thread kept for the workers (on their timeline)."""


# --- who, and what -------------------------------------------------------------------------------


def recipient(phone: str | None, telegram: str | None = None) -> tuple[str, str]:
    """(urn, channel): a Telegram chat when one is named, else the phone number (E.164)."""
    if telegram is not None:
        chat = telegram.strip()
        digits = chat.removeprefix("-")
        if not (digits.isascii() and digits.isdigit()) or not is_telegram_id(int(chat)):
            raise FollowUpError("--telegram must be a Telegram chat id (digits)")
        return f"telegram:{int(chat)}", TELEGRAM_CHANNEL
    if phone is None:
        raise FollowUpError("give --phone NUMBER (or --telegram CHAT_ID)")
    return urn_for_phone(phone), SMS_CHANNEL


def checked_text(text: str) -> tuple[str, SegmentCount]:
    """The text as it will be sent (unreadable characters dropped, ends trimmed) and what it
    costs; FollowUpError when it is empty or too long."""
    cleaned = clean_text(text).strip()
    if not cleaned:
        raise FollowUpError("the follow-up is empty: give --text TEXT or --template NAME")
    count = count_segments(cleaned)
    if count.segments > MAX_SEGMENTS:
        raise FollowUpError(
            f"the follow-up is {count.segments} SMS segments ({count.encoding}); at most "
            f"{MAX_SEGMENTS} go: shorten it"
        )
    return cleaned, count


def template_placeholders(template: str) -> tuple[str, ...]:
    """The names a template fills in, each once, in order of first use."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        raise FollowUpError(
            "a brace in the template does not pair up: write {{ and }} for a brace itself"
        ) from None
    names: dict[str, None] = {}
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise FollowUpError(
                f"{{{name}}} is not a placeholder: a placeholder is a name in braces, "
                "such as {worker}"
            )
        names[name] = None
    return tuple(names)


def fill_template(template: str, values: Mapping[str, str]) -> str:
    """The template with each placeholder replaced by its value."""
    missing = [name for name in template_placeholders(template) if name not in values]
    if missing:
        raise FollowUpError(
            f"the template's placeholder {{{missing[0]}}} has no value: give --value {missing[0]}=…"
        )
    return "".join(
        literal + ("" if name is None else values[name])
        for literal, name, _, _ in string.Formatter().parse(template)
    )


# --- sending and closing -------------------------------------------------------------------------

_NOW = sa.bindparam("now", type_=UTCDateTime())
_open_thread = (
    sa.select(threads.c.id, threads.c.closes_at)
    .where(threads.c.respondent_id == sa.bindparam("respondent_id"), *open_thread(_NOW))
    .order_by(threads.c.id.desc())
    .limit(1)
)
_open_thread_details = (
    sa.select(threads.c.id, threads.c.opened_by, threads.c.opened_at)
    .where(threads.c.respondent_id == sa.bindparam("respondent_id"), *open_thread(_NOW))
    .order_by(threads.c.id.desc())
    .limit(1)
)
_add_thread = (
    sa.insert(threads)
    .values(
        respondent_id=sa.bindparam("respondent_id"),
        opened_by=sa.bindparam("by"),
        opened_at=sa.bindparam("now"),
        closes_at=sa.bindparam("closes_at"),
    )
    .returning(threads.c.id)
)
_extend_thread = (
    sa.update(threads)
    .where(threads.c.id == sa.bindparam("thread_id"))
    .values(closes_at=sa.bindparam("closes_at"))
)
_last_followup = sa.select(sa.func.max(outbox.c.id)).where(
    outbox.c.respondent_id == sa.bindparam("respondent_id"), outbox.c.kind == "followup"
)
_held_in_thread = (
    sa.select(sa.func.count())
    .select_from(timeline)
    .where(timeline.c.thread_id == sa.bindparam("thread_id"), timeline.c.kind == "held")
)


def open_thread_id(conn: sa.Connection, respondent_id: int, now: datetime) -> int | None:
    """The respondent's follow-up thread open at `now`, if any."""
    row = conn.execute(_open_thread, {"respondent_id": respondent_id, "now": now}).first()
    return None if row is None else int(row.id)


def send_followup(
    engine: sa.Engine,
    flow: Flow,
    request: FollowUpRequest,
    quiet: QuietHours,
    thread_hours: int,
    now: datetime,
) -> Sent:
    """Queue the worker's text to the resident and open (or extend) their thread."""
    with engine.begin() as conn:
        return queue_followup(conn, flow, request, quiet, thread_hours, now)


def queue_followup(
    conn: sa.Connection,
    flow: Flow,
    request: FollowUpRequest,
    quiet: QuietHours,
    thread_hours: int,
    now: datetime,
    *,
    after: int | None = None,
) -> Sent:
    """`send_followup` in the caller's transaction. With `after` (the `last_followup` the
    worker saw when they wrote it), a follow-up queued to the resident since then (the same
    form sent twice, or another worker's text) refuses this one with `NotLatest`: checked
    under the conversation's lock, so two sends of one form never both go."""
    urn, channel = recipient(request.phone, request.telegram)
    text, count = checked_text(request.text)
    by = _worker(request.by)
    store = TurnStore(conn.dialect.name)
    conversation = _reachable(store.find_conversation(conn, urn), flow)  # locked
    respondent_id = conversation.respondent_id
    if after is not None and last_followup(conn, respondent_id) > after:
        raise NotLatest("a follow-up went to them after this one was written; nothing queued")
    due = next_send_time(quiet, now)
    closes_at = due + timedelta(hours=thread_hours)
    thread = conn.execute(_open_thread, {"respondent_id": respondent_id, "now": now}).first()
    if thread is None:
        thread_id: int = conn.execute(
            _add_thread,
            {"respondent_id": respondent_id, "by": by, "now": now, "closes_at": closes_at},
        ).scalar_one()
    else:
        thread_id = thread.id
        closes_at = max(closes_at, thread.closes_at)
        conn.execute(_extend_thread, {"thread_id": thread_id, "closes_at": closes_at})
    queued = queue_outreach(
        conn,
        respondent_id=respondent_id,
        channel=channel,
        message=Outbound(text),
        kind="followup",
        quiet=quiet,
        now=now,
        by=by,
        thread_id=thread_id,
    )
    return Sent(
        respondent_id=respondent_id,
        channel=channel,
        outbox_id=queued.outbox_id,
        segments=count,
        send_after=queued.send_after,
        thread_id=thread_id,
        thread_closes_at=closes_at,
        new_thread=thread is None,
    )


def last_followup(conn: sa.Connection, respondent_id: int) -> int:
    """The outbox id of the latest follow-up queued to the respondent (0: none yet)."""
    found = conn.execute(_last_followup, {"respondent_id": respondent_id}).scalar_one_or_none()
    return int(found or 0)


def close_thread(
    engine: sa.Engine,
    phone: str | None,
    by: str,
    now: datetime,
    *,
    telegram: str | None = None,
) -> Closed:
    """Close the resident's open thread: the bot takes their texts again, from where they were."""
    with engine.begin() as conn:
        return end_thread(conn, phone, by, now, telegram=telegram)


def end_thread(
    conn: sa.Connection,
    phone: str | None,
    by: str,
    now: datetime,
    *,
    telegram: str | None = None,
) -> Closed:
    """`close_thread` in the caller's transaction."""
    urn, _ = recipient(phone, telegram)
    store = TurnStore(conn.dialect.name)
    conversation = store.find_conversation(conn, urn)
    if conversation is None:
        raise FollowUpError("nobody with that number is held")
    params = {"respondent_id": conversation.respondent_id, "now": now}
    thread = conn.execute(_open_thread_details, params).first()
    if thread is None:
        raise NothingOpen("no follow-up thread is open with them: nothing to close")
    store.close_thread(conn, thread.id, now, _worker(by))
    held = conn.execute(_held_in_thread, {"thread_id": thread.id}).scalar_one()
    return Closed(
        thread_id=thread.id, opened_by=thread.opened_by, opened_at=thread.opened_at, held=held
    )


def _reachable(conversation: LockedConversation | None, flow: Flow) -> LockedConversation:
    """The conversation of someone a follow-up may go to; FollowUpError says why not."""
    if conversation is None:
        raise FollowUpError(
            "nobody with that number is held: enrol them first (dibot enrol --phone NUMBER); "
            "nothing queued"
        )
    try:
        state = State.from_json(conversation.state)
    except ValueError:  # unreadable: their next turn sets it aside; opting out is kept apart
        state = State(language=flow.languages[0])
    if state.opted_out:
        raise FollowUpError("they opted out (they can text START); nothing queued")
    if conversation.unreachable:
        raise FollowUpError(
            "messages cannot reach them (the provider refused the last one) until they write "
            "again; nothing queued"
        )
    return conversation


def _worker(by: str) -> str:
    name = by.strip()
    if not name:
        raise FollowUpError("--by must name who wrote it")
    return name[:MAX_NAME]
