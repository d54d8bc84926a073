"""The hot path measured in one run, each stage reported as a ratio to a baseline of that run.

    .venv/bin/python -m bench.turns [--seconds N] [--database-url URL]
                                    [--turns N] [--requests N] [--in-flight N]

1. In process, one thread: `bot.engine.step` alone (the baseline), then `TurnHandler.handle`
   on SQLite (WAL, `BEGIN IMMEDIATE`) in a temporary directory and, given a PostgreSQL URL,
   on PostgreSQL: the handler's ratio to the engine is the share of a turn the engine takes.
   Each handler stage counts the SQL statements a turn sends (besides BEGIN and COMMIT, which
   on PostgreSQL are a round trip each) and its CPU time per turn.
2. Over HTTP: a real `dibot serve` (gunicorn, 2 sync workers) on a free 127.0.0.1 port; its own
   `GET /healthz` is the baseline for signed Twilio webhooks from respondents answering a quick
   check, 16 requests in flight. Afterwards the database must hold every answer sent exactly
   once, and every message once in the inbox.
3. Memory: peak RSS (VmHWM) of the gunicorn workers after the healthz baseline and after the
   webhooks; building the flow once, under tracemalloc.

The rules it keeps: ratios, never pass/fail thresholds on speed (machines differ; this one has
2 cores); every stage does the same work (the same respondents' messages), bounded in count
and in time (`--seconds` per timed stage); traffic goes to 127.0.0.1 only; PostgreSQL is used
only inside a scratch schema `dibot_bench` of the database named, dropped before and after,
never another schema or database. Exit status 1 when a request failed or an answer was not
stored exactly once, 2 for unusable arguments.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import tracemalloc
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path
from time import perf_counter, process_time

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bench.http_load import (
    ProcessMemory,
    Request,
    Timing,
    process_memory,
    run_load,
    serving,
    worker_memory,
)
from bench.report import Section
from bot.engine import step
from bot.messages import Inbound
from bot.state import State
from channels.twilio_sms import CHANNEL, SIGNATURE_HEADER
from dibot.turns import TurnHandler
from flows.loader import load_flow
from flows.model import Flow
from storage.database import make_engine
from storage.migrate import upgrade
from storage.models import Answer, InboxEntry, table
from storage.privacy import KEY_VARIABLE, new_key

DATABASE_URL_VARIABLE = "DIBOT_DATABASE_URL"
SCRATCH_SCHEMA = "dibot_bench"
TOKEN = "bench-token-not-a-secret"
ACCOUNT_SID = "AC" + "0" * 32
BOT_NUMBER = "+447700900999"
"""The number respondents text (Twilio's `To`); a drama-range number, only ever a form field."""
RESPONDENTS = tuple(f"+447700900{index:03d}" for index in range(1000))
GREETING = "Hi"
FIRST_CHOICE = "1"
"""At every prompt before the questions (language, consent, quick or full) the first option:
the flow's first language, agree, the quick check."""
STORED_KINDS = frozenset({"answered", "skipped"})
"""Events the turn handler stores as one answer row each."""
MAX_MESSAGES_PER_RESPONDENT = 200
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HTTP_WARMUP = 1
"""Untimed requests per in-flight slot before the clock starts (workers connect, caches fill)."""
HEALTHZ = Request("GET", "/healthz")
WEBHOOK_PATH = "/webhooks/twilio/sms"
MIB = 1024


@dataclass(frozen=True)
class Message:
    """One SMS a respondent sends, and how many answer rows it must leave."""

    sender: str
    body: str
    message_id: str
    answers: int

    @property
    def urn(self) -> str:
        return "tel:" + self.sender


@dataclass(frozen=True)
class TurnsResult:
    """An in-process stage: the messages taken (warm-up included) and the timed ones' times."""

    sent: tuple[Message, ...]
    timing: Timing
    statements: int = 0
    """SQL statements sent to the database by every turn taken (BEGIN and COMMIT aside)."""
    cpu_seconds: float = 0.0
    """This process's CPU time over the timed turns."""

    @property
    def statements_per_turn(self) -> float:
        return self.statements / len(self.sent) if self.sent else 0.0

    @property
    def cpu_ms_per_turn(self) -> float:
        return self.cpu_seconds * 1000 / self.timing.count if self.timing.count else 0.0


@dataclass(frozen=True)
class IntegrityCheck:
    messages_sent: int
    messages_stored: int
    answers_sent: int
    answers_stored: int
    missing: int
    """Answers sent and not stored (or messages sent and not in the inbox)."""
    extra: int
    """Answer rows or inbox rows beyond one for each sent."""

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.extra == 0

    def describe(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{self.answers_sent} answers sent, {self.answers_stored} stored, "
            f"{self.missing} missing, {self.extra} extra; {self.messages_sent} messages, "
            f"{self.messages_stored} in the inbox: {verdict}"
        )


@dataclass(frozen=True)
class HttpResult:
    baseline: Timing
    webhooks: Timing
    check: IntegrityCheck
    master: ProcessMemory | None
    workers_after_baseline: tuple[ProcessMemory, ...]
    workers_after_webhooks: tuple[ProcessMemory, ...]


@dataclass(frozen=True)
class FlowMemory:
    peak_kib: int
    retained_kib: int


# --- the work: respondents answering a quick check -----------------------------------------


def quick_check(flow: Flow, respondent: int) -> Iterator[tuple[str, int]]:
    """(body, answer rows it stores) of each message from "Hi" to the priorities message;
    answers vary by respondent and question so that priorities differ."""
    state = State()
    for _ in range(MAX_MESSAGES_PER_RESPONDENT):
        body = _reply(flow, state, respondent)
        turn = step(flow, state, Inbound(body), START)
        state = turn.state
        yield body, sum(event.kind in STORED_KINDS for event in turn.events)
        if state.stage == "done":
            return
    raise RuntimeError("the quick check did not finish: the script no longer fits the flow")


def _reply(flow: Flow, state: State, respondent: int) -> str:
    if state.stage == "new":
        return GREETING
    question = flow.questions.get(state.question or "")
    if state.stage != "asking" or question is None:
        return FIRST_CHOICE
    options = flow.scale_of(question).options
    return str(options[(respondent + question.number) % len(options)].number)


def plan(flow: Flow, total: int, slots: int) -> tuple[tuple[Message, ...], ...]:
    """`total` messages split over `slots` in-flight slots. Respondent i belongs to slot
    i % slots, which sends their messages in order, one respondent after another; fewer than
    `total` when the 1,000 respondents run out."""
    quotas = [total // slots + (slot < total % slots) for slot in range(slots)]
    planned = []
    for slot, quota in enumerate(quotas):
        messages: list[Message] = []
        for respondent in range(slot, len(RESPONDENTS), slots):
            for body, answers in quick_check(flow, respondent):
                if len(messages) == quota:
                    break
                sid = f"SM{uuid.uuid4().hex}"
                messages.append(Message(RESPONDENTS[respondent], body, sid, answers))
            if len(messages) == quota:
                break
        planned.append(tuple(messages))
    return tuple(planned)


def interleave(slots: Sequence[Sequence[Message]]) -> tuple[Message, ...]:
    """The slots' messages round-robin: one thread doing what the in-flight slots do at once."""
    return tuple(m for group in zip_longest(*slots) for m in group if m is not None)


# --- stage 1: in process -------------------------------------------------------------------


def _warmup(count: int) -> int:
    return min(50, count // 10)


def run_turns(
    messages: Sequence[Message], take: Callable[[Message], object], seconds: float
) -> TurnsResult:
    """A few untimed turns, then the rest timed one by one until done or `seconds` pass."""
    warmup = _warmup(len(messages))
    for message in messages[:warmup]:
        take(message)
    latencies = []
    cpu_began = process_time()
    began = perf_counter()
    deadline = began + seconds
    for message in messages[warmup:]:
        before = perf_counter()
        if before >= deadline:
            break
        take(message)
        latencies.append(perf_counter() - before)
    elapsed = perf_counter() - began
    cpu = process_time() - cpu_began
    sent = tuple(messages[: warmup + len(latencies)])
    return TurnsResult(sent, Timing(tuple(latencies), elapsed), cpu_seconds=cpu)


def engine_stage(flow: Flow, messages: Sequence[Message], seconds: float) -> TurnsResult:
    """`bot.engine.step` alone: states kept in a dict, no database, no JSON."""
    states: dict[str, State] = {}
    new = State()

    def take(message: Message) -> None:
        state = states.get(message.sender, new)
        states[message.sender] = step(flow, state, Inbound(message.body), START).state

    return run_turns(messages, take, seconds)


def handler_stage(
    flow: Flow, database_url: str, messages: Sequence[Message], seconds: float
) -> TurnsResult:
    """`TurnHandler.handle` on a migrated, empty database: one transaction per message, its
    statements counted."""
    engine = make_engine(database_url)
    statements = 0

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        nonlocal statements
        if not statement.startswith("BEGIN"):
            statements += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        handler = TurnHandler(engine, flow)

        def take(message: Message) -> None:
            handler.handle(
                channel=CHANNEL,
                message_id=message.message_id,
                urn=message.urn,
                inbound=Inbound(message.body),
            )

        return replace(run_turns(messages, take, seconds), statements=statements)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
        engine.dispose()


# --- the integrity check -------------------------------------------------------------------


def verify_stored(database_url: str, sent: Sequence[Message]) -> IntegrityCheck:
    """Every message sent is in the inbox once, every answer it carried is stored once (by
    its provider message id), and nothing else is there."""
    return verify_channel(database_url, CHANNEL, [(m.message_id, m.answers) for m in sent])


def verify_channel(
    database_url: str, channel: str, sent: Sequence[tuple[str, int]]
) -> IntegrityCheck:
    """As `verify_stored`, for any channel: `sent` holds (message id, answers it carried)."""
    answers, inbox = table(Answer), table(InboxEntry)
    engine = make_engine(database_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            stored_answers = Counter(
                conn.execute(
                    sa.select(answers.c.provider_message_id).where(answers.c.channel == channel)
                ).scalars()
            )
            stored_messages = Counter(
                conn.execute(
                    sa.select(inbox.c.provider_message_id).where(inbox.c.channel == channel)
                ).scalars()
            )
    finally:
        engine.dispose()
    expected_answers = Counter({message_id: count for message_id, count in sent if count})
    expected_messages = Counter(message_id for message_id, _ in sent)
    missing = (expected_answers - stored_answers).total()
    missing += (expected_messages - stored_messages).total()
    extra = (stored_answers - expected_answers).total()
    extra += (stored_messages - expected_messages).total()
    return IntegrityCheck(
        messages_sent=len(sent),
        messages_stored=stored_messages.total(),
        answers_sent=expected_answers.total(),
        answers_stored=stored_answers.total(),
        missing=missing,
        extra=extra,
    )


# --- stage 2: over HTTP --------------------------------------------------------------------


def signed_webhook(port: int, message: Message) -> Request:
    """The form Twilio posts for an inbound SMS, signed for the URL it is posted to."""
    from twilio.request_validator import RequestValidator

    params = {
        "MessageSid": message.message_id,
        "SmsMessageSid": message.message_id,
        "AccountSid": ACCOUNT_SID,
        "From": message.sender,
        "To": BOT_NUMBER,
        "Body": message.body,
        "NumMedia": "0",
        "NumSegments": "1",
    }
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    headers = (
        ("Content-Type", "application/x-www-form-urlencoded"),
        (SIGNATURE_HEADER, signature),
    )
    return Request("POST", WEBHOOK_PATH, urllib.parse.urlencode(params).encode(), headers)


def http_stage(
    database_url: str, slots: Sequence[Sequence[Message]], seconds: float, workdir: Path
) -> HttpResult:
    """`dibot serve` on a migrated, empty database: its healthz, then the webhooks (the same
    count, the same slots), then the database checked against what was sent."""
    settings = {"DIBOT_TWILIO_AUTH_TOKEN": TOKEN}
    with serving(database_url, workdir, settings) as server:
        healthz = [[HEALTHZ] * len(slot) for slot in slots]
        baseline = run_load(server.port, healthz, warmup=HTTP_WARMUP, seconds=seconds)
        after_baseline = worker_memory(server.pid)
        # Signed here, before the clock starts: the client only sends.
        requests = [[signed_webhook(server.port, m) for m in slot] for slot in slots]
        webhooks = run_load(server.port, requests, warmup=HTTP_WARMUP, seconds=seconds)
        after_webhooks = worker_memory(server.pid)
        master = process_memory(server.pid)
    sent = [m for slot, done in zip(slots, webhooks.slots, strict=True) for m in slot[: done.sent]]
    return HttpResult(
        baseline=baseline.timing,
        webhooks=webhooks.timing,
        check=verify_stored(database_url, sent),
        master=master,
        workers_after_baseline=after_baseline,
        workers_after_webhooks=after_webhooks,
    )


# --- databases -----------------------------------------------------------------------------


def scratch_url(postgresql_url: str, schema: str = SCRATCH_SCHEMA) -> str:
    """The same database, with the scratch schema as the connection's only search path."""
    url = make_url(postgresql_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def _reset_scratch_schema(postgresql_url: str, schema: str, *, create: bool) -> None:
    engine = make_engine(postgresql_url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            if create:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    finally:
        engine.dispose()


@contextmanager
def fresh_database(
    postgresql_url: str | None, workdir: Path, name: str, *, schema: str = SCRATCH_SCHEMA
) -> Iterator[str]:
    """A migrated, empty database: an SQLite file in `workdir`, or (given a PostgreSQL URL)
    the scratch `schema` of that database, dropped again afterwards."""
    if postgresql_url is None:
        url = f"sqlite:///{workdir / name}.db"
        upgrade(url)
        yield url
        return
    _reset_scratch_schema(postgresql_url, schema, create=True)
    # The scratch schema's encryption key, unless one is given: thrown away with the schema.
    os.environ.setdefault(KEY_VARIABLE, new_key())
    try:
        url = scratch_url(postgresql_url, schema)
        upgrade(url)
        yield url
    finally:
        _reset_scratch_schema(postgresql_url, schema, create=False)


# --- stage 3: memory of the flow -----------------------------------------------------------


def flow_memory() -> FlowMemory:
    """Building the flow once more under tracemalloc (imports and caches already warm)."""
    load_flow()
    tracemalloc.start()
    try:
        flow = load_flow()
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del flow
    return FlowMemory(peak_kib=peak // 1024, retained_kib=retained // 1024)


def process_peak_kib() -> int:
    """This process's peak RSS (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    turns: int
    requests: int
    in_flight: int
    flow: FlowMemory
    process_peak_kib: int
    engine: TurnsResult
    handlers: dict[str, TurnsResult]
    handler_checks: dict[str, IntegrityCheck]
    http: dict[str, HttpResult]

    @property
    def ok(self) -> bool:
        checks = [*self.handler_checks.values(), *(h.check for h in self.http.values())]
        errors = sum(h.baseline.errors + h.webhooks.errors for h in self.http.values())
        return errors == 0 and all(check.ok for check in checks)


def _row(name: str, timing: Timing, ratio: float, errors: str, note: str = "") -> str:
    return (
        f"{name:42} {timing.count:6} {timing.rate:9.1f} {timing.percentile(0.5) * 1000:8.3f}"
        f" {timing.percentile(0.99) * 1000:8.3f} {ratio:7.3f} {errors:>6}  {note}"
    ).rstrip()


def _errors(timing: Timing) -> tuple[str, str]:
    """The error count, and what the errors were."""
    kinds = Counter(timing.failures).most_common()
    return str(timing.errors), ", ".join(f"{kind} x{count}" for kind, count in kinds)


def _mib(kib: int) -> str:
    return f"{kib / MIB:.1f} MiB"


def _peak(memories: Sequence[ProcessMemory]) -> int:
    return max((memory.peak_kib for memory in memories), default=0)


def render(report: Report) -> str:
    engine = report.engine.timing
    lines = [
        f"hot path: {report.turns} turns in process, {report.requests} requests over HTTP with "
        f"{report.in_flight} in flight, {os.cpu_count()} CPUs; timed counts exclude a warm-up",
        f"{'stage':42} {'timed':>6} {'per s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7}"
        f" {'errors':>6}",
        _row("engine.step (baseline)", engine, 1.0, "-"),
    ]
    for database, result in report.handlers.items():
        ratio = result.timing.rate / engine.rate if engine.rate else 0.0
        note = (
            f"engine is {ratio:.1%} of a turn; {result.statements_per_turn:.2f} statements "
            f"and {result.cpu_ms_per_turn:.2f} ms CPU a turn"
        )
        lines.append(_row(f"TurnHandler.handle, {database}", result.timing, ratio, "-", note))
    for database, http in report.http.items():
        ratio = http.webhooks.rate / http.baseline.rate if http.baseline.rate else 0.0
        base, hooks = http.baseline, http.webhooks
        name = f"HTTP {database}: "
        lines.append(_row(name + "GET /healthz (baseline)", base, 1.0, *_errors(base)))
        lines.append(_row(name + f"POST {WEBHOOK_PATH}", hooks, ratio, *_errors(hooks)))
    lines.append("integrity: every answer sent stored exactly once")
    for database, check in report.handler_checks.items():
        lines.append(f"  TurnHandler, {database}: {check.describe()}")
    for database, http in report.http.items():
        lines.append(f"  HTTP, {database}: {http.check.describe()}")
    lines.append("memory")
    lines.append(
        f"  flow built once (tracemalloc): peak {_mib(report.flow.peak_kib)}, "
        f"retained {_mib(report.flow.retained_kib)}"
    )
    lines.append(
        f"  this process after the in-process stages: peak RSS {_mib(report.process_peak_kib)}"
    )
    for database, http in report.http.items():
        before, after = _peak(http.workers_after_baseline), _peak(http.workers_after_webhooks)
        master = _mib(http.master.peak_kib) if http.master else "?"
        growth = f"{after / before:.2f}x" if before else "?"
        lines.append(
            f"  gunicorn, {database}: master peak {master}; busiest of "
            f"{len(http.workers_after_webhooks)} workers peak {_mib(before)} after healthz, "
            f"{_mib(after)} after webhooks ({growth})"
        )
    return "\n".join(lines)


# --- the section of `make bench` --------------------------------------------------------

SECTION_TURNS = 2000
SECTION_SLOTS = 16


def in_process(
    flow: Flow,
    postgresql_url: str | None,
    seconds: float,
    workdir: Path,
    messages: Sequence[Message],
) -> tuple[TurnsResult, dict[str, TurnsResult], dict[str, IntegrityCheck]]:
    """Stage 1: the engine alone, then the handler on SQLite and (given) PostgreSQL, each
    checked against what it was sent."""
    databases: dict[str, str | None] = {"SQLite": None}
    if postgresql_url is not None:
        databases["PostgreSQL"] = postgresql_url
    _progress("engine.step")
    engine = engine_stage(flow, messages, seconds)
    handlers, checks = {}, {}
    for database, url in databases.items():
        _progress(f"TurnHandler.handle on {database}")
        with fresh_database(url, workdir, "handler") as ready:
            handlers[database] = handler_stage(flow, ready, messages, seconds)
            checks[database] = verify_stored(ready, handlers[database].sent)
    return engine, handlers, checks


def _stage_raw(result: TurnsResult) -> dict[str, float | int]:
    timing = result.timing
    return {
        "timed": timing.count,
        "per_second": round(timing.rate, 1),
        "p50_ms": round(timing.percentile(0.5) * 1000, 3),
        "p99_ms": round(timing.percentile(0.99) * 1000, 3),
        "max_ms": round(max(timing.latencies, default=0.0) * 1000, 3),
        "cpu_ms_per_turn": round(result.cpu_ms_per_turn, 3),
        "statements_per_turn": round(result.statements_per_turn, 2),
    }


def section(*, postgresql_url: str | None, seconds: float = 15.0) -> Section:
    """The hot path in process for `make bench` (key "hot_path"): the engine alone, the turn
    handler on SQLite and on PostgreSQL (given its URL; only inside the scratch schema), with
    the statements and CPU time a turn costs. The turn over HTTP is `bench.serve_load`'s."""
    flow = load_flow()
    with tempfile.TemporaryDirectory(prefix="dibot-bench-") as workdir:
        messages = interleave(plan(flow, SECTION_TURNS, SECTION_SLOTS))
        engine, handlers, checks = in_process(
            flow, postgresql_url, seconds, Path(workdir), messages
        )
    rows = [
        "| stage | turns timed | per s | p50 ms | p99 ms | CPU ms a turn | statements a turn "
        "| ratio to the engine |",
        "|---|---|---|---|---|---|---|---|",
        f"| `bot.engine.step` alone | {engine.timing.count} | {engine.timing.rate:,.0f} "
        f"| {engine.timing.percentile(0.5) * 1000:.3f} "
        f"| {engine.timing.percentile(0.99) * 1000:.3f} | {engine.cpu_ms_per_turn:.3f} | 0 | 1 |",
    ]
    for database, result in handlers.items():
        timing = result.timing
        ratio = timing.rate / engine.timing.rate if engine.timing.rate else 0.0
        rows.append(
            f"| `TurnHandler.handle`, {database} | {timing.count} | {timing.rate:,.0f} "
            f"| {timing.percentile(0.5) * 1000:.3f} | {timing.percentile(0.99) * 1000:.3f} "
            f"| {result.cpu_ms_per_turn:.3f} | {result.statements_per_turn:.2f} | {ratio:.3f} |"
        )
    notes = [
        "",
        "One thread, one turn at a time, each in its own transaction, on an empty migrated "
        f"database; {SECTION_TURNS} messages from respondents answering the quick check "
        "(a few untimed first). Statements a turn: the SQL the turn sends, BEGIN and COMMIT "
        "aside (on PostgreSQL each of those is one more round trip). CPU is this process's "
        "(on PostgreSQL the server's is not counted).",
        "",
        "Integrity: " + "; ".join(f"{db}: {check.describe()}" for db, check in checks.items()),
    ]
    raw = {
        "turns": SECTION_TURNS,
        "seconds_per_stage": seconds,
        "cpus": os.cpu_count(),
        "engine": _stage_raw(engine),
        "handler": {database: _stage_raw(result) for database, result in handlers.items()},
        "integrity": {
            database: {"ok": check.ok, "missing": check.missing, "extra": check.extra}
            for database, check in checks.items()
        },
    }
    return Section(
        key="hot_path",
        title="The turn in process: engine, handler, statements",
        markdown="\n".join(rows + notes),
        raw=raw,
        ok=all(check.ok for check in checks.values()),
    )


# --- the command ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.turns", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="time limit of each timed stage (default 60)"
    )
    parser.add_argument(
        "--database-url",
        help=f"a PostgreSQL database to measure too, inside schema {SCRATCH_SCHEMA} "
        f"(default: ${DATABASE_URL_VARIABLE} when it names PostgreSQL)",
    )
    parser.add_argument("--turns", type=int, default=2000, help="in-process turns per stage")
    parser.add_argument("--requests", type=int, default=2000, help="HTTP requests per stage")
    parser.add_argument("--in-flight", type=int, default=16, help="HTTP requests at once")
    return parser


def measured_postgresql_url(given: str | None) -> str | None:
    """The PostgreSQL database to measure too: `--database-url`, else $DIBOT_DATABASE_URL when it
    names PostgreSQL, else None (SQLite is always measured)."""
    if given is not None:
        if make_url(given).get_backend_name() != "postgresql":
            raise ValueError("--database-url must name PostgreSQL (SQLite is always measured)")
        return given
    from_environment = os.environ.get(DATABASE_URL_VARIABLE, "")
    if from_environment and make_url(from_environment).get_backend_name() == "postgresql":
        return from_environment
    return None


def _progress(text: str) -> None:
    print(f"bench.turns: {text}", file=sys.stderr, flush=True)


def measure(
    flow: Flow, arguments: argparse.Namespace, postgresql_url: str | None, workdir: Path
) -> Report:
    seconds = arguments.seconds
    databases: dict[str, str | None] = {"SQLite": None}
    if postgresql_url is not None:
        databases["PostgreSQL"] = postgresql_url
    messages = interleave(plan(flow, arguments.turns, arguments.in_flight))
    request_slots = plan(flow, arguments.requests, arguments.in_flight)

    flow_built = flow_memory()
    engine, handlers, checks = in_process(flow, postgresql_url, seconds, workdir, messages)
    peak = process_peak_kib()
    http = {}
    for database, url in databases.items():
        _progress(f"dibot serve on {database}")
        with fresh_database(url, workdir, "http") as ready:
            http[database] = http_stage(ready, request_slots, seconds, workdir)
    return Report(
        turns=len(messages),
        requests=sum(len(slot) for slot in request_slots),
        in_flight=arguments.in_flight,
        flow=flow_built,
        process_peak_kib=peak,
        engine=engine,
        handlers=handlers,
        handler_checks=checks,
        http=http,
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        if arguments.seconds <= 0 or min(arguments.turns, arguments.requests) < 1:
            raise ValueError("--seconds, --turns and --requests must be positive")
        if not 1 <= arguments.in_flight <= len(RESPONDENTS):
            raise ValueError(f"--in-flight must be between 1 and {len(RESPONDENTS)}")
        postgresql_url = measured_postgresql_url(arguments.database_url)
    except ValueError as error:
        print(f"bench.turns: {error}", file=sys.stderr)
        return 2
    flow = load_flow()
    with tempfile.TemporaryDirectory(prefix="dibot-bench-") as workdir:
        try:
            report = measure(flow, arguments, postgresql_url, Path(workdir))
        except OperationalError as error:
            reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
            print(f"bench.turns: cannot use the database: {reason}", file=sys.stderr)
            return 2
    print(render(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
