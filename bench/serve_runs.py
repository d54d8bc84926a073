"""The runs of `bench.serve_load`: each target served, loaded and checked on a fresh database.

The rule it keeps: a run owns everything it starts (a database, a server, a worker, a fake Bot
API) and stops it before the next run begins, so no run's processes or rows colour another's;
the database is checked only once the server (and the worker) have stopped, so what is counted
is what stayed. Kept apart from `bench.serve_load`, which the load client's processes import
again as their main module, so that they start without this module's imports.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bench.ceiling_app
from bench import telegram_load
from bench.http_load import LoadResult, Request, Server, run_load, serving, working
from bench.serve_load import (
    CEILING,
    SCRATCH_SCHEMA,
    SHAPES,
    SMS,
    TELEGRAM,
    WARMUP,
    Run,
    Shape,
    Sizes,
)
from bench.turns import (
    TOKEN,
    IntegrityCheck,
    Message,
    fresh_database,
    plan,
    signed_webhook,
    verify_channel,
)
from channels import telegram, twilio_sms
from flows.model import Flow

# --- the work ------------------------------------------------------------------------------


def _total(shape: Shape, sizes: Sizes, cap: int) -> int:
    """Requests to plan for one run: the timed ones (a closed run's cap, or what an open
    run's rate sends in its time) and every slot's warm-up."""
    timed = cap if shape.rate is None else min(cap, math.ceil(shape.rate * sizes.seconds))
    return timed + WARMUP * shape.in_flight


# --- the runs ------------------------------------------------------------------------------


def _load(
    server: Server, requests: Sequence[Sequence[Request]], shape: Shape, seconds: float
) -> LoadResult:
    return run_load(
        server.port, requests, warmup=WARMUP, seconds=seconds, rate=shape.rate, watch=[server.pid]
    )


def measured_run(
    target: str,
    shape: Shape,
    database: str,
    slots: Sequence[Sequence[Any]],
    result: LoadResult,
    check: IntegrityCheck | None = None,
    delivery: telegram_load.Delivery | None = None,
) -> Run:
    """A run from its load, which watched the server (and the worker, for Telegram)."""
    server_cpu, *worker_cpu = result.cpu_seconds
    planned = sum(max(0, len(slot) - WARMUP) for slot in slots)
    return Run(
        target,
        shape,
        database,
        result.timing,
        result.machine_busy,
        server_cpu,
        worker_cpu[0] if worker_cpu else 0.0,
        check,
        delivery,
        planned,
    )


def _sent(slots: Sequence[Sequence[Any]], result: LoadResult) -> list[Any]:
    return [m for slot, done in zip(slots, result.slots, strict=True) for m in slot[: done.sent]]


def ceiling_runs(
    database: str,
    sms_plans: dict[str, tuple[tuple[Message, ...], ...]],
    sizes: Sizes,
    workdir: Path,
) -> list[Run]:
    """The ceiling app under `dibot serve`'s server, sent the SMS runs' own requests."""
    command = [sys.executable, "-m", "bench.ceiling_app"]
    # The project's root on the path: `bench` is not installed, and the server runs in workdir.
    root = str(Path(bench.ceiling_app.__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    runs = []
    with serving("sqlite://", workdir, {"PYTHONPATH": path}, command=command) as server:
        for shape in SHAPES:
            requests = [
                [signed_webhook(server.port, m) for m in slot] for slot in sms_plans[shape.key]
            ]
            result = _load(server, requests, shape, sizes.seconds)
            runs.append(measured_run(CEILING, shape, database, sms_plans[shape.key], result))
    return runs


def sms_run(
    database: str,
    url: str | None,
    slots: tuple[tuple[Message, ...], ...],
    shape: Shape,
    sizes: Sizes,
    workdir: Path,
) -> Run:
    with fresh_database(url, workdir, f"sms-{shape.key}", schema=SCRATCH_SCHEMA) as ready:
        with serving(ready, workdir, {"DIBOT_TWILIO_AUTH_TOKEN": TOKEN}) as server:
            requests = [[signed_webhook(server.port, m) for m in slot] for slot in slots]
            result = _load(server, requests, shape, sizes.seconds)
        sent = _sent(slots, result)
        check = verify_channel(ready, twilio_sms.CHANNEL, [(m.message_id, m.answers) for m in sent])
    return measured_run(SMS, shape, database, slots, result, check)


def telegram_run(
    database: str,
    url: str | None,
    slots: tuple[tuple[telegram_load.Update, ...], ...],
    shape: Shape,
    sizes: Sizes,
    workdir: Path,
) -> Run:
    """The updates through the webhook while a `dibot worker` sends the replies to a fake Bot
    API; after the load, the worker's drain is waited for (bounded) and every reply checked."""
    with (
        telegram_load.fake_bot_api() as fake,
        fresh_database(url, workdir, f"telegram-{shape.key}", schema=SCRATCH_SCHEMA) as ready,
    ):
        configured = telegram_load.settings(fake)
        with (
            serving(ready, workdir, configured) as server,
            working(ready, workdir, configured) as worker,
        ):
            requests = [[telegram_load.request(update) for update in slot] for slot in slots]
            result = run_load(
                server.port,
                requests,
                warmup=WARMUP,
                seconds=sizes.seconds,
                rate=shape.rate,
                watch=[server.pid, worker],
            )
            sent: list[telegram_load.Update] = _sent(slots, result)
            expected: dict[int, list[str]] = defaultdict(list)
            for update in sent:
                expected[update.chat_id].extend(update.replies)
            delivery = telegram_load.drain(fake, expected)
        check = verify_channel(ready, telegram.CHANNEL, [(u.message_id, u.answers) for u in sent])
    return measured_run(TELEGRAM, shape, database, slots, result, check, delivery)


def measure(
    flow: Flow,
    postgresql_url: str | None,
    sizes: Sizes,
    workdir: Path,
    progress: Callable[[str], None],
) -> list[Run]:
    """Every target in every shape on every database; the plans are made once (fresh
    databases let each run use the same respondents)."""
    databases: dict[str, str | None] = {"SQLite": None}
    if postgresql_url is not None:
        databases["PostgreSQL"] = postgresql_url
    sms_plans = {
        shape.key: plan(flow, _total(shape, sizes, sizes.requests), shape.in_flight)
        for shape in SHAPES
    }
    telegram_plans = {
        shape.key: telegram_load.plan(
            flow, _total(shape, sizes, sizes.telegram_requests), shape.in_flight
        )
        for shape in SHAPES
    }
    runs: list[Run] = []
    for database, url in databases.items():
        _timed(
            runs,
            progress,
            f"the ceiling, {database} pass",
            ceiling_runs,
            database,
            sms_plans,
            sizes,
            workdir,
        )
        for shape in SHAPES:
            label = f"SMS, {shape.name}, {database}"
            _timed(
                runs,
                progress,
                label,
                sms_run,
                database,
                url,
                sms_plans[shape.key],
                shape,
                sizes,
                workdir,
            )
        for shape in SHAPES:
            label = f"Telegram, {shape.name}, {database}"
            _timed(
                runs,
                progress,
                label,
                telegram_run,
                database,
                url,
                telegram_plans[shape.key],
                shape,
                sizes,
                workdir,
            )
    return runs


def _timed(
    runs: list[Run],
    progress: Callable[[str], None],
    label: str,
    take: Callable[..., Run | list[Run]],
    *arguments: Any,
) -> None:
    """Take the run (or runs), saying what it was and how long it took, start-up included."""
    progress(label)
    began = time.monotonic()
    taken = take(*arguments)
    done = taken if isinstance(taken, list) else [taken]
    runs.extend(done)
    counts = ", ".join(f"{run.timing.count:,} timed in {run.timing.elapsed:.1f} s" for run in done)
    progress(f"{label}: {counts} ({time.monotonic() - began:.0f} s in all)")
