"""The SMS sender's send rate against the fake Twilio, with the rate limit lifted.

    .venv/bin/python -m bench.sms_send [--messages N] [--seconds N] [--database-url URL]

1. Baseline: `TwilioSms.send` alone, one thread, against the fake Twilio REST API on a free
   127.0.0.1 port (tests/fake_twilio.py): twilio-python's client and one HTTP round trip a text.
2. `SmsSender.send_due` draining the outbox, one row at a time as `dibot worker` does (a claim
   of up to 100 rows, then for each row one transaction that records the last send and begins
   this one, and the round trip), with `segments_per_second` at
   its maximum so that pacing never waits, on SQLite in a temporary directory and, given a
   PostgreSQL URL, on PostgreSQL (its statistics brought up to date after the texts are
   queued, as autovacuum would: the claim's plan depends on them). Its ratio to the baseline
   is the share of a send that is Twilio's round trip; the rest is the outbox.

Every stage sends the same texts (to drama-range numbers, +447700900000 to +447700900999, two
or more a number past 1,000 texts). The rules it keeps: rates and ratios, never pass/fail
thresholds on speed; bounded in count and in time (`--seconds` per stage); traffic to
127.0.0.1 only; PostgreSQL only inside the scratch schema `dibot_bench` of the database named,
dropped before and after. Afterwards every row must be "sent" with the Message SID of a text the
fake took, and no text may have reached the fake twice. Exit status 1 when that check fails, 2
for unusable arguments.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from bench.turns import DATABASE_URL_VARIABLE, SCRATCH_SCHEMA, fresh_database
from bench.turns import measured_postgresql_url as postgresql_url_of
from bot.messages import Outbound
from bot.state import State
from channels.sending import SystemClock
from channels.sms_outbox import SmsSender
from channels.twilio_send import TwilioSendSettings, TwilioSms
from dibot.turns import TurnHandler
from flows.loader import load_flow
from flows.model import Flow
from flows.segments import count_segments
from outreach.quiet_hours import NO_QUIET_HOURS
from storage import outbox
from storage.database import make_engine
from storage.models import OutboxEntry, table
from storage.repository import TurnStore
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Message

NUMBERS = tuple(f"+447700900{index:03d}" for index in range(1000))
FROM_NUMBER = "+447700900999"
CALLBACK = "https://dibot.example.gov.uk/webhooks/twilio/status"
UNLIMITED = 10_000
"""segments_per_second at its configurable maximum: the rate is the sender's own."""
WARMUP = 20
"""Untimed sends before the baseline's clock starts (the connection, the client's caches)."""


@dataclass(frozen=True)
class Text:
    to: str
    body: str


@dataclass(frozen=True)
class Rate:
    sent: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    @property
    def ms_each(self) -> float:
        return 1000 * self.seconds / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class SendCheck:
    rows: int
    tried: int
    """Rows the sender handed to Twilio in the time it had."""
    rows_sent: int
    taken: int
    taken_twice: int
    unmatched: int
    """Rows marked sent whose Message SID is no text the fake took."""

    @property
    def ok(self) -> bool:
        sent_as_tried = 0 < self.tried == self.rows_sent == self.taken
        return sent_as_tried and not self.taken_twice and not self.unmatched

    def describe(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{self.rows_sent} of {self.rows} rows sent ({self.tried} tried), {self.taken} texts"
            f" taken by Twilio, {self.taken_twice} twice, {self.unmatched} sent rows without"
            f" a text: {verdict}"
        )


def plan(count: int) -> tuple[Text, ...]:
    """`count` texts, numbers taken in turn; each body names its number and turn."""
    return tuple(
        Text(NUMBERS[n % len(NUMBERS)], f"Anytown Council: note {n} for you. Reply 1 to start.")
        for n in range(count)
    )


def settings(twilio: FakeTwilio) -> TwilioSendSettings:
    return TwilioSendSettings(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number=FROM_NUMBER,
        status_callback_url=CALLBACK,
        api_base_url=twilio.base_url,
    )


def baseline_stage(texts: Sequence[Text], seconds: float) -> Rate:
    """`TwilioSms.send` alone, after `WARMUP` untimed sends, until the texts or time run out."""
    with FakeTwilio() as twilio, TwilioSms(settings(twilio)) as sms:
        for text in texts[:WARMUP]:
            sms.send(text.to, text.body)
        sent, start = 0, perf_counter()
        for text in texts:
            if perf_counter() - start >= seconds:
                break
            sms.send(text.to, text.body)
            sent += 1
        return Rate(sent, perf_counter() - start)


def queue_texts(engine: sa.Engine, flow: Flow, texts: Sequence[Text]) -> None:
    store = TurnStore(engine.dialect.name)
    now = datetime.now(UTC)  # due at once for the sender's real clock
    with engine.begin() as conn:
        respondent_ids: dict[str, int] = {}
        for text in texts:
            if text.to not in respondent_ids:
                urn = "tel:" + text.to
                conversation = store.lock_conversation(conn, urn, flow, State(), now)
                respondent_ids[text.to] = conversation.respondent_id
            outbox.queue(
                conn,
                channel="sms",
                respondent_id=respondent_ids[text.to],
                message=Outbound(text.body),
                now=now,
                kind="followup",
                segments=count_segments(text.body).segments,
            )


def sender_stage(
    flow: Flow, database_url: str, texts: Sequence[Text], seconds: float
) -> tuple[Rate, SendCheck]:
    """Queue `texts`, then drain them with `SmsSender` until none is due or time runs out."""
    engine = make_engine(database_url)
    try:
        queue_texts(engine, flow, texts)
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:  # as autovacuum would, soon after a bulk insert
                conn.exec_driver_sql("ANALYZE outbox")
                conn.exec_driver_sql("ANALYZE respondents")
        handler = TurnHandler(engine, flow)
        stop = threading.Event()
        with FakeTwilio() as twilio:
            sender = SmsSender(
                TwilioSms(settings(twilio)),
                engine,
                clock=SystemClock(stop),
                quiet=NO_QUIET_HOURS,
                mark_opted_out=handler.mark_opted_out,
                mark_unreachable=handler.mark_unreachable,
                segments_per_second=UNLIMITED,
            )
            with sender:
                sent, start = 0, perf_counter()
                while perf_counter() - start < seconds:
                    step = sender.send_due(stop)
                    if not step.claimed:
                        break
                    sent += step.tried
                rate = Rate(sent, perf_counter() - start)
            taken = twilio.messages
        return rate, check_sent(engine, taken, len(texts), sent)
    finally:
        engine.dispose()


def check_sent(engine: sa.Engine, taken: Sequence[Message], rows: int, tried: int) -> SendCheck:
    """Every row sent is a text the fake took, and no text was taken twice."""
    entries = table(OutboxEntry)
    with engine.connect() as conn:
        found = conn.execute(sa.select(entries.c.status, entries.c.provider_message_id)).all()
    sids = {message.sid for message in taken}
    copies = Counter((message.to, message.body) for message in taken)
    sent = [sid for status, sid in found if status == "sent"]
    return SendCheck(
        rows=rows,
        tried=tried,
        rows_sent=len(sent),
        taken=len(taken),
        taken_twice=sum(count - 1 for count in copies.values() if count > 1),
        unmatched=sum(sid not in sids for sid in sent),
    )


@dataclass(frozen=True)
class Report:
    messages: int
    baseline: Rate
    senders: dict[str, tuple[Rate, SendCheck]]

    @property
    def ok(self) -> bool:
        return all(check.ok for _, check in self.senders.values())


def render(report: Report) -> str:
    base = report.baseline.per_second
    lines = [
        f"SMS sends against the fake Twilio on 127.0.0.1, {report.messages} texts a stage,"
        " segments_per_second lifted",
        "",
        f"{'stage':<38} {'texts':>6} {'texts/s':>9} {'ms each':>8} {'ratio':>6}",
        _row("TwilioSms.send alone (baseline)", report.baseline, base),
    ]
    for database, (rate, _) in report.senders.items():
        lines.append(_row(f"SmsSender.send_due on {database}", rate, base))
    lines.append("")
    for database, (_, check) in report.senders.items():
        lines.append(f"{database}: {check.describe()}")
    return "\n".join(lines)


def _row(name: str, rate: Rate, base: float) -> str:
    ratio = rate.per_second / base if base else 0.0
    return f"{name:<38} {rate.sent:>6} {rate.per_second:>9.1f} {rate.ms_each:>8.2f} {ratio:>6.2f}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sms_send", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--messages", type=int, default=2000, help="texts a stage (default 2000)")
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="time limit of each stage (default 60)"
    )
    parser.add_argument(
        "--database-url",
        help=f"a PostgreSQL database to measure too, inside schema {SCRATCH_SCHEMA} "
        f"(default: ${DATABASE_URL_VARIABLE} when it names PostgreSQL)",
    )
    return parser


def measure(
    flow: Flow, texts: Sequence[Text], seconds: float, postgresql_url: str | None, workdir: Path
) -> Report:
    databases: dict[str, str | None] = {"SQLite": None}
    if postgresql_url is not None:
        databases["PostgreSQL"] = postgresql_url
    _progress("TwilioSms.send")
    baseline = baseline_stage(texts, seconds)
    senders = {}
    for database, url in databases.items():
        _progress(f"SmsSender on {database}")
        with fresh_database(url, workdir, "sms_send") as ready:
            senders[database] = sender_stage(flow, ready, texts, seconds)
    return Report(len(texts), baseline, senders)


def _progress(text: str) -> None:
    print(f"bench.sms_send: {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        if arguments.seconds <= 0 or not 1 <= arguments.messages <= 100_000:
            raise ValueError("--seconds must be positive, --messages from 1 to 100000")
        postgresql_url = postgresql_url_of(arguments.database_url)
    except ValueError as error:
        print(f"bench.sms_send: {error}", file=sys.stderr)
        return 2
    flow = load_flow()
    texts = plan(arguments.messages)
    with tempfile.TemporaryDirectory(prefix="dibot-bench-") as workdir:
        try:
            report = measure(flow, texts, arguments.seconds, postgresql_url, Path(workdir))
        except OperationalError as error:
            reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
            print(f"bench.sms_send: cannot use the database: {reason}", file=sys.stderr)
            return 2
    print(render(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
