"""Turns over HTTP: `dibot serve` as shipped against the ceiling of its own stack, in one run.

    .venv/bin/python -m bench.serve_load [--database-url URL] [--seconds N] [--requests N]
                                         [--telegram-requests N]

What it runs, on SQLite and (given a PostgreSQL URL) on PostgreSQL:
- the ceiling: `bench.ceiling_app`, a bare Flask app answering constant TwiML under the same
  gunicorn server, worker class and worker count as `dibot serve` (`dibot.cli.gunicorn_server`);
- SMS: respondents answering a quick check over Twilio webhooks signed with Twilio's own
  `RequestValidator`, their replies in the TwiML answer;
- Telegram: the same respondents as Telegram updates with the webhook's secret token (a text,
  then taps on the buttons the bot sent), their replies queued in the outbox and sent by a
  `dibot worker` to a fake Bot API on 127.0.0.1 (at Telegram's own limits, 30 a second and one
  a second a chat, which is why these runs are fewer);
each in two shapes: closed at 16 in flight (the throughput), and open at 100 requests a second
with up to 50 in flight, every latency measured from the request's due time, so that waiting
for a busy server (or a busy slot) counts. A respondent belongs to one slot, which sends their
messages in order. For each run: turns/s, p50, p99, max, the machine's CPU busy share and the
server's CPU a turn (from /proc), and after it the database checked: every answer stored once,
every message once in the inbox, and every Telegram reply sent once, in order.

The rules it keeps: every stage as a ratio to the ceiling measured in the same run, never a
speed judged in seconds; each run against a freshly migrated database (an SQLite file, or a
PostgreSQL scratch schema `dibot_bench_serve` dropped before and after), bounded in count and
in time (`--seconds` per run, `--requests` per closed run); traffic on 127.0.0.1 only. Exit
status 1 when a request failed or a check found an answer or a reply missing or doubled, 2 for
unusable arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.http_load import WORKERS, Timing
from bench.report import Goal, Section, goals_table

if TYPE_CHECKING:
    from bench.telegram_load import Delivery
    from bench.turns import IntegrityCheck

SCRATCH_SCHEMA = "dibot_bench_serve"
DEFAULT_SECONDS = 5.0
"""Each timed run's limit: 12 runs, server starts and Telegram's drains fit in 4 minutes."""
DEFAULT_REQUESTS = 20_000
"""The most a closed run sends: more than the ceiling answers in 5 s on a 2-core machine."""
DEFAULT_TELEGRAM_REQUESTS = 300
"""The most a Telegram run sends: its replies leave at 30 a second and one a second a chat, so
the 16 chats' replies take about 20 s to drain after the run (26 s for 600)."""
IN_FLIGHT = 16
PACED_RATE = 100.0
PACED_IN_FLIGHT = 50
WARMUP = 1
"""Untimed requests per slot before the clock starts."""
CPU_BOUND_SHARE = 0.9
"""A run with the machine at least this busy was limited by CPU."""
SPIKE_FACTOR = 5.0


@dataclass(frozen=True)
class Shape:
    key: str
    name: str
    in_flight: int
    rate: float | None
    """Requests a second for an open load; None for a closed one."""


CLOSED = Shape("closed", f"{IN_FLIGHT} in flight", IN_FLIGHT, None)
PACED = Shape("paced", f"paced {PACED_RATE:.0f}/s", PACED_IN_FLIGHT, PACED_RATE)
SHAPES = (CLOSED, PACED)
CEILING, SMS, TELEGRAM = "ceiling", "SMS", "Telegram"
TARGETS = (CEILING, SMS, TELEGRAM)


@dataclass(frozen=True)
class Run:
    target: str
    shape: Shape
    database: str
    timing: Timing
    machine_busy: float
    """The machine's CPUs' busy share during the timed part (the load client's included)."""
    server_cpu_seconds: float
    """CPU used by the gunicorn master and workers during the timed part (warm-up excluded)."""
    worker_cpu_seconds: float = 0.0
    """CPU used by `dibot worker` during the timed part (Telegram only)."""
    check: IntegrityCheck | None = None
    delivery: Delivery | None = None
    planned: int = 0
    """Timed requests the run had: fewer were sent when its time ran out (closed) or when the
    server fell too far behind the rate (paced)."""

    @property
    def ok(self) -> bool:
        checks_ok = (self.check is None or self.check.ok) and (
            self.delivery is None or self.delivery.ok
        )
        return self.timing.errors == 0 and checks_ok

    @property
    def server_cpu_ms_per_turn(self) -> float:
        count = self.timing.count
        return self.server_cpu_seconds * 1000 / count if count else 0.0


@dataclass(frozen=True)
class Sizes:
    seconds: float = DEFAULT_SECONDS
    requests: int = DEFAULT_REQUESTS
    telegram_requests: int = DEFAULT_TELEGRAM_REQUESTS


# --- the report ----------------------------------------------------------------------------


def _find(runs: Sequence[Run], target: str, shape: Shape, database: str) -> Run | None:
    return next(
        (
            run
            for run in runs
            if (run.target, run.shape.key, run.database) == (target, shape.key, database)
        ),
        None,
    )


def _ms(seconds: float) -> float:
    return seconds * 1000


def _max(timing: Timing) -> float:
    return max(timing.latencies, default=0.0)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _cores(run: Run) -> float:
    """The server's CPU use as CPUs kept busy over the run."""
    return _ratio(run.server_cpu_seconds, run.timing.elapsed)


def _bound(run: Run) -> str:
    """Whether the run was CPU-bound, and how much of the machine the server itself used (the
    rest is the load client's, the database's and anything else running)."""
    server = f"the server {_cores(run):.2f} of its {_cpus()} CPUs"
    if run.machine_busy >= CPU_BOUND_SHARE:
        return f"the machine was {run.machine_busy:.0%} busy ({server}): CPU-bound"
    return (
        f"the machine was only {run.machine_busy:.0%} busy ({server}): not CPU-bound, so turns "
        "waited (on a lock, a sync to disk or the database) rather than computed"
    )


def _cpu_against(run: Run, ceiling: Run) -> str:
    return (
        f"the server used {run.server_cpu_ms_per_turn:.2f} ms of CPU a turn against the "
        f"ceiling's {ceiling.server_cpu_ms_per_turn:.2f} ms a request"
    )


def goal_throughput(runs: Sequence[Run]) -> Goal:
    name = "SMS turns/s against the ceiling's, SQLite, 16 in flight"
    sms, ceiling = _find(runs, SMS, CLOSED, "SQLite"), _find(runs, CEILING, CLOSED, "SQLite")
    if sms is None or ceiling is None:
        return Goal(name, "≥ 0.40", "not measured", False, "the runs did not happen")
    ratio = _ratio(sms.timing.rate, ceiling.timing.rate)
    measured = f"{ratio:.2f} ({sms.timing.rate:,.0f} / {ceiling.timing.rate:,.0f} turns/s)"
    met = ratio >= 0.40
    why = "" if met else f"{_bound(sms)}; {_cpu_against(sms, ceiling)}"
    return Goal(name, "≥ 0.40", measured, met, why)


def goal_postgresql(runs: Sequence[Run]) -> Goal:
    name = "SMS turns/s on PostgreSQL against SQLite's, 16 in flight"
    target = "within 1.5× (SQLite ÷ PostgreSQL ≤ 1.5)"
    sqlite, postgresql = _find(runs, SMS, CLOSED, "SQLite"), _find(runs, SMS, CLOSED, "PostgreSQL")
    if postgresql is None or sqlite is None:
        return Goal(name, target, "not measured", False, "no PostgreSQL database was given")
    ratio = _ratio(sqlite.timing.rate, postgresql.timing.rate)
    measured = (
        f"{ratio:.2f} ({sqlite.timing.rate:,.0f} on SQLite, "
        f"{postgresql.timing.rate:,.0f} on PostgreSQL turns/s)"
    )
    met = postgresql.timing.rate > 0 and ratio <= 1.5
    why = (
        ""
        if met
        else (
            f"on PostgreSQL {_bound(postgresql)}; the server used "
            f"{postgresql.server_cpu_ms_per_turn:.2f} ms of CPU a turn against "
            f"{sqlite.server_cpu_ms_per_turn:.2f} ms on SQLite"
        )
    )
    return Goal(name, target, measured, met, why)


def goal_spikes(runs: Sequence[Run]) -> Goal:
    name = "No SQLite latency spikes: SMS max against p99, both shapes"
    target = f"max ≤ {SPIKE_FACTOR:.0f}× p99"
    found = [(shape, _find(runs, SMS, shape, "SQLite")) for shape in SHAPES]
    measured_runs = [(shape, run) for shape, run in found if run is not None and run.timing.count]
    if not measured_runs:
        return Goal(name, target, "not measured", False, "the runs did not happen")
    parts, whys, met = [], [], True
    for shape, run in measured_runs:
        p99, worst = run.timing.percentile(0.99), _max(run.timing)
        factor = _ratio(worst, p99)
        parts.append(f"{shape.name}: {factor:.1f}× ({_ms(worst):.1f} / {_ms(p99):.1f} ms)")
        if factor > SPIKE_FACTOR:
            met = False
            spikes = sum(latency > SPIKE_FACTOR * p99 for latency in run.timing.latencies)
            whys.append(
                f"{shape.name}: {spikes} of {run.timing.count} turns over {SPIKE_FACTOR:.0f}× "
                f"p99; {_bound(run)}"
            )
    return Goal(name, target, "; ".join(parts), met, "; ".join(whys))


def goal_paced(runs: Sequence[Run]) -> Goal:
    name = f"SMS p99 at the paced design load ({PACED_RATE:.0f}/s) against the ceiling's p99"
    target = "≤ 3×"
    parts, whys, met, measured_any = [], [], True, False
    for database in dict.fromkeys(run.database for run in runs):
        sms, ceiling = _find(runs, SMS, PACED, database), _find(runs, CEILING, PACED, database)
        if sms is None or ceiling is None:
            continue
        measured_any = True
        p99, ceiling_p99 = sms.timing.percentile(0.99), ceiling.timing.percentile(0.99)
        factor = _ratio(p99, ceiling_p99)
        parts.append(f"{database} {factor:.1f}× ({_ms(p99):.1f} / {_ms(ceiling_p99):.1f} ms)")
        if factor > 3 or not sms.timing.count:
            met = False
            behind = (
                f"only {sms.timing.count:,} of {sms.planned:,} due were sent in time; "
                if sms.timing.count < sms.planned
                else ""
            )
            whys.append(
                f"{database}: {behind}the server kept {_cores(sms):.2f} CPUs busy against the "
                f"ceiling's {_cores(ceiling):.2f}; {_cpu_against(sms, ceiling)}; {_bound(sms)}"
            )
    if not measured_any:
        return Goal(name, target, "not measured", False, "the runs did not happen")
    return Goal(name, target, "; ".join(parts), met, "; ".join(whys))


def goals(runs: Sequence[Run]) -> tuple[Goal, ...]:
    return (goal_throughput(runs), goal_postgresql(runs), goal_spikes(runs), goal_paced(runs))


def _table(runs: Sequence[Run], database: str) -> str:
    lines = [
        f"| {database} | shape | timed | turns/s | p50 ms | p99 ms | max ms | turns/s ÷ ceiling's "
        "| p99 ÷ ceiling's | machine busy | server CPU ms a turn | failed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for shape in SHAPES:
        ceiling = _find(runs, CEILING, shape, database)
        for target in TARGETS:
            run = _find(runs, target, shape, database)
            if run is None:
                continue
            timing = run.timing
            rate = _ratio(timing.rate, ceiling.timing.rate) if ceiling else 0.0
            p99 = (
                _ratio(timing.percentile(0.99), ceiling.timing.percentile(0.99)) if ceiling else 0.0
            )
            timed = f"{timing.count:,}"
            if shape.rate is not None and timing.count < run.planned:
                timed += f" of {run.planned:,} due"
            lines.append(
                f"| {target} | {shape.name} | {timed} | {timing.rate:,.0f} "
                f"| {_ms(timing.percentile(0.5)):.1f} | {_ms(timing.percentile(0.99)):.1f} "
                f"| {_ms(_max(timing)):.1f} | {rate:.2f} | {p99:.2f} | {run.machine_busy:.0%} "
                f"| {run.server_cpu_ms_per_turn:.2f} | {timing.errors} |"
            )
    return "\n".join(lines)


def _checks(runs: Sequence[Run]) -> list[str]:
    lines = []
    for run in runs:
        where = f"{run.target}, {run.shape.name}, {run.database}"
        if run.timing.errors:
            kinds = Counter(run.timing.failures).most_common()
            failed = ", ".join(f"{kind} ×{count}" for kind, count in kinds)
            lines.append(f"- {where}: {run.timing.errors} requests FAILED ({failed})")
        if run.check is not None:
            lines.append(f"- {where}: {run.check.describe()}")
        if run.delivery is not None:
            lines.append(
                f"- {where}: {run.delivery.describe()}; `dibot worker` used "
                f"{run.worker_cpu_seconds:.2f} s of CPU during the timed run"
            )
    return lines


def render(runs: Sequence[Run], sizes: Sizes) -> str:
    databases = list(dict.fromkeys(run.database for run in runs))
    parts = [
        f"`dibot serve` and the ceiling (`bench.ceiling_app`, constant TwiML) under the same "
        f"gunicorn server with {WORKERS} workers on 127.0.0.1, on a {_cpus()}-CPU machine that "
        "also runs the load client. Closed: "
        f"{IN_FLIGHT} requests in flight for up to {sizes.seconds:g} s or {sizes.requests:,} "
        f"requests; paced: {PACED_RATE:.0f} requests a second for {sizes.seconds:g} s with up to "
        f"{PACED_IN_FLIGHT} in flight, each latency from the request's due time. Telegram runs "
        f"send at most {sizes.telegram_requests:,} updates (their replies leave at Telegram's "
        "30 a second) while a `dibot worker` sends the replies; its CPU is not in the server's. "
        "Each run starts on a freshly migrated database; timed counts exclude one warm-up "
        "request per slot. Ratios are to the ceiling in the same shape and pass.",
        *(_table(runs, database) for database in databases),
        "Checks after each run (every answer stored once, every message once in the inbox, "
        "every Telegram reply sent once and in order):",
        "\n".join(_checks(runs)),
    ]
    return "\n\n".join(parts)


def _cpus() -> int:
    return os.cpu_count() or 1


def raw(runs: Sequence[Run], sizes: Sizes) -> dict[str, Any]:
    def one(run: Run) -> dict[str, Any]:
        timing = run.timing
        return {
            "target": run.target,
            "shape": run.shape.key,
            "in_flight": run.shape.in_flight,
            "rate_offered": run.shape.rate,
            "database": run.database,
            "timed": timing.count,
            "planned": run.planned,
            "elapsed_s": timing.elapsed,
            "turns_per_s": timing.rate,
            "p50_ms": _ms(timing.percentile(0.5)),
            "p99_ms": _ms(timing.percentile(0.99)),
            "max_ms": _ms(_max(timing)),
            "failed": timing.errors,
            "failures": dict(Counter(timing.failures)),
            "machine_busy": run.machine_busy,
            "server_cpu_s": run.server_cpu_seconds,
            "server_cpu_ms_per_turn": run.server_cpu_ms_per_turn,
            "worker_cpu_s": run.worker_cpu_seconds,
            "check": asdict(run.check) if run.check else None,
            "delivery": asdict(run.delivery) if run.delivery else None,
            "ok": run.ok,
        }

    return {"cpus": _cpus(), "sizes": asdict(sizes), "runs": [one(run) for run in runs]}


def _progress(text: str) -> None:
    print(f"bench.serve_load: {text}", file=sys.stderr, flush=True)


def section(
    *,
    postgresql_url: str | None,
    seconds: float = DEFAULT_SECONDS,
    requests: int = DEFAULT_REQUESTS,
    telegram_requests: int = DEFAULT_TELEGRAM_REQUESTS,
    progress: Callable[[str], None] = _progress,
) -> Section:
    """The "turns" stage of `make bench`: every run, its tables, raw numbers and goals."""
    from bench.serve_runs import measure
    from dibot.config import Config
    from dibot.runtime import load_configured_flow

    sizes = Sizes(seconds, requests, telegram_requests)
    flow = load_configured_flow(Config())  # the flow `dibot serve` loads unconfigured
    with tempfile.TemporaryDirectory(prefix="dibot-bench-serve-") as workdir:
        runs = measure(flow, postgresql_url, sizes, Path(workdir), progress)
    return Section(
        key="turns",
        title="Turns over HTTP",
        markdown=render(runs, sizes),
        raw=raw(runs, sizes),
        goals=goals(runs),
        ok=all(run.ok for run in runs),
    )


# --- the command ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serve_load", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--database-url",
        help=f"a PostgreSQL database to measure too, inside schema {SCRATCH_SCHEMA} "
        "(default: $DIBOT_DATABASE_URL when it names PostgreSQL)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help=f"time limit of each timed run (default {DEFAULT_SECONDS:g})",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=DEFAULT_REQUESTS,
        help=f"the most requests a run sends (default {DEFAULT_REQUESTS:,})",
    )
    parser.add_argument(
        "--telegram-requests",
        type=int,
        default=DEFAULT_TELEGRAM_REQUESTS,
        help=f"the most updates a Telegram run sends (default {DEFAULT_TELEGRAM_REQUESTS})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from sqlalchemy.exc import OperationalError

    from bench.turns import measured_postgresql_url

    arguments = _parser().parse_args(argv)
    try:
        if arguments.seconds <= 0 or min(arguments.requests, arguments.telegram_requests) < 1:
            raise ValueError("--seconds, --requests and --telegram-requests must be positive")
        postgresql_url = measured_postgresql_url(arguments.database_url)
    except ValueError as error:
        print(f"bench.serve_load: {error}", file=sys.stderr)
        return 2
    try:
        result = section(
            postgresql_url=postgresql_url,
            seconds=arguments.seconds,
            requests=arguments.requests,
            telegram_requests=arguments.telegram_requests,
        )
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        print(f"bench.serve_load: cannot use the database: {reason}", file=sys.stderr)
        return 2
    print(f"## {result.title}\n\n{result.markdown}\n\n{goals_table(result.goals)}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
