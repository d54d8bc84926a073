"""The SMS sender as Twilio meets it: the real twilio client against the fake Twilio on 127.0.0.1.

Each outcome is checked with what the fake received: a row is sent again only when Twilio
certainly did not take it, never when it may have; 21610 and invalid numbers stop every later
text to that person; the sender keeps to its segments a second in every second; outreach waits
for quiet hours and replies do not. Time is a clock the sender moves by sleeping (nothing really
sleeps but a stalled request). Runs on SQLite, or on PostgreSQL when DIBOT_DATABASE_URL names it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

import pytest
import sqlalchemy as sa

from bot.messages import Outbound
from bot.state import State
from channels.sending import RetryPolicy, WorkerStep
from channels.sms_outbox import SmsSender, sms_sender_for
from channels.twilio_send import SmsOutcome, TwilioSendSettings, TwilioSms
from dibot.config import Config, DatabaseConfig, OutreachConfig, TwilioConfig
from dibot.turns import TurnHandler
from flows.model import Flow
from flows.segments import count_segments
from outreach.quiet_hours import NO_QUIET_HOURS, QuietHours, parse_quiet_hours
from storage import outbox
from storage.models import OutboxEntry, Respondent, table
from storage.repository import TurnStore
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, MESSAGING_SERVICE_SID, FakeTwilio
from tests.people import urn_digest, urn_of

START = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)
"""A Monday, 10:00 in London: within the council's quiet hours."""
SENDER = "+447700900000"
PUBLIC_URL = "https://dibot.example.gov.uk"
CALLBACK = PUBLIC_URL + "/webhooks/twilio/status"
READ_TIMEOUT = 1.0
"""Long enough for a loaded machine to answer every send that is not made to stall."""
COUNCIL_HOURS = parse_quiet_hours("09:00-20:00", "mon-sat", "Europe/London")
outbox_table, respondents = table(OutboxEntry), table(Respondent)


def phone(index: int) -> str:
    return f"+447700900{index:03d}"


@dataclass
class StepClock:
    """Time that moves only when the sender sleeps (or the test moves it)."""

    at: datetime = START
    slept: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def handler(engine: sa.Engine, flow: Flow, clock: StepClock) -> TurnHandler:
    return TurnHandler(engine, flow, clock=clock.now)


def make_sender(
    twilio: FakeTwilio,
    engine: sa.Engine,
    handler: TurnHandler,
    clock: StepClock,
    *,
    rate: int = 10,
    quiet: QuietHours = NO_QUIET_HOURS,
    policy: RetryPolicy | None = None,
    **settings: Any,
) -> SmsSender:
    values: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": SENDER,
        "status_callback_url": CALLBACK,
        "api_base_url": twilio.base_url,
        "connect_timeout": 2.0,
        "read_timeout": READ_TIMEOUT,
        **settings,
    }
    return SmsSender(
        TwilioSms(TwilioSendSettings(**values)),
        engine,
        clock=clock,
        quiet=quiet,
        mark_opted_out=handler.mark_opted_out,
        mark_unreachable=handler.mark_unreachable,
        segments_per_second=rate,
        policy=policy or RetryPolicy(rng=Random(7)),
    )


def queue(
    engine: sa.Engine,
    flow: Flow,
    number: str,
    text: str,
    *,
    kind: str = "invitation",
    now: datetime = START,
) -> int:
    """A row for `number` (created if new), due at `now`."""
    store = TurnStore(engine.dialect.name)
    with engine.begin() as conn:
        conversation = store.lock_conversation(conn, "tel:" + number, flow, State(), now)
        return outbox.queue(
            conn,
            channel="sms",
            respondent_id=conversation.respondent_id,
            message=Outbound(text),
            now=now,
            kind=kind,
            segments=count_segments(text).segments,
        )


def drain(
    sender: SmsSender,
    clock: StepClock,
    *,
    waiting_for: tuple[WorkerStep, ...] = (),
    steps: int = 5_000,
) -> list[WorkerStep]:
    """What the worker does: send what is due, then wait for what was held back (by these
    steps too), until nothing is left to wait for."""
    stop = threading.Event()
    taken: list[WorkerStep] = []
    held = [step.held_until for step in waiting_for if step.held_until is not None]
    for _ in range(steps):
        step = sender.send_due(stop)
        if step.claimed:
            taken.append(step)
            if step.held_until is not None:
                held.append(step.held_until)
            continue
        held = [at for at in held if at > clock.now()]
        if not held:
            return taken
        clock.sleep((min(held) - clock.now()).total_seconds())
    raise AssertionError(f"the sender did not finish in {steps} steps")


def rows(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(outbox_table, respondents.c.urn_cipher)
            .join_from(outbox_table, respondents)
            .order_by(outbox_table.c.id)
        ).all()
    return [{**row._asdict(), "urn": urn_of(engine, row.urn_cipher)} for row in found]


def row(engine: sa.Engine, outbox_id: int) -> dict[str, Any]:
    return next(found for found in rows(engine) if found["id"] == outbox_id)


def respondent(engine: sa.Engine, number: str) -> dict[str, Any]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(respondents.c.opted_out, respondents.c.unreachable).where(
                respondents.c.urn_digest == urn_digest(engine, "tel:" + number)
            )
        ).one()
    return found._asdict()


# What Twilio receives.


def test_a_row_goes_to_its_number_from_the_number_with_the_status_callback(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: StepClock
) -> None:
    text = "Hello from Anytown Council. Reply 1 to start your digital skills check."
    outbox_id = queue(engine, flow, phone(123), text)
    with make_sender(twilio, engine, handler, clock) as sender:
        steps = drain(sender, clock)

    assert steps == [WorkerStep(claimed=True, tried=True)]
    (request,) = twilio.received
    assert dict(request.params) == {
        "To": phone(123),
        "From": SENDER,
        "Body": text,
        "StatusCallback": CALLBACK,
    }
    (message,) = twilio.messages
    sent = row(engine, outbox_id)
    assert (sent["status"], sent["attempts"], sent["error"]) == ("sent", 1, None)
    assert sent["provider_message_id"] == message.sid
    assert (sent["delivery_status"], sent["delivery_updated_at"]) == ("queued", START)
    assert sent["segments"] == 1


def test_through_a_messaging_service_twilio_picks_the_number(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: StepClock
) -> None:
    text = "Croeso! Diolch am ymuno. " + "ŵ" * 60  # UCS-2, two parts
    outbox_id = queue(engine, flow, phone(123), text)
    sender = make_sender(
        twilio, engine, handler, clock, from_number="", messaging_service_sid=MESSAGING_SERVICE_SID
    )
    with sender:
        drain(sender, clock)

    (request,) = twilio.received
    assert request.params["MessagingServiceSid"] == MESSAGING_SERVICE_SID
    assert "From" not in request.params
    assert request.params["StatusCallback"] == CALLBACK
    sent = row(engine, outbox_id)
    assert (sent["status"], sent["delivery_status"]) == ("sent", "accepted")
    assert sent["segments"] == 2  # as queued: Twilio says 0 until it has picked a number


# Twilio certainly did not take it: sent again, once.


def test_a_429_is_retried_no_sooner_than_its_retry_after_and_holds_the_sender(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: StepClock
) -> None:
    first = queue(engine, flow, phone(1), "First resident's invitation")
    second = queue(engine, flow, phone(2), "Second resident's invitation")
    twilio.rate_limit(retry_after=30, to=phone(1))
    with make_sender(twilio, engine, handler, clock) as sender:
        step = sender.send_due(threading.Event())
        assert step.tried
        assert step.held_until is not None
        assert step.held_until >= START + timedelta(seconds=30)
        assert not sender.send_due(threading.Event()).claimed  # the whole sender waits
        drain(sender, clock, waiting_for=(step,))

    assert [request.params["To"] for request in twilio.received] == [phone(1), phone(1), phone(2)]
    assert len(twilio.messages) == 2
    retried, other = row(engine, first), row(engine, second)
    assert (retried["status"], retried["attempts"]) == ("sent", 2)
    assert retried["updated_at"] >= START + timedelta(seconds=30)
    assert other["status"] == "sent"
    assert other["updated_at"] >= START + timedelta(seconds=30)


def test_a_twilio_5xx_is_retried_with_back_off_then_sent_once(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: StepClock
) -> None:
    outbox_id = queue(engine, flow, phone(1), "An invitation")
    twilio.fail(500, times=2)
    with make_sender(twilio, engine, handler, clock) as sender:
        drain(sender, clock)

    assert len(twilio.received) == 3
    assert len(twilio.messages) == 1
    sent = row(engine, outbox_id)
    assert (sent["status"], sent["attempts"], sent["error"]) == ("sent", 3, None)
    assert clock.at - START >= timedelta(seconds=1 + 2)  # half of 2 s, then half of 4 s at least


def test_a_row_that_cannot_go_for_a_day_is_given_up(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: StepClock
) -> None:
    outbox_id = queue(engine, flow, phone(1), "An invitation")
    twilio.fail(503, times=1_000)
    policy = RetryPolicy(give_up_after=timedelta(minutes=30), rng=Random(1))
    with make_sender(twilio, engine, handler, clock, policy=policy) as sender:
        drain(sender, clock)

    failed = row(engine, outbox_id)
    assert failed["status"] == "failed"
    assert failed["error"].startswith(f"gave up after {failed['attempts']} tries: ")
    assert twilio.messages == []


# It may have reached Twilio: never sent again.


def test_a_gateways_502_page_is_unknown_and_never_resent(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: StepClock
) -> None:
    outbox_id = queue(engine, flow, phone(1), "An invitation")
    twilio.fail(502, from_twilio=False)
    with make_sender(twilio, engine, handler, clock) as sender:
        drain(sender, clock)
        assert not sender.send_due(threading.Event()).claimed

    assert len(twilio.received) == 1
    unknown = row(engine, outbox_id)
    assert unknown["status"] == "unknown"
    assert unknown["error"].startswith("not confirmed, not resent: HTTP 502")
    assert outbox.count_unknown(engine, "sms") == 1


@pytest.mark.parametrize("fault", ["stall", "hang_up", "reset"])
def test_a_send_twilio_may_have_taken_is_unknown_and_never_resent(
    twilio: FakeTwilio,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
    fault: str,
) -> None:
    outbox_id = queue(engine, flow, phone(1), "An invitation")
    if fault == "stall":
        twilio.stall(READ_TIMEOUT * 2)
    elif fault == "hang_up":
        twilio.hang_up()
    else:
        twilio.reset_connection(to=phone(1))
    with make_sender(twilio, engine, handler, clock) as sender:
        drain(sender, clock)

    assert len(twilio.received) == 1
    assert len(twilio.messages) == (0 if fault == "reset" else 1)  # a stall took it, silently
    unknown = row(engine, outbox_id)
    assert (unknown["status"], unknown["attempts"]) == ("unknown", 1)
    assert unknown["provider_message_id"] is None


# Twilio refused it: never again, and the reason is kept.


def test_21610_opts_the_respondent_out_and_nothing_more_is_sent_to_them(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: StepClock
) -> None:
    refused = queue(engine, flow, phone(1), "An invitation")
    later = queue(engine, flow, phone(1), "A reminder", kind="reminder")
    other = queue(engine, flow, phone(2), "Someone else's invitation")
    twilio.opt_out(phone(1))
    with make_sender(twilio, engine, handler, clock) as sender:
        drain(sender, clock)
        checkin = queue(engine, flow, phone(1), "A check-in", kind="checkin", now=clock.now())
        drain(sender, clock)

    assert [request.params["To"] for request in twilio.received] == [phone(1), phone(2)]
    assert (row(engine, refused)["status"], row(engine, refused)["error"]) == (
        "failed",
        "opted out (Twilio 21610)",
    )
    for never_sent in (later, checkin):
        assert (row(engine, never_sent)["status"], row(engine, never_sent)["error"]) == (
            "failed",
            "opted out",
        )
        assert row(engine, never_sent)["attempts"] == 0
    assert row(engine, other)["status"] == "sent"
    assert respondent(engine, phone(1))["opted_out"]
    assert not respondent(engine, phone(2))["opted_out"]


def test_an_invalid_number_fails_with_twilios_reason_kept_but_not_logged(
    twilio: FakeTwilio,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    refused = queue(engine, flow, phone(1), "An invitation")
    later = queue(engine, flow, phone(1), "A reminder", kind="reminder")
    twilio.invalid_number(phone(1))
    with make_sender(twilio, engine, handler, clock) as sender:
        drain(sender, clock)

    assert len(twilio.received) == 1
    failed = row(engine, refused)
    assert failed["status"] == "failed"
    assert failed["error"] == (
        "Twilio refused the message (HTTP 400, error 21211): "
        f"The 'To' number {phone(1)} is not a valid phone number."
    )
    assert (row(engine, later)["status"], row(engine, later)["error"]) == ("failed", "unreachable")
    assert respondent(engine, phone(1))["unreachable"]
    assert "7700900" not in caplog.text
    assert "An invitation" not in caplog.text


# Pacing.


@pytest.mark.parametrize(
    ("segments", "rate", "count"),
    [(1, 10, 30), (3, 10, 20), (4, 10, 12), (2, 1, 4), (1, 1, 5)],
)
def test_the_sender_keeps_to_its_segments_a_second_in_every_second(
    twilio: FakeTwilio,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
    segments: int,
    rate: int,
    count: int,
) -> None:
    """N texts of k segments at r a second keep the sender busy N*k/r seconds: the text queued
    after them goes no sooner; and no one-second window ever holds more than r segments."""
    part = 150 if segments == 1 else 153
    texts = [f"{n:03d} " + "x" * (part * segments - 4) for n in range(count + 1)]
    assert {count_segments(text).segments for text in texts} == {segments}
    ids = [queue(engine, flow, phone(n), text) for n, text in enumerate(texts)]
    with make_sender(twilio, engine, handler, clock, rate=rate) as sender:
        steps = drain(sender, clock)

    assert sum(step.tried for step in steps) == count + 1
    assert len(twilio.received) == count + 1  # released rows were never sent
    sent_at = [row(engine, outbox_id)["updated_at"] for outbox_id in ids]
    assert sent_at == sorted(sent_at)
    assert sent_at[-1] - sent_at[0] >= timedelta(seconds=count * segments / rate)
    for start in sent_at:
        in_window = [at for at in sent_at if start <= at < start + timedelta(seconds=1)]
        assert len(in_window) * segments <= max(rate, segments)  # a longer text goes alone
    assert all(row(engine, outbox_id)["attempts"] == 1 for outbox_id in ids)


def test_a_longer_pause_releases_the_row_and_claims_nothing_until_the_sender_is_free(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: StepClock
) -> None:
    ids = [queue(engine, flow, phone(n), f"Invitation {n}") for n in range(5)]
    stop = threading.Event()
    with make_sender(twilio, engine, handler, clock, rate=1) as sender:
        assert sender.send_due(stop) == WorkerStep(claimed=True, tried=True)
        held = sender.send_due(stop)
        assert held == WorkerStep(claimed=True, held_until=START + timedelta(seconds=1))
        assert not sender.send_due(stop).claimed  # not a claim and a release per due row
        statuses = [(found["status"], found["attempts"]) for found in rows(engine)]
        assert statuses == [("sent", 1)] + [("pending", 0)] * 4
        assert row(engine, ids[1])["next_attempt_at"] == START + timedelta(seconds=1)
        clock.sleep(1.0)
        assert sender.send_due(stop).tried
    assert [request.params["Body"] for request in twilio.received] == [
        "Invitation 0",
        "Invitation 1",
    ]


def test_a_stop_during_a_pacing_pause_sends_the_row_begun_in_its_slot_and_claims_no_more(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler
) -> None:
    stop = threading.Event()

    class StoppedWhileSleeping(StepClock):
        def sleep(self, seconds: float) -> None:
            stop.set()
            super().sleep(seconds)

    clock = StoppedWhileSleeping()
    queue(engine, flow, phone(1), "Invitation 1")
    second = queue(engine, flow, phone(2), "Invitation 2")
    third = queue(engine, flow, phone(3), "Invitation 3")
    with make_sender(twilio, engine, handler, clock, rate=10) as sender:
        assert sender.send_due(stop).tried
        assert sender.send_due(stop).tried  # begun with its slot reserved: it goes at its slot
        assert not sender.send_due(stop).claimed

    assert [text.params["Body"] for text in twilio.received] == ["Invitation 1", "Invitation 2"]
    assert clock.slept == [pytest.approx(0.1)]
    assert row(engine, second)["status"] == "sent"
    assert (row(engine, third)["status"], row(engine, third)["attempts"]) == ("pending", 0)


class TimedSms(TwilioSms):
    """Twilio's client, noting when (by the test's clock) each text was handed over."""

    def __init__(self, settings: TwilioSendSettings, clock: StepClock, log: list[Any]) -> None:
        super().__init__(settings)
        self.clock = clock
        self.log = log

    def send(self, to: str, body: str) -> SmsOutcome:
        self.log.append((self.clock.now(), count_segments(body).segments, self))
        return super().send(to, body)


def test_two_senders_from_one_number_keep_its_rate_together_in_every_second(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: StepClock
) -> None:
    rate = 5
    lengths = [1, 3, 2, 1, 1, 3, 1, 2, 2, 1, 1, 1, 3, 1, 2, 1, 1, 1, 1, 1] * 2
    for index, segments in enumerate(lengths):
        text = f"{index:03d} " + "x" * (150 if segments == 1 else 153 * segments - 10)
        assert count_segments(text).segments == segments
        queue(engine, flow, phone(index), text)
    sent: list[tuple[datetime, int, Any]] = []
    stop = threading.Event()
    senders = [make_sender(twilio, engine, handler, clock, rate=rate) for _ in range(2)]
    for sender in senders:
        sender.sms = TimedSms(sender.sms.settings, clock, sent)
    with senders[0], senders[1]:
        for _ in range(400):  # the two workers take turns, one step each, on one clock
            if not any(sender.send_due(stop).tried for sender in senders):
                clock.sleep(0.1)  # both waiting for the number's next slot
            if len(sent) == len(lengths):
                break

    assert sorted(segments for _, segments, _ in sent) == sorted(lengths)
    assert {id(worker) for _, _, worker in sent} == {id(sender.sms) for sender in senders}
    for start, _, _ in sent:
        in_second = [n for at, n, _ in sent if start <= at < start + timedelta(seconds=1)]
        assert sum(in_second) <= rate, f"{sum(in_second)} segments in the second from {start}"
    first, last = sent[0][0], sent[-1][0]
    achieved = (sum(lengths) - sent[-1][1]) / (last - first).total_seconds()
    assert achieved > rate / 2
    assert {entry["status"] for entry in rows(engine)} == {"sent"}


# Quiet hours.


def test_quiet_hours_hold_an_outreach_row_and_let_a_reply_through(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: StepClock
) -> None:
    clock.at = datetime(2027, 3, 1, 21, 0, tzinfo=UTC)  # Monday 21:00 in London
    reminder = queue(engine, flow, phone(1), "A reminder", kind="reminder", now=clock.at)
    reply = queue(engine, flow, phone(2), "The next question", kind="reply", now=clock.at)
    opens = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
    with make_sender(twilio, engine, handler, clock, quiet=COUNCIL_HOURS) as sender:
        steps = [sender.send_due(threading.Event()) for _ in range(3)]
        assert [request.params["Body"] for request in twilio.received] == ["The next question"]
        held = row(engine, reminder)
        assert (held["status"], held["attempts"], held["next_attempt_at"]) == ("pending", 0, opens)
        assert WorkerStep(claimed=True, held_until=opens) in steps
        drain(sender, clock, waiting_for=tuple(steps))

    assert row(engine, reply)["status"] == "sent"
    sent = row(engine, reminder)
    assert (sent["status"], sent["attempts"], sent["updated_at"]) == ("sent", 1, opens)


# Everything at once.


def test_a_mix_of_faults_ends_every_row_as_it_must_and_no_text_twice(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: StepClock
) -> None:
    """200 residents, each with a fault of Twilio's (seeded), one text each; those who opted
    out at Twilio have a reminder queued too."""
    chooser = Random(20270301)
    kinds = ["clean"] * 120 + ["429"] * 20 + ["500"] * 20 + ["reset"] * 10 + ["hang_up"] * 5
    kinds += ["stall"] * 5 + ["21610"] * 10 + ["invalid"] * 10
    chooser.shuffle(kinds)
    fault_of = {phone(n): kind for n, kind in enumerate(kinds)}
    ids: dict[int, str] = {}
    for number, kind in fault_of.items():
        ids[queue(engine, flow, number, f"Invitation for {number[-3:]}")] = kind
        if kind == "21610":
            ids[queue(engine, flow, number, f"Reminder for {number[-3:]}", kind="reminder")] = kind
        if kind == "429":
            twilio.rate_limit(retry_after=chooser.randint(1, 5), to=number)
        elif kind == "500":
            twilio.fail(500, to=number, times=chooser.randint(1, 3))
        elif kind == "reset":
            twilio.reset_connection(to=number)
        elif kind == "hang_up":
            twilio.hang_up(to=number)
        elif kind == "stall":
            twilio.stall(READ_TIMEOUT * 2, to=number)
        elif kind == "21610":
            twilio.opt_out(number)
        elif kind == "invalid":
            twilio.invalid_number(number)

    with make_sender(twilio, engine, handler, clock, rate=10) as sender:
        drain(sender, clock, steps=10_000)

    taken = twilio.messages
    assert max(Counter((message.to, message.body) for message in taken).values()) == 1
    sids = {message.sid for message in taken}
    expected = {
        "clean": "sent",
        "429": "sent",
        "500": "sent",
        "reset": "unknown",
        "hang_up": "unknown",
        "stall": "unknown",
        "21610": "failed",
        "invalid": "failed",
    }
    for found in rows(engine):
        kind = ids[found["id"]]
        assert found["status"] == expected[kind], (kind, found["error"])
        if found["status"] == "sent":
            assert found["provider_message_id"] in sids
    by_status = Counter(found["status"] for found in rows(engine))
    assert by_status == {"sent": 160, "unknown": 20, "failed": 30}
    taken_by = Counter(message.to for message in taken)
    for number, kind in fault_of.items():
        assert taken_by[number] == (1 if kind in ("clean", "429", "500", "hang_up", "stall") else 0)
    opted_out = [number for number, kind in fault_of.items() if kind == "21610"]
    assert all(respondent(engine, number)["opted_out"] for number in opted_out)
    received_by = Counter(request.params["To"] for request in twilio.received)
    assert all(received_by[number] == 1 for number in opted_out)  # the reminder never went


# Configuration.


def test_without_twilio_credentials_or_a_sender_there_is_no_sms_sender(
    engine: sa.Engine, handler: TurnHandler, clock: StepClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="channels.sms_outbox")
    for twilio in (
        TwilioConfig(),
        TwilioConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN),
        TwilioConfig(auth_token=AUTH_TOKEN, from_number=SENDER),
    ):
        config = Config(twilio=twilio)
        assert (
            sms_sender_for(config, engine, clock, handler.mark_opted_out, handler.mark_unreachable)
            is None
        )
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "sms sender: not configured (no twilio.account_sid, twilio.auth_token, "
        "twilio.from_number or messaging_service_sid)",
        "sms sender: not configured (no twilio.from_number or messaging_service_sid)",
        "sms sender: not configured (no twilio.account_sid)",
    ]


def test_the_configured_sender_sends_with_the_configured_account_and_callback(
    twilio: FakeTwilio,
    database_url: str,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
) -> None:
    config = Config(
        database=DatabaseConfig(url=database_url),
        twilio=TwilioConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            from_number=SENDER,
            public_url=PUBLIC_URL + "/",
            api_base_url=twilio.base_url,
            segments_per_second=5,
        ),
        outreach=OutreachConfig(quiet_hours="09:00-20:00", quiet_days="mon-sat"),
    )
    sender = sms_sender_for(config, engine, clock, handler.mark_opted_out, handler.mark_unreachable)
    assert sender is not None
    clock.at = datetime(2027, 3, 7, 12, 0, tzinfo=UTC)  # a Sunday: outreach waits for Monday
    outreach = queue(engine, flow, phone(1), "An invitation", now=clock.at)
    with sender:
        drain(sender, clock)
    (request,) = twilio.received
    assert (request.username, request.params["From"]) == (ACCOUNT_SID, SENDER)
    assert request.params["StatusCallback"] == CALLBACK
    assert row(engine, outreach)["updated_at"] == datetime(2027, 3, 8, 9, 0, tzinfo=UTC)
    assert sender.segments_per_second == 5


def test_rows_claimed_together_and_not_sent_are_handed_back_when_the_sender_stops(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: StepClock
) -> None:
    queued = [queue(engine, flow, phone(n), f"Invitation {n}") for n in range(1, 6)]
    stop = threading.Event()
    with make_sender(twilio, engine, handler, clock, rate=10_000) as sender:
        assert sender.send_due(stop).tried
        held = [row(engine, outbox_id)["status"] for outbox_id in queued[1:]]
        assert held == ["claimed"] * 4, "one claim took the batch"
    # Closed: nothing stays claimed for a lease to run out; another worker sends them at once.
    assert [row(engine, outbox_id)["status"] for outbox_id in queued] == ["sent"] + ["pending"] * 4
    with make_sender(twilio, engine, handler, clock, rate=10_000) as sender:
        drain(sender, clock)
    assert sorted(message.body for message in twilio.messages) == [
        f"Invitation {n}" for n in range(1, 6)
    ]


def test_a_fast_sender_has_one_row_in_doubt_at_most_and_every_row_sent_with_its_sid(
    twilio: FakeTwilio, engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: StepClock
) -> None:
    """With the rate lifted a sender claims a hundred rows at a time and records each send with
    the start of the next: whenever the worker could be killed, at most one row is "sending"
    (in doubt, never resent), and once it is done every row holds the SID of its own text."""
    texts = {
        queue(engine, flow, phone(n), f"Note {n} for you."): f"Note {n} for you."
        for n in range(120)
    }
    stop = threading.Event()
    in_doubt = []
    with make_sender(twilio, engine, handler, clock, rate=10_000) as sender:
        while sender.send_due(stop).claimed:
            with engine.connect() as conn:
                counted = conn.execute(
                    sa.select(outbox_table.c.status, sa.func.count()).group_by(
                        outbox_table.c.status
                    )
                )
                statuses: Counter[str] = Counter(dict(counted.all()))
            in_doubt.append(statuses["sending"])
            assert sum(statuses.values()) == len(texts)
            assert statuses["claimed"] + statuses["sending"] <= 100, "more than a batch held"

    assert max(in_doubt) == 1
    sid_of = {message.body: message.sid for message in twilio.messages}
    assert len(twilio.messages) == len(sid_of) == len(texts)
    found = {entry["id"]: entry for entry in rows(engine)}
    assert {found[outbox_id]["status"] for outbox_id in texts} == {"sent"}
    assert all(
        found[outbox_id]["provider_message_id"] == sid_of[text] for outbox_id, text in texts.items()
    )
