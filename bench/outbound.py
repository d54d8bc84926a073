"""The outbound dispatcher: queued SMS drained by two `dibot worker` processes on PostgreSQL.

    .venv/bin/python -m bench.outbound [--messages N] [--database-url URL]
                                       [--rate R] [--rate-seconds S] [--seconds LIMIT]

1. Lifted: N texts (default 5,000, under a minute on a quiet 2-core machine; the issue's full
   run is `--messages 100000`) are queued to 1,000 residents (+447700900000 to +447700900999),
   one in five long enough for two segments, and two `dibot worker --once` processes, as shipped
   and configured only by environment, drain them with `segments_per_second` at its maximum.
   Each worker sends to a fake Twilio REST API of its own (tests/fake_twilio.py), each in a
   process of its own, so the fake is not the bottleneck; every fake records each Message it
   took and when. Reported: messages and segments a second overall and per worker (from the
   first text any fake took to the last), and the time from the workers' start to the last text
   taken.
2. Checked: every row is "sent" with the Message SID the fake gave that very text, and no
   text reached a fake twice.
3. Paced: the same two workers from one number configured at R segments a second (default
   20) with about S seconds' worth of texts queued (default 30): the rate achieved, the worst
   sliding 1-second window and the first second, for the number (both workers together, which
   is what Twilio counts) and for each worker.

Twilio's rate for a UK long code is 10 segments a second (domain/reliability.md): the goal, 10x
that, is 100 segments a second, counted in segments since that is what Twilio meters.

Without PostgreSQL the stages run on SQLite with one worker (two processes would take turns at
one write lock), and say so. The rules it keeps: rates and ratios, never pass/fail thresholds
in seconds (a run is bounded by `--seconds`, after which its workers are stopped and what they
did is reported); traffic to 127.0.0.1 only; PostgreSQL only inside the scratch schema
`dibot_bench_outbound` of the database named, dropped before and after. Exit status 1 when a
check fails, 2 for unusable arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from bench.report import Goal, Section, goals_table
from bench.turns import DATABASE_URL_VARIABLE, fresh_database
from bench.turns import measured_postgresql_url as postgresql_url_of
from bot.state import State
from flows.loader import load_flow
from flows.segments import count_segments
from storage.database import make_engine
from storage.models import OutboxEntry, table
from storage.privacy import KEY_VARIABLE
from storage.repository import TurnStore
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.processes import DIBOT, environment

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "dibot_bench_outbound"
DEFAULT_MESSAGES = 5_000
FULL_MESSAGES = 100_000
RESIDENTS = 1000
FROM_NUMBER = "+447700900999"
TWILIO_LONG_CODE_RATE = 10
"""Segments a second Twilio sends from one UK long code (domain/reliability.md)."""
GOAL_MULTIPLE = 10
UNLIMITED = 10_000
"""segments_per_second at its configurable maximum: the rate is the dispatcher's own."""
DEFAULT_RATE = 20
DEFAULT_RATE_SECONDS = 20.0
RATE_TOLERANCE = 0.10
"""The paced run keeps its rate when the rate achieved is within 10 % of the configured one and
no sliding second holds more than 10 % over it (arrival jitter at the fake)."""
DEFAULT_LIMIT_SECONDS = 600.0
QUEUE_CHUNK = 10_000
WINDOW_SECONDS = 1.0
SENT_LINE = re.compile(r"(\d+) sms")


@dataclass(frozen=True)
class Taken:
    """A text a fake took: which fake (one per worker), when (time.monotonic, which is one
    clock for every process on Linux), its Message SID, body and segments."""

    fake: int
    at: float
    sid: str
    to: str
    body: str
    segments: int


@dataclass
class FakeProcess:
    """bench.outbound_fake, running."""

    index: int
    base_url: str
    process: subprocess.Popen[str]
    out: Path

    def collect(self) -> list[Taken]:
        """Stop it; what it took."""
        self.process.communicate(timeout=60)  # closes its input, which stops it
        return [
            Taken(self.index, at, sid, to, text, segments)
            for at, sid, to, text, segments in json.loads(self.out.read_text())
        ]


@contextmanager
def fakes(count: int, workdir: Path) -> Iterator[list[FakeProcess]]:
    """`count` fake Twilio servers on 127.0.0.1, each in its own process."""
    started: list[FakeProcess] = []
    try:
        for index in range(count):
            out = workdir / f"taken-{index}.json"
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.outbound_fake", str(out)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert process.stdout is not None
            started.append(FakeProcess(index, process.stdout.readline().strip(), process, out))
        yield started
    finally:
        for fake in started:
            if fake.process.poll() is None:
                fake.process.kill()
            fake.process.communicate()


# --- queueing ------------------------------------------------------------------------------


def phone(index: int) -> str:
    return f"+447700900{index:03d}"


def body(n: int) -> str:
    """Text `n`, unique; one in five runs to two segments (GSM-7, over 160 characters)."""
    text = f"Anytown Council: note {n} for you. Reply 1 to start."
    if n % 5 == 4:
        text += " We can help you get online: free lessons at the library, a loaned tablet" + (
            " and data, and a digital champion to call." * 2
        )
    return text


def segments_of(n: int) -> int:
    return count_segments(body(n)).segments


def texts_for_segments(segments: int) -> int:
    """How many texts of `body` hold about `segments` segments."""
    count, total = 0, 0
    while total < segments:
        total += segments_of(count)
        count += 1
    return count


@dataclass(frozen=True)
class Queued:
    messages: int
    segments: int
    seconds: float


def queue(database_url: str, count: int) -> Queued:
    """`count` texts due now, to `RESIDENTS` residents in turn, as outreach follow-ups."""
    started = time.perf_counter()
    flow = load_flow(languages=["en"])
    engine = make_engine(database_url)
    outbox = table(OutboxEntry)
    now = datetime.now(UTC)
    store = TurnStore(engine.dialect.name)
    try:
        with engine.begin() as conn:
            residents = [
                store.lock_conversation(conn, "tel:" + phone(i), flow, State(), now).respondent_id
                for i in range(RESIDENTS)
            ]
            total_segments = 0
            for first in range(0, count, QUEUE_CHUNK):
                rows = []
                for n in range(first, min(first + QUEUE_CHUNK, count)):
                    segments = segments_of(n)
                    total_segments += segments
                    rows.append(
                        {
                            "channel": "sms",
                            "respondent_id": residents[n % RESIDENTS],
                            "inbox_id": None,
                            "text": body(n),
                            "buttons": [],
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt_at": now,
                            "first_due_at": now,
                            "created_at": now,
                            "updated_at": now,
                            "kind": "followup",
                            "sent_by": "bench",
                            "segments": segments,
                        }
                    )
                conn.execute(sa.insert(outbox), rows)
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:  # as autovacuum would, soon after a bulk insert
                conn.exec_driver_sql("ANALYZE outbox")
                conn.exec_driver_sql("ANALYZE respondents")
                conn.exec_driver_sql("ANALYZE conversations")
    finally:
        engine.dispose()
    return Queued(count, total_segments, time.perf_counter() - started)


# --- the workers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerRun:
    returncode: int | None
    """None: still running at the time limit, then stopped."""
    tried: int
    """What the worker's summary line says it handed to Twilio."""
    seconds: float
    error: str


def run_workers(
    database_url: str,
    base_urls: Sequence[str],
    segments_per_second: int,
    cwd: Path,
    limit_seconds: float,
) -> tuple[list[WorkerRun], float, float]:
    """One `dibot worker --once` per fake, all started together; each run, when they started
    (time.monotonic), and the CPU seconds they used together (start-up included)."""
    assert DIBOT is not None, "the dibot console script is not installed in this environment"
    settings = {
        "DIBOT_DATABASE_URL": database_url,
        "DIBOT_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "DIBOT_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "DIBOT_TWILIO_FROM_NUMBER": FROM_NUMBER,
        "DIBOT_TWILIO_SEGMENTS_PER_SECOND": str(segments_per_second),
        "DIBOT_OUTREACH_QUIET_HOURS": "",
        "DIBOT_OUTREACH_REMINDERS": "",
    }
    if os.environ.get(KEY_VARIABLE):
        settings[KEY_VARIABLE] = os.environ[KEY_VARIABLE]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [DIBOT, "worker", "--once"],
            cwd=cwd,
            env=environment(DIBOT_TWILIO_API_BASE_URL=base_url, **settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for base_url in base_urls
    ]
    runs: list[WorkerRun | None] = [None] * len(processes)

    def wait(index: int, process: subprocess.Popen[str]) -> None:
        try:
            stdout, stderr = process.communicate(timeout=limit_seconds)
            returncode: int | None = process.returncode
        except subprocess.TimeoutExpired:
            process.terminate()  # SIGTERM: the worker stops between rows
            stdout, stderr = process.communicate(timeout=60)
            returncode = None
        found = SENT_LINE.search(stdout)
        error = "" if process.returncode == 0 else (stderr.strip().splitlines() or [""])[-1]
        runs[index] = WorkerRun(
            returncode, int(found[1]) if found else 0, time.monotonic() - started, error
        )

    waiters = [
        threading.Thread(target=wait, args=(index, process))
        for index, process in enumerate(processes)
    ]
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return [run for run in runs if run is not None], started, cpu


# --- what the fakes saw --------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    """Texts taken over a span, as rates."""

    messages: int
    segments: int
    seconds: float
    """From the first text taken to the last."""

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def segments_per_second(self) -> float:
        return self.segments / self.seconds if self.seconds > 0 else 0.0


def throughput_of(taken: Sequence[Taken]) -> Throughput:
    if not taken:
        return Throughput(0, 0, 0.0)
    times = [text.at for text in taken]
    return Throughput(len(taken), sum(text.segments for text in taken), max(times) - min(times))


@dataclass(frozen=True)
class Pace:
    """How a paced run kept its rate, at the provider."""

    configured: int
    achieved: float
    """Segments a second between the first text taken and the last (the last one's own
    segments not counted: they begin the next second)."""
    worst_window: int
    """The most segments taken in any sliding second."""
    first_second: int
    windows_over: int
    """Sliding seconds (one starting at each text) holding more than `configured`."""
    windows: int

    def kept(self) -> bool:
        near = abs(self.achieved - self.configured) <= RATE_TOLERANCE * self.configured
        return near and self.worst_window <= (1 + RATE_TOLERANCE) * self.configured


def pace_of(taken: Sequence[Taken], configured: int) -> Pace:
    ordered = sorted(taken, key=lambda text: text.at)
    if len(ordered) < 2:
        return Pace(configured, 0.0, sum(t.segments for t in ordered), 0, 0, len(ordered))
    span = ordered[-1].at - ordered[0].at
    achieved = sum(text.segments for text in ordered[:-1]) / span if span > 0 else 0.0
    sums = []
    end, inside = 0, 0
    for text in ordered:
        while end < len(ordered) and ordered[end].at < text.at + WINDOW_SECONDS:
            inside += ordered[end].segments
            end += 1
        sums.append(inside)
        inside -= text.segments
    return Pace(
        configured=configured,
        achieved=achieved,
        worst_window=max(sums),
        first_second=sums[0],
        windows_over=sum(total > configured for total in sums),
        windows=len(sums),
    )


@dataclass(frozen=True)
class SendCheck:
    rows: int
    rows_sent: int
    taken: int
    taken_twice: int
    wrong_sid: int
    """Rows marked sent whose Message SID is not the one the fake gave their text."""
    statuses: dict[str, int]

    @property
    def ok(self) -> bool:
        return (
            self.rows_sent == self.rows == self.taken
            and not self.taken_twice
            and not self.wrong_sid
        )

    def describe(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{self.rows_sent:,} of {self.rows:,} rows sent, {self.taken:,} texts taken by the"
            f" fakes, {self.taken_twice} of them twice, {self.wrong_sid} sent rows without the"
            f" SID of their text: {verdict}"
        )


def check_sent(database_url: str, taken: Sequence[Taken], rows: int) -> SendCheck:
    """Every row sent with the SID the fake gave its text (bodies are unique), none twice."""
    outbox = table(OutboxEntry)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.select(outbox.c.status, outbox.c.text, outbox.c.provider_message_id)
            ).all()
    finally:
        engine.dispose()
    copies = Counter(text.body for text in taken)
    sid_of = {text.body: text.sid for text in taken}
    sent = [(text, sid) for status, text, sid in found if status == "sent"]
    return SendCheck(
        rows=rows,
        rows_sent=len(sent),
        taken=len(taken),
        taken_twice=sum(count - 1 for count in copies.values()),
        wrong_sid=sum(sid_of.get(text) != sid for text, sid in sent),
        statuses=dict(Counter(status for status, _, _ in found)),
    )


# --- one run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    workers: list[WorkerRun]
    queued: Queued
    overall: Throughput
    per_worker: list[Throughput]
    drain_seconds: float
    """From the workers' start to the last text taken (their start-up included)."""
    check: SendCheck
    worker_cpu_seconds: float
    """CPU the worker processes used, start-up included."""
    pace: Pace | None
    pace_per_worker: list[Pace]


def run(
    postgresql_url: str | None,
    workdir: Path,
    name: str,
    messages: int,
    segments_per_second: int,
    limit_seconds: float,
) -> Run:
    workers = 2 if postgresql_url is not None else 1
    with fresh_database(postgresql_url, workdir, name, schema=SCHEMA) as database_url:
        _progress(f"{name}: queueing {messages:,} texts")
        queued = queue(database_url, messages)
        _progress(f"{name}: {workers} workers at {segments_per_second} segments/s")
        with fakes(workers, workdir) as providers:
            ran, started, cpu = run_workers(
                database_url,
                [fake.base_url for fake in providers],
                segments_per_second,
                workdir,
                limit_seconds,
            )
            taken = [text for fake in providers for text in fake.collect()]
        check = check_sent(database_url, taken, messages)
    by_worker = [[text for text in taken if text.fake == index] for index in range(workers)]
    paced = segments_per_second != UNLIMITED
    return Run(
        workers=ran,
        queued=queued,
        overall=throughput_of(taken),
        per_worker=[throughput_of(texts) for texts in by_worker],
        drain_seconds=max((text.at for text in taken), default=started) - started,
        check=check,
        worker_cpu_seconds=cpu,
        pace=pace_of(taken, segments_per_second) if paced else None,
        pace_per_worker=[pace_of(texts, segments_per_second) for texts in by_worker]
        if paced
        else [],
    )


# --- the report ----------------------------------------------------------------------------


def goals(lifted: Run, paced: Run, postgresql: bool) -> tuple[Goal, ...]:
    target = GOAL_MULTIPLE * TWILIO_LONG_CODE_RATE
    where = "two workers on PostgreSQL" if postgresql else "one worker on SQLite"
    rate = lifted.overall.segments_per_second
    duplicates = lifted.check.taken_twice + paced.check.taken_twice
    wrong = lifted.check.wrong_sid + paced.check.wrong_sid
    pace = paced.pace
    assert pace is not None
    return (
        Goal(
            name=f"Dispatcher, rate limit lifted, {where}: segments/s",
            target=f">= {target} (10x Twilio's {TWILIO_LONG_CODE_RATE}/s for a UK long code)",
            measured=f"{rate:,.0f} ({rate / TWILIO_LONG_CODE_RATE:.1f}x; "
            f"{lifted.overall.messages_per_second:,.0f} messages/s)",
            met=rate >= target and lifted.check.ok,
            why=""
            if rate >= target
            else f"each text costs a worker {_cpu_ms_per_text(lifted):.1f} ms of CPU "
            "(twilio-python and requests, SQLAlchemy and psycopg) one send at a time, and the "
            f"workers share {os.cpu_count()} cores with the fakes and PostgreSQL",
        ),
        Goal(
            name="Never a duplicate: no text taken twice, every row sent with its text's SID",
            target="0",
            measured=f"{duplicates} twice, {wrong} rows without their SID; "
            f"{lifted.check.rows_sent + paced.check.rows_sent:,} of "
            f"{lifted.check.rows + paced.check.rows:,} rows sent",
            met=lifted.check.ok and paced.check.ok,
            why="" if lifted.check.ok and paced.check.ok else "see the checks above",
        ),
        Goal(
            name=f"Configured rate kept from one number, {where}",
            target=f"{pace.configured} segments/s, within {RATE_TOLERANCE:.0%}; "
            f"no second over {(1 + RATE_TOLERANCE) * pace.configured:g}",
            measured=f"{pace.achieved:.1f}/s, worst second {pace.worst_window}",
            met=pace.kept(),
            why="" if pace.kept() else _pace_missed(paced, pace),
        ),
    )


def _pace_missed(paced: Run, pace: Pace) -> str:
    """Why the number's rate was not kept, from what each worker did."""
    worst_alone = max((one.worst_window for one in paced.pace_per_worker), default=0)
    if len(paced.workers) > 1 and worst_alone <= pace.configured < pace.worst_window:
        return (
            f"each worker kept under {pace.configured} in every second (worst {worst_alone}) "
            f"but together they went over (worst {pace.worst_window}): the rate shared through "
            "sender_pace was not kept, a defect to look into"
        )
    if pace.worst_window <= (1 + RATE_TOLERANCE) * pace.configured:
        return (
            f"never over the rate, but {pace.achieved:.1f}/s on average: a send took longer "
            "than its share of a second on this machine (see the lifted run's CPU a text)"
        )
    return "see the table"


def render(lifted: Run, paced: Run, postgresql: bool) -> str:
    where = (
        "two `dibot worker --once` processes on PostgreSQL"
        if postgresql
        else "one `dibot worker --once` on SQLite (no PostgreSQL was given: two workers on one"
        " SQLite file would take turns at its write lock; the issue's run is on PostgreSQL)"
    )
    lines = [
        f"{lifted.queued.messages:,} queued texts ({lifted.queued.segments:,} segments) to "
        f"{RESIDENTS:,} residents, drained by {where}, each sending to a fake Twilio in its own "
        "process on 127.0.0.1. Rates are at the fakes, from the first text taken to the last.",
        "",
        "| rate limit lifted | texts | segments | seconds | texts/s | segments/s |",
        "|---|---:|---:|---:|---:|---:|",
        _flow_row("all workers", lifted.overall),
        *(_flow_row(f"worker {index + 1}", flow) for index, flow in enumerate(lifted.per_worker)),
        "",
        f"Time to drain, from the workers' start (process start-up included) to the last text "
        f"taken: {lifted.drain_seconds:.1f} s. The workers used {lifted.worker_cpu_seconds:.1f} "
        f"CPU seconds, {_cpu_ms_per_text(lifted):.1f} ms a text (start-up included), on a "
        f"machine of {os.cpu_count()} cores that the fakes and PostgreSQL share. Queueing took "
        f"{lifted.queued.seconds:.1f} s (not timed above).",
        "",
        f"Check: {lifted.check.describe()}.",
        "",
    ]
    pace = paced.pace
    assert pace is not None
    lines += [
        f"Paced: {paced.queued.messages:,} texts ({paced.queued.segments:,} segments) with "
        f"`segments_per_second = {pace.configured}` for every worker, one number.",
        "",
        "| paced | segments | achieved /s | worst second | first second | seconds over |",
        "|---|---:|---:|---:|---:|---:|",
        _pace_row("the number (all workers)", paced.overall, pace),
        *(
            _pace_row(f"worker {index + 1}", flow, worker_pace)
            for index, (flow, worker_pace) in enumerate(
                zip(paced.per_worker, paced.pace_per_worker, strict=True)
            )
        ),
        "",
        f"Check: {paced.check.describe()}.",
    ]
    stopped = [run for run in (*lifted.workers, *paced.workers) if run.returncode != 0]
    if stopped:
        lines += [
            "",
            f"{len(stopped)} worker run(s) did not end cleanly (stopped at the limit or"
            " failed): " + "; ".join(run.error or "stopped" for run in stopped),
        ]
    return "\n".join(lines)


def _cpu_ms_per_text(one: Run) -> float:
    sent = sum(worker.tried for worker in one.workers)
    return 1000 * one.worker_cpu_seconds / sent if sent else 0.0


def _flow_row(name: str, flow: Throughput) -> str:
    return (
        f"| {name} | {flow.messages:,} | {flow.segments:,} | {flow.seconds:.1f} "
        f"| {flow.messages_per_second:,.0f} | {flow.segments_per_second:,.0f} |"
    )


def _pace_row(name: str, flow: Throughput, pace: Pace) -> str:
    return (
        f"| {name} | {flow.segments:,} | {pace.achieved:.1f} | {pace.worst_window} "
        f"| {pace.first_second} | {pace.windows_over} of {pace.windows} |"
    )


def raw(lifted: Run, paced: Run) -> dict[str, Any]:
    def numbers(one: Run) -> dict[str, Any]:
        return {
            "queued": asdict(one.queued),
            "workers": [asdict(worker) for worker in one.workers],
            "overall": {
                **asdict(one.overall),
                "messages_per_second": one.overall.messages_per_second,
                "segments_per_second": one.overall.segments_per_second,
            },
            "per_worker": [
                {
                    **asdict(flow),
                    "messages_per_second": flow.messages_per_second,
                    "segments_per_second": flow.segments_per_second,
                }
                for flow in one.per_worker
            ],
            "drain_seconds": one.drain_seconds,
            "worker_cpu_seconds": one.worker_cpu_seconds,
            "check": {**asdict(one.check), "ok": one.check.ok},
            "pace": asdict(one.pace) if one.pace else None,
            "pace_per_worker": [asdict(pace) for pace in one.pace_per_worker],
        }

    return {"lifted": numbers(lifted), "paced": numbers(paced)}


def measure(
    postgresql_url: str | None,
    messages: int,
    rate: int,
    rate_seconds: float,
    limit_seconds: float,
) -> tuple[Run, Run]:
    with tempfile.TemporaryDirectory(prefix="dibot-bench-outbound-") as workdir:
        lifted = run(postgresql_url, Path(workdir), "lifted", messages, UNLIMITED, limit_seconds)
        paced_texts = texts_for_segments(round(rate * rate_seconds))
        paced = run(postgresql_url, Path(workdir), "paced", paced_texts, rate, limit_seconds)
    return lifted, paced


def section(
    *,
    postgresql_url: str | None,
    messages: int = DEFAULT_MESSAGES,
    rate: int = DEFAULT_RATE,
    rate_seconds: float = DEFAULT_RATE_SECONDS,
    limit_seconds: float = DEFAULT_LIMIT_SECONDS,
) -> Section:
    """The outbound stage of `make bench` (on SQLite with one worker when no PostgreSQL)."""
    lifted, paced = measure(postgresql_url, messages, rate, rate_seconds, limit_seconds)
    postgresql = postgresql_url is not None
    return Section(
        key="outbound",
        title=f"Outbound: {messages:,} queued texts, "
        + ("two workers on PostgreSQL" if postgresql else "one worker on SQLite"),
        markdown=render(lifted, paced, postgresql),
        raw=raw(lifted, paced),
        goals=goals(lifted, paced, postgresql),
        ok=lifted.check.ok and paced.check.ok,
    )


def _progress(text: str) -> None:
    print(f"bench.outbound: {text}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.outbound",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=DEFAULT_MESSAGES,
        help=f"texts queued for the lifted run (default {DEFAULT_MESSAGES:,}; the issue's "
        f"full run: {FULL_MESSAGES})",
    )
    parser.add_argument(
        "--rate",
        type=int,
        default=DEFAULT_RATE,
        help=f"segments_per_second of the paced run (default {DEFAULT_RATE})",
    )
    parser.add_argument(
        "--rate-seconds",
        type=float,
        default=DEFAULT_RATE_SECONDS,
        help=f"seconds' worth of texts the paced run queues (default {DEFAULT_RATE_SECONDS:g})",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_LIMIT_SECONDS,
        help="time limit of each run, after which its workers are stopped "
        f"(default {DEFAULT_LIMIT_SECONDS:g})",
    )
    parser.add_argument(
        "--database-url",
        help=f"the PostgreSQL database, used inside schema {SCHEMA} "
        f"(default: ${DATABASE_URL_VARIABLE} when it names PostgreSQL; else SQLite)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        if not 1 <= arguments.messages <= FULL_MESSAGES:
            raise ValueError(f"--messages must be from 1 to {FULL_MESSAGES}")
        if not 1 <= arguments.rate <= UNLIMITED - 1 or arguments.rate_seconds <= 0:
            raise ValueError("--rate must be from 1 to 9999 and --rate-seconds positive")
        if arguments.seconds <= 0:
            raise ValueError("--seconds must be positive")
        postgresql_url = postgresql_url_of(arguments.database_url)
    except ValueError as error:
        print(f"bench.outbound: {error}", file=sys.stderr)
        return 2
    try:
        result = section(
            postgresql_url=postgresql_url,
            messages=arguments.messages,
            rate=arguments.rate,
            rate_seconds=arguments.rate_seconds,
            limit_seconds=arguments.seconds,
        )
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        print(f"bench.outbound: cannot use the database: {reason}", file=sys.stderr)
        return 2
    print(f"## {result.title}\n\n{result.markdown}\n\n{goals_table(result.goals)}")
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(result.raw, indent=2))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
