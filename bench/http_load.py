"""A real `dibot serve` on 127.0.0.1, a load client for it, and its workers' memory.

The rules it keeps: every byte goes to 127.0.0.1 only; requests are built (and signed) before
the clock starts, so the client only sends and reads; each in-flight slot is one thread with
one `http.client` connection that sends its requests in order, so one respondent's messages
never overtake each other; a load is bounded both in count and in time. Client processes are
spawned (never forked from a process holding database connections) and this module imports
only the standard library, so they start quickly.

Two shapes of load: closed (`run_load`: each slot sends its next request as soon as the last
is answered, so the server sets the pace and the rate measured is its throughput) and open
(`run_load(..., rate=R)`: request k of the whole run is due at k/R seconds after the start,
slot k % slots sends it, and its latency runs from when it was due, not from when it was sent,
so a request that waited for its slot to come free counts that wait, as a resident's would).
"""

from __future__ import annotations

import http.client
import math
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from storage.privacy import KEY_VARIABLE

HOST = "127.0.0.1"
WORKERS = 2
STARTUP_LIMIT_SECONDS = 60
STOP_LIMIT_SECONDS = 30
REQUEST_TIMEOUT_SECONDS = 30
OVERRUN_FACTOR = 2.0
"""An open load sends nothing later than this many times its `seconds` after the start."""
CLIENT_PROCESSES = 4
"""The in-flight slots are spread over this many processes, so that one client's GIL is not
what limits the server."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SlotResult:
    """What one in-flight slot did."""

    sent: int
    """Requests sent, the untimed warm-up included."""
    latencies: tuple[float, ...]
    """Seconds per timed request, in order."""
    failures: tuple[str, ...]
    """What went wrong with each failed request ("HTTP 500", "ConnectionResetError")."""
    finished: float
    """`time.monotonic()` when the slot sent its last request."""


@dataclass(frozen=True)
class Timing:
    """How long each timed request (or turn) took, and the whole run."""

    latencies: tuple[float, ...]
    """Seconds per timed request, in order."""
    elapsed: float
    failures: tuple[str, ...] = ()

    @property
    def errors(self) -> int:
        return len(self.failures)

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile of the latencies, in seconds (0 when there are none)."""
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass(frozen=True)
class LoadResult:
    slots: tuple[SlotResult, ...]
    timing: Timing
    """All slots' timed requests; elapsed from the start signal to the last response."""
    machine_busy: float = 0.0
    """The machine's CPUs' busy share (0 to 1) from the start signal until every slot was done:
    the server's work, the load client's and anything else running."""
    cpu_seconds: tuple[float, ...] = ()
    """CPU seconds each watched process (and its children) used over the same time."""


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    rss_kib: int
    """VmRSS: resident now."""
    peak_kib: int
    """VmHWM: the most it was ever resident."""


@dataclass(frozen=True)
class Server:
    port: int
    pid: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _dibot_command() -> list[str]:
    script = shutil.which("dibot", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "dibot.cli"]


def dibot_environment(database_url: str, settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its DIBOT_ variables, plus the database URL (with its
    encryption key, `DIBOT_PRIVACY_ENCRYPTION_KEY`, if set) and `settings`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIBOT_")}
    if KEY_VARIABLE in os.environ:  # the database's encryption key goes with its URL
        environment[KEY_VARIABLE] = os.environ[KEY_VARIABLE]
    environment.update(DIBOT_DATABASE_URL=database_url, **settings)
    return environment


@contextmanager
def serving(
    database_url: str,
    workdir: Path,
    settings: Mapping[str, str],
    command: Sequence[str] | None = None,
) -> Iterator[Server]:
    """`dibot serve` with WORKERS sync workers on a free port, healthy before the block runs
    and stopped after it. Only `settings` and the database URL (with its encryption key,
    `DIBOT_PRIVACY_ENCRYPTION_KEY`, if set) configure it: the caller's other DIBOT_ variables
    are left out, and `workdir` holds no config.toml. `command`, if given, is run instead of
    `dibot serve`, configured the same way (the ceiling app)."""
    port = free_port()
    environment = dibot_environment(
        database_url,
        {
            "DIBOT_SERVER_HOST": HOST,
            "DIBOT_SERVER_PORT": str(port),
            "DIBOT_SERVER_WORKERS": str(WORKERS),
            **settings,
        },
    )
    log_path = workdir / f"serve-{port}.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            list(command) if command is not None else [*_dibot_command(), "serve"],
            cwd=workdir,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    try:
        if not _wait_for_health(port, server):
            name = "dibot serve" if command is None else " ".join(command)
            raise RuntimeError(f"{name} did not become healthy; see {log_path}")
        yield Server(port=port, pid=server.pid)
    finally:
        _stop(server)


@contextmanager
def working(database_url: str, workdir: Path, settings: Mapping[str, str]) -> Iterator[int]:
    """`dibot worker` (its pid), configured as `serving` configures `dibot serve`, until the
    block ends; then stopped with SIGTERM (between rows) and waited for."""
    descriptor, _ = tempfile.mkstemp(prefix="worker-", suffix=".log", dir=workdir)
    with os.fdopen(descriptor, "w") as log:
        worker = subprocess.Popen(
            [*_dibot_command(), "worker"],
            cwd=workdir,
            env=dibot_environment(database_url, settings),
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    try:
        yield worker.pid
    finally:
        _stop(worker)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_LIMIT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_for_health(port: int, server: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=5) as response:
                status: int = response.status
                return status == 200
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    return False


def worker_memory(server_pid: int) -> tuple[ProcessMemory, ...]:
    """VmRSS and VmHWM of every child of the gunicorn master `server_pid` (its workers)."""
    children = [pid for pid in _pids() if _parent(pid) == server_pid]
    return tuple(memory for pid in sorted(children) if (memory := process_memory(pid)) is not None)


def _pids() -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ")".
    return int(stat.rsplit(")", 1)[1].split()[1])


def process_memory(pid: int) -> ProcessMemory | None:
    """VmRSS and VmHWM from /proc/`pid`/status; None once the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return ProcessMemory(
        pid=pid,
        rss_kib=int(fields["VmRSS"].split()[0]),
        peak_kib=int(fields["VmHWM"].split()[0]),
    )


@dataclass(frozen=True)
class CpuTimes:
    """The whole machine's CPU time since boot, from /proc/stat, in clock ticks."""

    busy: int
    total: int

    def busy_share(self, later: CpuTimes) -> float:
        """How busy the machine's CPUs were (0 to 1) between this and `later`."""
        total = later.total - self.total
        return (later.busy - self.busy) / total if total > 0 else 0.0


def machine_cpu() -> CpuTimes:
    """All CPUs together: busy is everything but idle and waiting for I/O."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])  # user … steal; guest time is counted in user already
    return CpuTimes(busy=total - idle, total=total)


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used by process `pid` and its children: those still running and those
    already reaped (a gunicorn master and its workers, recycled ones included)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = _cpu_ticks(pid) + sum(_cpu_ticks(child) for child in _pids() if _parent(child) == pid)
    return used / ticks


def _cpu_ticks(pid: int) -> int:
    """utime + stime of `pid`, plus cutime + cstime (its children waited for)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat.rsplit(")", 1)[1].split()
    # After "pid (comm)": state is field 0, utime 11, stime 12, cutime 13, cstime 14.
    return sum(int(value) for value in fields[11:15])


def run_load(
    port: int,
    slots: Sequence[Sequence[Request]],
    *,
    warmup: int,
    seconds: float,
    rate: float | None = None,
    watch: Sequence[int] = (),
) -> LoadResult:
    """Send each slot's requests in order, all slots at once: the first `warmup` of each slot
    untimed, then the rest until done or until `seconds` have passed.

    Closed (no `rate`): each slot sends as soon as its last request was answered. Open (`rate`
    requests a second): the k-th timed request of slot s is due at (k * len(slots) + s) / rate
    seconds after the start, so the slots take turns; a slot still busy when its next request
    is due sends it as soon as it is free, and every latency runs from the request's due time.
    Requests due after `seconds` are not sent, nor any after OVERRUN_FACTOR × `seconds` (a
    server far slower than the rate leaves the rest unsent: fewer timed than due). The CPU
    time of the processes in `watch` (a server's pid, say) is measured from the start signal
    until every slot is done."""
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive")
    context = multiprocessing.get_context("spawn")
    processes = min(CLIENT_PROCESSES, len(slots))
    groups = [list(slots[index::processes]) for index in range(processes)]
    schedule = Schedule(rate, len(slots)) if rate is not None else None
    start = context.Barrier(processes + 1)
    results: Queue[tuple[int, list[SlotResult]]] = context.Queue()
    clients = [
        context.Process(
            target=client_process,
            args=(index, port, group, warmup, seconds, start, results),
            kwargs={"schedule": schedule, "positions": list(range(index, len(slots), processes))},
            daemon=True,
        )
        for index, group in enumerate(groups)
    ]
    for client in clients:
        client.start()
    try:
        start.wait(timeout=STARTUP_LIMIT_SECONDS + REQUEST_TIMEOUT_SECONDS * warmup)
        started = time.monotonic()
        cpu_before = machine_cpu(), [tree_cpu_seconds(pid) for pid in watch]
        by_group = dict(
            results.get(timeout=seconds + STARTUP_LIMIT_SECONDS + REQUEST_TIMEOUT_SECONDS)
            for _ in clients
        )
        cpu_after = machine_cpu(), [tree_cpu_seconds(pid) for pid in watch]
    finally:
        stop_clients(clients, results)
    ordered, timing = slots_in_order(by_group, len(slots), processes, started)
    return LoadResult(
        slots=ordered,
        timing=timing,
        machine_busy=cpu_before[0].busy_share(cpu_after[0]),
        cpu_seconds=tuple(
            after - before for before, after in zip(cpu_before[1], cpu_after[1], strict=True)
        ),
    )


@dataclass(frozen=True)
class Schedule:
    """An open load's pacing: `rate` requests a second in all, the slots taking turns."""

    rate: float
    slots: int

    def due(self, slot: int, number: int) -> float:
        """Seconds after the start at which the slot's `number`-th timed request is due."""
        return (number * self.slots + slot) / self.rate


def stop_clients(clients: Sequence[BaseProcess], results: Queue[Any]) -> None:
    """Join the load client processes (killing one that hangs) and close their queue."""
    for client in clients:
        client.join(timeout=STOP_LIMIT_SECONDS)
        if client.is_alive():
            client.kill()
            client.join()
        client.close()
    results.close()
    results.join_thread()


def slots_in_order(
    by_group: Mapping[int, Sequence[SlotResult]], slots: int, processes: int, started: float
) -> tuple[tuple[SlotResult, ...], Timing]:
    """Each slot's result in slot order (slot k ran in process k % processes), and their timed
    requests together, elapsed from `started` to the last slot's last request."""
    ordered = tuple(by_group[index % processes][index // processes] for index in range(slots))
    finished = max((slot.finished for slot in ordered), default=started)
    timing = Timing(
        latencies=tuple(latency for slot in ordered for latency in slot.latencies),
        elapsed=max(finished - started, 0.0),
        failures=tuple(failure for slot in ordered for failure in slot.failures),
    )
    return ordered, timing


def client_process(
    index: int,
    port: int,
    slots: list[list[Request]],
    warmup: int,
    seconds: float,
    start: Barrier,
    results: Queue[tuple[int, list[SlotResult]]],
    *,
    schedule: Schedule | None = None,
    positions: list[int] | None = None,
) -> None:
    """One client process: a thread per slot; all warm up, then wait for the common start.
    `positions`: each slot's place among all the run's slots (for the schedule)."""
    ready = threading.Barrier(len(slots) + 1)
    go = threading.Event()
    began_at = [0.0]
    deadline = [math.inf]
    outcome: list[SlotResult] = [SlotResult(0, (), (), 0.0)] * len(slots)
    places = positions if positions is not None else list(range(len(slots)))

    def drive(position: int, requests: list[Request]) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)
        failures = [_exchange(connection, request) for request in requests[:warmup]]
        ready.wait()
        go.wait()
        sent, latencies = min(warmup, len(requests)), []
        for number, request in enumerate(requests[warmup:]):
            if schedule is None:
                if time.monotonic() >= deadline[0]:
                    break
                began = time.perf_counter()
                failures.append(_exchange(connection, request))
                latencies.append(time.perf_counter() - began)
            else:
                offset = schedule.due(places[position], number)
                late = time.monotonic() - began_at[0] >= seconds * OVERRUN_FACTOR
                if offset >= seconds or late:
                    break
                due = began_at[0] + offset
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                failures.append(_exchange(connection, request))
                latencies.append(time.monotonic() - due)
            sent += 1
        connection.close()
        failed = tuple(failure for failure in failures if failure is not None)
        outcome[position] = SlotResult(sent, tuple(latencies), failed, time.monotonic())

    threads = [
        threading.Thread(target=drive, args=(position, requests))
        for position, requests in enumerate(slots)
    ]
    for thread in threads:
        thread.start()
    ready.wait(timeout=STARTUP_LIMIT_SECONDS + REQUEST_TIMEOUT_SECONDS * warmup)
    start.wait(timeout=STARTUP_LIMIT_SECONDS)
    began_at[0] = time.monotonic()
    deadline[0] = began_at[0] + seconds
    go.set()
    for thread in threads:
        thread.join()
    results.put((index, outcome))


def _exchange(connection: http.client.HTTPConnection, request: Request) -> str | None:
    """One request and its whole response: None for a 200, else what went wrong. The
    connection is kept alive where the server allows (gunicorn's sync workers close it after
    each reply, and http.client then reconnects by itself)."""
    try:
        connection.request(request.method, request.path, request.body, dict(request.headers))
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as error:
        connection.close()
        return type(error).__name__
    return None if response.status == 200 else f"HTTP {response.status}"
