"""A real `dibot serve` on 127.0.0.1, a load client for it, and its workers' memory.

The rules it keeps: every byte goes to 127.0.0.1 only; requests are built (and signed) before
the clock starts, so the client only sends and reads; each in-flight slot is one thread with
one `http.client` connection that sends its requests in order, so one respondent's messages
never overtake each other; a load is bounded both in count and in time. Client processes are
spawned (never forked from a process holding database connections) and this module imports
only the standard library, so they start quickly.
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
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from storage.privacy import KEY_VARIABLE

HOST = "127.0.0.1"
WORKERS = 2
STARTUP_LIMIT_SECONDS = 60
STOP_LIMIT_SECONDS = 30
REQUEST_TIMEOUT_SECONDS = 30
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


@contextmanager
def serving(database_url: str, workdir: Path, settings: Mapping[str, str]) -> Iterator[Server]:
    """`dibot serve` with WORKERS sync workers on a free port, healthy before the block runs
    and stopped after it. Only `settings` and the database URL (with its encryption key,
    `DIBOT_PRIVACY_ENCRYPTION_KEY`, if set) configure it: the caller's other DIBOT_ variables
    are left out, and `workdir` holds no config.toml."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIBOT_")}
    if KEY_VARIABLE in os.environ:  # the database's encryption key goes with its URL
        environment[KEY_VARIABLE] = os.environ[KEY_VARIABLE]
    environment.update(
        DIBOT_SERVER_HOST=HOST,
        DIBOT_SERVER_PORT=str(port),
        DIBOT_SERVER_WORKERS=str(WORKERS),
        DIBOT_DATABASE_URL=database_url,
        **settings,
    )
    log_path = workdir / f"serve-{port}.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [*_dibot_command(), "serve"],
            cwd=workdir,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    try:
        if not _wait_for_health(port, server):
            raise RuntimeError(f"dibot serve did not become healthy; see {log_path}")
        yield Server(port=port, pid=server.pid)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=STOP_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


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


def run_load(
    port: int, slots: Sequence[Sequence[Request]], *, warmup: int, seconds: float
) -> LoadResult:
    """Send each slot's requests in order, all slots at once: the first `warmup` of each slot
    untimed, then the rest until done or until `seconds` have passed."""
    context = multiprocessing.get_context("spawn")
    processes = min(CLIENT_PROCESSES, len(slots))
    groups = [list(slots[index::processes]) for index in range(processes)]
    start = context.Barrier(processes + 1)
    results: Queue[tuple[int, list[SlotResult]]] = context.Queue()
    clients = [
        context.Process(
            target=client_process,
            args=(index, port, group, warmup, seconds, start, results),
            daemon=True,
        )
        for index, group in enumerate(groups)
    ]
    for client in clients:
        client.start()
    try:
        start.wait(timeout=STARTUP_LIMIT_SECONDS)
        started = time.monotonic()
        by_group = dict(
            results.get(timeout=seconds + STARTUP_LIMIT_SECONDS + REQUEST_TIMEOUT_SECONDS)
            for _ in clients
        )
    finally:
        for client in clients:
            client.join(timeout=STOP_LIMIT_SECONDS)
            if client.is_alive():
                client.kill()
                client.join()
            client.close()
        results.close()
        results.join_thread()
    ordered = [by_group[index % processes][index // processes] for index in range(len(slots))]
    finished = max((slot.finished for slot in ordered), default=started)
    timing = Timing(
        latencies=tuple(latency for slot in ordered for latency in slot.latencies),
        elapsed=max(finished - started, 0.0),
        failures=tuple(failure for slot in ordered for failure in slot.failures),
    )
    return LoadResult(slots=tuple(ordered), timing=timing)


def client_process(
    index: int,
    port: int,
    slots: list[list[Request]],
    warmup: int,
    seconds: float,
    start: Barrier,
    results: Queue[tuple[int, list[SlotResult]]],
) -> None:
    """One client process: a thread per slot; all warm up, then wait for the common start."""
    ready = threading.Barrier(len(slots) + 1)
    go = threading.Event()
    deadline = [math.inf]
    outcome: list[SlotResult] = [SlotResult(0, (), (), 0.0)] * len(slots)

    def drive(position: int, requests: list[Request]) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)
        failures = [_exchange(connection, request) for request in requests[:warmup]]
        ready.wait()
        go.wait()
        sent, latencies = min(warmup, len(requests)), []
        for request in requests[warmup:]:
            if time.monotonic() >= deadline[0]:
                break
            began = time.perf_counter()
            failures.append(_exchange(connection, request))
            latencies.append(time.perf_counter() - began)
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
    deadline[0] = time.monotonic() + seconds
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
