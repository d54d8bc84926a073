"""The turn handler: one inbound message in, one database transaction, the replies out.

The rules it keeps:
- one transaction per turn, committed here and nowhere else: lock the respondent's
  conversation, deduplicate on (channel, provider message id), step the engine, record what it
  says happened, save the state, store the replies with the inbound, queue them if asked;
- a message seen before changes nothing and gets the replies it got the first time;
- one respondent's turns run one at a time (row lock on PostgreSQL, `BEGIN IMMEDIATE` on
  SQLite), so two messages at once answer two consecutive questions;
- if anything fails, nothing of the turn is stored, and the provider's retry starts afresh;
- what to say, and to whom (an opted-out respondent included), is the engine's decision;
- the respondent is found by one keyed hash of their URN, which is stored only encrypted, and
  what they typed is kept encrypted or not at all (`storage.privacy`); a provider's news about
  someone never stored (a 21610 for a number that never texted) stores nothing;
- every message goes on the respondent's timeline (`storage.timeline`), in one more statement:
  what they sent (kind "message"; its text only when typed text is kept at all) and each reply
  (kind "reply", with its outbox id when queued);
- while an outreach worker's follow-up thread is open for them (`outreach.followups`), the bot
  stays quiet: their message is kept for the worker (timeline kind "held", with the thread),
  seen in the inbox (a duplicate is still a duplicate) and counted as their last word for
  reminders, but the conversation is not stepped and nothing is said, so the assessment
  carries on where it was once the thread closes. Only opting out and opting in still reach
  the engine, as always: STOP or START in any of the flow's languages (and YES while they are
  opted out, as the engine reads it), which also closes the thread: after STOP nothing more is
  sent, after START the bot carries on, so its next question must not be held. A button tap
  or an edited message is never a command (as in the engine), so it is held.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from bot.engine import step
from bot.matching import command_of
from bot.messages import Event, Inbound, Outbound, Turn
from bot.state import State, StateError
from flows.model import Flow
from storage import outbox, timeline
from storage.privacy import OnceEachKeys, Privacy, open_privacy
from storage.repository import AnswerRecord, LockedConversation, TurnStore

log = logging.getLogger(__name__)

THREAD_COMMANDS = frozenset({"stop", "start"})
"""What reaches the engine while a follow-up thread is open (and closes it)."""
OPT_IN_WHILE_OPTED_OUT = "opt_in"
"""YES: a command only while the respondent is opted out (Twilio lifts its block on it)."""
CLOSED_BY_RESIDENT = "resident"
CLOSED_BY_OPT_OUT = "opted out"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TurnResult:
    replies: tuple[Outbound, ...]
    """What to send now; for a duplicate, the replies stored the first time."""
    duplicate: bool
    """(channel, message_id) was seen before; nothing changed."""
    queued: tuple[int, ...]
    """Outbox ids of the replies, when `queue_replies` was asked for."""
    events: tuple[Event, ...]
    """What the engine said happened; () for a duplicate."""
    stale: bool = False
    """`if_state` refused the conversation as it was: nothing was stored or said."""


@dataclass(frozen=True)
class _Delivery:
    """Which provider message a turn answers, and when it arrived."""

    channel: str
    message_id: str
    now: datetime


class TurnHandler:
    """Takes turns for one flow on one database; safe to share between threads."""

    def __init__(
        self,
        engine: sa.Engine,
        flow: Flow,
        clock: Callable[[], datetime] = utc_now,
        *,
        keep_raw_text: bool = True,
    ) -> None:
        """`keep_raw_text` False: answers keep their option and score, never what was typed.
        The keys are the engine's (`storage.privacy.keys_of`), read with the database's lookup
        key on the first turn."""
        self._engine = engine
        self._flow = flow
        self._clock = clock
        self._store = TurnStore(engine.dialect.name)
        self._keep_raw_text = keep_raw_text
        self._opened: Privacy | None = None

    @property
    def privacy(self) -> Privacy:
        """The database's keys and lookup key, read once."""
        if self._opened is None:
            self._opened = open_privacy(self._engine)
        return self._opened

    def handle(
        self,
        *,
        channel: str,
        message_id: str,
        urn: str,
        inbound: Inbound,
        queue_replies: bool = False,
        language: str | None = None,
        language_chosen: bool = False,
        replies_withheld: bool = False,
        if_state: Callable[[State], bool] | None = None,
    ) -> TurnResult:
        """Take one turn. `language` is the respondent's language as their channel knows it
        (Telegram's setting): a new conversation starts in it, without asking, when it is one
        of the flow's languages other than the default. With `language_chosen` it is the
        respondent's own choice (`dibot chat --lang`), so the default language counts too.
        `replies_withheld`: the channel will not send the replies (Twilio confirms its own
        opt-out words itself), so the timeline does not show them as sent.
        `if_state`: take the turn only if the saved state, read under the lock, passes it (a
        web form answering the question it showed, `dashboard.assisted`); else it is `stale`."""
        now = self._clock()
        opened = self.privacy
        privacy = Privacy(OnceEachKeys(opened.keys), opened.lookup_key)
        store = self._store
        delivery = _Delivery(channel, message_id, now)
        with self._engine.begin() as conn:
            conversation = store.lock_conversation(
                conn,
                urn,
                self._flow,
                self._new_state(language, language_chosen),
                now,
                privacy,
                message=(channel, message_id),
            )
            if conversation.seen is not None:
                return TurnResult(replies=conversation.seen, duplicate=True, queued=(), events=())
            if if_state is not None and not if_state(self._saved_state(conversation)):
                return TurnResult(replies=(), duplicate=False, queued=(), events=(), stale=True)
            thread_id = conversation.thread_id
            if thread_id is not None and not self._reaches_engine_in_thread(conversation, inbound):
                self._hold(conn, conversation, inbound, delivery, thread_id)
                return TurnResult(replies=(), duplicate=False, queued=(), events=())
            turn = step(self._flow, self._saved_state(conversation), inbound, now)
            assessment_id = self._record(conn, conversation, turn, delivery, privacy)
            store.save_conversation(
                conn,
                conversation,
                turn.state.to_json(),
                self._flow,
                assessment_id,
                now,
                inbound=True,
            )
            inbox_id = store.add_inbound(
                conn, channel, message_id, conversation.respondent_id, turn.outbound, now
            )
            if conversation.unreachable:
                store.set_reachable(conn, conversation.respondent_id)
            if thread_id is not None:
                store.close_thread(conn, thread_id, now, CLOSED_BY_RESIDENT)
            queued: tuple[int, ...] = ()
            if queue_replies:
                queued = tuple(
                    outbox.queue(
                        conn,
                        channel=channel,
                        respondent_id=conversation.respondent_id,
                        message=reply,
                        now=now,
                        inbox_id=inbox_id,
                    )
                    for reply in turn.outbound
                )
            timeline.record(
                conn,
                self._timeline_entries(
                    conversation,
                    inbound,
                    delivery,
                    thread_id,
                    turn if not replies_withheld else Turn(turn.state),
                    queued,
                ),
                privacy.keys,
            )
        return TurnResult(replies=turn.outbound, duplicate=False, queued=queued, events=turn.events)

    def _reaches_engine_in_thread(self, conversation: LockedConversation, inbound: Inbound) -> bool:
        """Whether a message sent while a follow-up thread is open still goes to the engine:
        opting out or in, read as the engine reads commands."""
        if inbound.button is not None or inbound.edited:
            return False
        state = self._saved_state(conversation)
        others = tuple(language for language in self._flow.languages if language != state.language)
        command = command_of(self._flow, inbound.text, (state.language, *others))
        if command == OPT_IN_WHILE_OPTED_OUT:
            return state.opted_out
        return command in THREAD_COMMANDS

    def _hold(
        self,
        conn: sa.Connection,
        conversation: LockedConversation,
        inbound: Inbound,
        delivery: _Delivery,
        thread_id: int,
    ) -> None:
        """Keep the message for the outreach worker: seen, on the timeline, nothing stepped."""
        store, now = self._store, delivery.now
        respondent_id = conversation.respondent_id
        store.add_inbound(conn, delivery.channel, delivery.message_id, respondent_id, (), now)
        store.mark_inbound(conn, conversation.conversation_id, now)
        if conversation.unreachable:
            store.set_reachable(conn, respondent_id)
        held = timeline.Entry(
            respondent_id=respondent_id,
            at=now,
            direction="in",
            channel=delivery.channel,
            kind="held",
            text=self._kept_text(inbound),
            thread_id=thread_id,
        )
        timeline.record(conn, [held], self.privacy.keys)

    def _timeline_entries(
        self,
        conversation: LockedConversation,
        inbound: Inbound,
        delivery: _Delivery,
        thread_id: int | None,
        turn: Turn,
        queued: tuple[int, ...],
    ) -> list[timeline.Entry]:
        """What they sent, then each reply, as the turn's timeline entries."""
        respondent_id, channel, now = conversation.respondent_id, delivery.channel, delivery.now
        entries = [
            timeline.Entry(
                respondent_id=respondent_id,
                at=now,
                direction="in",
                channel=channel,
                kind="message",
                text=self._kept_text(inbound),
                thread_id=thread_id,
            )
        ]
        outbox_ids: tuple[int | None, ...] = queued or (None,) * len(turn.outbound)
        entries.extend(
            timeline.Entry(
                respondent_id=respondent_id,
                at=now,
                direction="out",
                channel=channel,
                kind="reply",
                text=reply.text,
                outbox_id=outbox_id,
            )
            for reply, outbox_id in zip(turn.outbound, outbox_ids, strict=True)
        )
        return entries

    def _kept_text(self, inbound: Inbound) -> str | None:
        """What the respondent sent, as the timeline keeps it: their text (a tapped button's
        payload), or nothing at all when typed text is not kept."""
        if not self._keep_raw_text:
            return None
        return inbound.text or inbound.button or ""

    def _new_state(self, language: str | None, chosen: bool = False) -> State:
        """A new conversation, in the channel's language if that is one of the flow's others,
        or any of its languages when the respondent chose it.

        A device set to the default language (English) says little: most Welsh speakers'
        phones are, so they are still offered the choice."""
        if language in (self._flow.languages if chosen else self._flow.languages[1:]):
            return State(language=language, language_chosen=True)
        return State(language=self._flow.languages[0])

    def _saved_state(self, conversation: LockedConversation) -> State:
        """The conversation's saved state; one that cannot be read (a bug, a hand edit, an
        older dibot's garbage) is set aside rather than failing every turn for ever: the
        respondent starts again, in their language if that much can be read, with an apology.
        The log names the conversation and the problem, never the content."""
        try:
            return State.from_json(conversation.state)
        except ValueError as error:
            log.warning(
                "conversation %s: saved state unreadable (%s); set aside, starting again",
                conversation.conversation_id,
                error if isinstance(error, StateError) else type(error).__name__,
            )
        language = _readable_language(conversation.state)
        if language in self._flow.languages:
            return State(language=language, language_chosen=True, lost_place=True)
        return State(language=self._flow.languages[0], lost_place=True)

    def mark_unreachable(self, urn: str) -> None:
        """The provider cannot deliver to `urn` (Telegram: bot blocked; Twilio 21610: the
        number sent STOP to Twilio). No outbox message goes to them until they write again."""
        privacy = self.privacy
        with self._engine.begin() as conn:
            self._store.set_unreachable(conn, urn, privacy)

    def mark_opted_out(self, urn: str) -> None:
        """Twilio refused a send with 21610: the number opted out at Twilio (it sent STOP
        there, perhaps in a message we never saw). Mirror it in the respondent's record and
        conversation, so nothing more is sent until they text START, as after our own STOP.
        A number never stored stays so: nothing is kept about someone who never texted."""
        now = self._clock()
        privacy = self.privacy
        with self._engine.begin() as conn:
            conversation = self._store.find_conversation(conn, urn, privacy)
            if conversation is None:
                return
            state = self._saved_state(conversation)
            if not state.opted_out:
                self._store.save_conversation(
                    conn,
                    conversation,
                    state.evolve(opted_out=True).to_json(),
                    self._flow,
                    conversation.assessment_id,
                    now,
                )
            self._store.set_opted_out(conn, conversation.respondent_id, True, now)
            self._store.close_threads_of(conn, conversation.respondent_id, now, CLOSED_BY_OPT_OUT)

    def _record(
        self,
        conn: sa.Connection,
        conversation: LockedConversation,
        turn: Turn,
        delivery: _Delivery,
        privacy: Privacy,
    ) -> int | None:
        """Apply the turn's events; returns the assessment answers now go to."""
        store, now = self._store, delivery.now
        respondent_id = conversation.respondent_id
        assessment_id = conversation.assessment_id
        for event in turn.events:
            kind = event.kind
            if kind == "assessment_started":
                mode = event.mode or turn.state.mode or ""
                assessment_id = store.start_assessment(
                    conn,
                    respondent_id,
                    mode,
                    self._flow,
                    now,
                    kind=turn.state.kind,
                    baseline_id=turn.state.baseline_id,
                )
            elif kind in ("answered", "skipped"):
                if assessment_id is None:
                    # The conversation's assessment was deleted (erasure, retention) while it
                    # was live: keep the answers in a new one rather than lose them.
                    mode = turn.state.mode or ""
                    assessment_id = store.start_assessment(
                        conn, respondent_id, mode, self._flow, now
                    )
                answer = AnswerRecord(
                    question=_question(event),
                    option=event.option,
                    score=event.score,
                    raw=event.raw,
                    answered_at=now,
                    channel=delivery.channel,
                    provider_message_id=delivery.message_id,
                )
                kept = privacy if self._keep_raw_text else None
                store.save_answer(conn, assessment_id, answer, kept)
            elif kind == "cleared" and assessment_id is not None:
                store.clear_answer(conn, assessment_id, _question(event))
            elif kind == "skills_basis_chosen" and assessment_id is not None:
                store.set_skills_basis(conn, assessment_id, event.basis)
            elif kind == "assessment_completed" and assessment_id is not None:
                store.complete_assessment(conn, assessment_id, now)
            elif kind == "assessment_abandoned" and assessment_id is not None:
                store.abandon_assessment(conn, assessment_id, now)
            elif kind in ("opted_out", "opted_in"):
                store.set_opted_out(conn, respondent_id, kind == "opted_out", now)
            elif kind == "language_changed":
                store.set_language(conn, respondent_id, turn.state.language)
            elif kind in ("consented", "declined"):
                store.set_consent(conn, respondent_id, now if kind == "consented" else None)
        return assessment_id


def _readable_language(saved: str) -> str | None:
    try:
        data = json.loads(saved)
    except ValueError:
        return None
    language = data.get("language") if isinstance(data, dict) else None
    return language if isinstance(language, str) else None


def _question(event: Event) -> str:
    if event.question is None:
        raise ValueError(f"a {event.kind} event must name its question")
    return event.question
