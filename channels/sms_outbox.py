"""Sending the outbox's SMS rows through Twilio's REST API, within the sender's segment rate.

The rule it keeps: a row is sent again only when Twilio certainly did not take it, and nothing
is handed to Twilio before the row is marked "sending" (see `storage.outbox`). `SmsSender`
claims due "sms" rows a few at a time (`CLAIM_BATCH`: one claim's query serves several
sends) and takes them one by one: it begins one, sends it to the number in its URN
("tel:+447700900123") and records what the send proved (see `channels.twilio_send`):
- accepted: sent, with Twilio's Message SID (its delivery reports find the row by it), the
  segments Twilio counts, and the delivery status a new message starts in ("queued" from a
  number, "accepted" through a Messaging Service);
- retry_later (Twilio certainly did not take it): pending again after `RetryPolicy.delay`, an
  exponential back-off with jitter, never sooner than a Retry-After; given up (failed) once it
  has waited `RetryPolicy.give_up_after` since it was first due. A 429, or any answer with a
  Retry-After, holds the whole sender until the row's retry: the limit is Twilio's, not the
  resident's;
- unknown (the request may have reached Twilio and no answer says so): "unknown", never resent;
  the delivery reports or Twilio's message log settle it;
- opted_out (21610: the number sent STOP to Twilio): failed, and the respondent opted out, so
  nothing more is sent to them until they text START;
- refused (any other 4xx): failed, never retried, with Twilio's code and words kept on the
  row (Twilio's words can name the number: they are stored, never logged). When the refusal
  is about the number itself (21211, not a valid number; 21614, not a mobile) the respondent
  is marked unreachable too, so their later rows are never sent.

Pacing is per sender (the Messaging Service, else the number), in segments a second, shared by
every worker process sending from it: a send's slot is reserved in the transaction that begins
it (`storage.outbox.begin_paced`, `storage.outbox.Pace`), and the worker sleeps until it; a
429 holds the sender for every worker. Outreach rows (any `kind` but "reply") go only when the
council's quiet hours allow: a retry can fall outside them. A row that must wait (quiet hours,
or a slot more than `PACING_SLEEP_LIMIT` away) is released, pending again from when it may go,
no attempt counted, with the rest of its batch; while the sender is held the worker claims
nothing more, so one hold does not claim and release every row that is due. Rows claimed and
not begun when the process dies wait out their claim's lease (a minute), then another worker
takes them. Time comes from a `Clock`, so tests run without sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from channels.sending import DEFAULT_POLICY, Clock, RetryPolicy, WorkerStep
from channels.twilio_send import SmsOutcome, TwilioSendSettings, TwilioSms, status_callback_url
from dibot.config import Config
from flows.segments import count_segments
from outreach.quiet_hours import QuietHours, next_send_time, parse_quiet_hours
from storage import outbox
from storage.outbox import OutboxMessage

CHANNEL = "sms"
URN_PREFIX = "tel:"
SMALLEST_BATCH = 10
LARGEST_BATCH = 100
"""Rows one claim takes: about a second's worth at the sender's rate (10 at Twilio's UK 10
segments a second), never fewer than `SMALLEST_BATCH` (a claim is a transaction of several
statements: ten sends share it) nor more than `LARGEST_BATCH` (held by one worker, claimed rows
are not another's to send, and hold back their respondents' later rows)."""
PACING_SLEEP_LIMIT = timedelta(seconds=0.5)
"""The longest pacing pause slept through holding a claimed row: a two- or three-part text at
Twilio's UK rate of 10 segments a second waits 0.2-0.3 s."""
OPTED_OUT_AT_TWILIO = "opted out (Twilio 21610)"
NUMBER_CANNOT_TAKE_SMS = frozenset({21211, 21614})
"""Twilio's refusals that are about the number itself (not a valid number; not a mobile): no
text will ever reach it, so the respondent is marked unreachable."""
NOT_A_PHONE_URN = "not a phone number: the respondent's URN is not tel:"
STARTING_STATUS = {True: "accepted", False: "queued"}
"""The status Twilio gives a message it has just taken, by whether it went through a
Messaging Service (which has yet to pick a number) or from a number."""

log = logging.getLogger(__name__)


class SmsSender:
    """The worker's SMS sender: `send_due` claims, paces, sends and records one row."""

    name = CHANNEL

    def __init__(
        self,
        sms: TwilioSms,
        engine: sa.Engine,
        *,
        clock: Clock,
        quiet: QuietHours,
        mark_opted_out: Callable[[str], None],
        mark_unreachable: Callable[[str], None],
        segments_per_second: int,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.sms = sms
        self.engine = engine
        self.clock = clock
        self.quiet = quiet
        self.mark_opted_out = mark_opted_out
        self.mark_unreachable = mark_unreachable
        self.segments_per_second = segments_per_second
        self.batch = min(max(segments_per_second, SMALLEST_BATCH), LARGEST_BATCH)
        self.policy = policy
        self._claimed: deque[OutboxMessage] = deque()
        """Rows this sender holds a claim on and has not begun, oldest first."""
        self._accepted: list[outbox.Accepted] = []
        """The last send Twilio took, not yet recorded: the next claim or begin records it in
        its own transaction, unless something must wait first (see `_record_accepted`)."""
        self._claim_nothing_until: datetime | None = None
        """The sender is held back (a row released for pacing, or a 429) and the worker knows
        until when: before then, a row claimed would only be released again."""
        settings = sms.settings
        timeouts = timedelta(seconds=2 * (settings.connect_timeout + settings.read_timeout))
        self._send_lease = max(policy.send_lease, timeouts)
        self._starting_status = STARTING_STATUS[bool(settings.messaging_service_sid)]
        self.sender = settings.messaging_service_sid or settings.from_number
        """Whose rate a text takes its slot in: shared by every worker sending from it."""

    def send_due(self, stop: threading.Event) -> WorkerStep:
        """Send the oldest due SMS row, paced, or release it for later (pacing, or until quiet
        hours let an outreach row go). Claims nothing while the sender is held back for a row
        already released (the worker waits for that row's `held_until`)."""
        now = self.clock.now()
        if stop.is_set() or (self._claim_nothing_until or now) > now:
            self._release_claimed(now)
            return WorkerStep(claimed=False)
        if not self._claimed:
            claim = outbox.claim(
                self.engine,
                CHANNEL,
                self.batch,
                now,
                self.policy.claim_lease,
                accepted=self._take_accepted(),
            )
            self._claimed.extend(claim)
        if not self._claimed:
            return WorkerStep(claimed=False)
        row = self._claimed.popleft()
        if row.kind != "reply" and not self.quiet.allows(now):
            self._record_accepted()
            opens = next_send_time(self.quiet, now)
            outbox.release(self.engine, row, opens, now)
            log.info("sms outbox %d: %s held by quiet hours", row.id, row.kind)
            return WorkerStep(claimed=True, held_until=opens)
        segments = row.segments or count_segments(row.text).segments
        if stop.is_set():
            now = self.clock.now()
            outbox.release(self.engine, row, now, now)
            self._release_claimed(now)
            return WorkerStep(claimed=True, held_until=now)
        return self._send(row, segments)

    def close(self) -> None:
        self._release_claimed(self.clock.now())
        self.sms.close()

    def _take_accepted(self) -> list[outbox.Accepted]:
        accepted, self._accepted = self._accepted, []
        return accepted

    def _record_accepted(self) -> None:
        """Record the last send Twilio took now, in a transaction of its own: before anything
        that waits (pacing, quiet hours, a stop), so that its Message SID is on its row before
        Twilio's delivery reports can come."""
        outbox.record_accepted(self.engine, self._take_accepted())

    def _release_claimed(self, now: datetime, not_before: datetime | None = None) -> None:
        """Record what was accepted, then hand back every row claimed and not begun, pending
        from `not_before` (else now)."""
        self._record_accepted()
        while self._claimed:
            outbox.release(self.engine, self._claimed.popleft(), not_before or now, now)

    def __enter__(self) -> SmsSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, row: OutboxMessage, segments: int) -> WorkerStep:
        """Begin the row with its slot in the sender's rate reserved, sleep until the slot, send
        and record; or, when the slot is more than `PACING_SLEEP_LIMIT` away, release it (and
        the rest of the batch) until then."""
        now = self.clock.now()
        pace = outbox.Pace(self.sender, segments, self.segments_per_second)
        begun = outbox.begin_paced(
            self.engine,
            row,
            now,
            pace,
            now + PACING_SLEEP_LIMIT,
            self._send_lease,
            accepted=self._take_accepted(),
        )
        if not begun.begun and begun.at is None:
            log.warning("sms outbox %d: its claim ran out before the send; not sent", row.id)
            return WorkerStep(claimed=True)
        if not begun.begun:
            assert begun.at is not None
            self._claim_nothing_until = begun.at - PACING_SLEEP_LIMIT
            outbox.release(self.engine, row, begun.at, now)
            self._release_claimed(now, begun.at)
            return WorkerStep(claimed=True, held_until=begun.at)
        if not row.urn.startswith(URN_PREFIX):
            outbox.mark_failed(self.engine, row, NOT_A_PHONE_URN, self.clock.now())
            return WorkerStep(claimed=True)
        assert begun.at is not None
        pause = begun.at - self.clock.now()
        if pause > timedelta(0):  # the row is "sending": its slot is kept even when stopping
            self.clock.sleep(pause.total_seconds())
        outcome = self.sms.send(row.urn.removeprefix(URN_PREFIX), row.text)
        now = self.clock.now()
        retry_at = self._record(row, outcome, now)
        if retry_at is not None and (outcome.retry_after is not None or outcome.http_status == 429):
            outbox.hold_sender(self.engine, self.sender, retry_at)
            self._claim_nothing_until = retry_at - PACING_SLEEP_LIMIT
            self._release_claimed(now, retry_at)
        return WorkerStep(claimed=True, tried=True, held_until=retry_at)

    def _record(self, row: OutboxMessage, outcome: SmsOutcome, now: datetime) -> datetime | None:
        """Store the outcome of one begun send; when it goes again, if it will."""
        if outcome.kind == "accepted":
            self._accepted.append(
                outbox.Accepted(
                    row,
                    outcome.message_sid or "",
                    now,
                    delivery_status=self._starting_status,
                    segments=outcome.segments,
                )
            )
            return None
        code = "" if outcome.error_code is None else f", Twilio error {outcome.error_code}"
        log.warning("sms outbox %d: %s%s", row.id, outcome.kind, code)
        if outcome.kind == "unknown":
            outbox.mark_unknown(
                self.engine, row, f"not confirmed, not resent: {outcome.reason}", now
            )
        elif outcome.kind == "retry_later" and not self.policy.gives_up(row, now):
            retry_at = now + self.policy.delay(row.attempts, outcome.retry_after)
            outbox.retry(self.engine, row, outcome.reason, now, retry_at)
            return retry_at
        elif outcome.kind == "retry_later":
            error = f"gave up after {row.attempts} tries: {outcome.reason}"
            outbox.mark_failed(self.engine, row, error, now)
        elif outcome.kind == "opted_out":
            outbox.mark_failed(self.engine, row, OPTED_OUT_AT_TWILIO, now)
            self.mark_opted_out(row.urn)
        else:
            said = f": {outcome.error_message}" if outcome.error_message else ""
            outbox.mark_failed(self.engine, row, outcome.reason + said, now)
            if outcome.error_code in NUMBER_CANNOT_TAKE_SMS:
                self.mark_unreachable(row.urn)
        return None


def sms_sender_for(
    config: Config,
    engine: sa.Engine,
    clock: Clock,
    mark_opted_out: Callable[[str], None],
    mark_unreachable: Callable[[str], None],
) -> SmsSender | None:
    """The SMS sender the configuration describes; None, said in one log line, when Twilio
    sending is not configured (no account_sid, auth_token, or sender)."""
    twilio = config.twilio
    missing = [
        key
        for key, value in (
            ("account_sid", twilio.account_sid),
            ("auth_token", twilio.auth_token),
            (
                "from_number or messaging_service_sid",
                twilio.from_number or twilio.messaging_service_sid,
            ),
        )
        if not value
    ]
    if missing:
        log.info("sms sender: not configured (no twilio.%s)", ", twilio.".join(missing))
        return None
    settings = TwilioSendSettings(
        account_sid=twilio.account_sid,
        auth_token=twilio.auth_token,
        messaging_service_sid=twilio.messaging_service_sid,
        from_number=twilio.from_number,
        status_callback_url=status_callback_url(twilio.public_url),
        api_base_url=twilio.api_base_url,
    )
    outreach = config.outreach
    return SmsSender(
        TwilioSms(settings),
        engine,
        clock=clock,
        quiet=parse_quiet_hours(outreach.quiet_hours, outreach.quiet_days, outreach.timezone),
        mark_opted_out=mark_opted_out,
        mark_unreachable=mark_unreachable,
        segments_per_second=twilio.segments_per_second,
    )
