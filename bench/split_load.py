"""A load client for several `dibot serve` nodes: each request goes to the node it names.

The rules it keeps: every byte goes to 127.0.0.1 only; requests are built (and signed) before
the clock starts, so the client only sends and reads; each in-flight slot is one thread that
sends its requests strictly one after another, the next only once the last was answered, so
one respondent's messages never overtake each other even when consecutive ones go to different
nodes (the slot holds one connection per node); a load is bounded both in count and in time.
Client processes are spawned (never forked from a process holding database connections); this
module imports only the standard library and `bench.http_load`'s shapes and limits.
"""

from __future__ import annotations

import http.client
import math
import multiprocessing
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from bench.http_load import (
    CLIENT_PROCESSES,
    HOST,
    REQUEST_TIMEOUT_SECONDS,
    STARTUP_LIMIT_SECONDS,
    LoadResult,
    Request,
    SlotResult,
    slots_in_order,
    stop_clients,
)


@dataclass(frozen=True)
class Routed:
    """A request and the node (an index into the ports) it goes to."""

    node: int
    request: Request


@dataclass(frozen=True)
class Answer:
    """A whole response, or what went wrong instead."""

    status: int
    body: bytes
    failure: str | None = None


def run_split_load(
    ports: Sequence[int], slots: Sequence[Sequence[Routed]], *, warmup: int, seconds: float
) -> LoadResult:
    """Send each slot's requests in order, each to its node's port, all slots at once: the
    first `warmup` of each slot untimed, then the rest until done or `seconds` have passed."""
    context = multiprocessing.get_context("spawn")
    processes = min(CLIENT_PROCESSES, len(slots))
    groups = [list(slots[index::processes]) for index in range(processes)]
    start = context.Barrier(processes + 1)
    results: Queue[tuple[int, list[SlotResult]]] = context.Queue()
    clients = [
        context.Process(
            target=client_process,
            args=(index, tuple(ports), group, warmup, seconds, start, results),
            daemon=True,
        )
        for index, group in enumerate(groups)
    ]
    for client in clients:
        client.start()
    try:
        start.wait(timeout=STARTUP_LIMIT_SECONDS + REQUEST_TIMEOUT_SECONDS * warmup)
        started = time.monotonic()
        by_group = dict(
            results.get(timeout=seconds + STARTUP_LIMIT_SECONDS + REQUEST_TIMEOUT_SECONDS)
            for _ in clients
        )
    finally:
        stop_clients(clients, results)
    ordered, timing = slots_in_order(by_group, len(slots), processes, started)
    return LoadResult(slots=ordered, timing=timing)


def client_process(
    index: int,
    ports: tuple[int, ...],
    slots: list[list[Routed]],
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

    def drive(position: int, requests: list[Routed]) -> None:
        connections = [
            http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)
            for port in ports
        ]
        failures = [
            _exchange(connections[routed.node], routed.request).failure
            for routed in requests[:warmup]
        ]
        ready.wait()
        go.wait()
        sent, latencies = min(warmup, len(requests)), []
        for routed in requests[warmup:]:
            if time.monotonic() >= deadline[0]:
                break
            began = time.perf_counter()
            failures.append(_exchange(connections[routed.node], routed.request).failure)
            latencies.append(time.perf_counter() - began)
            sent += 1
        for connection in connections:
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


def at_once(ports: Sequence[int], request: Request) -> tuple[Answer, ...]:
    """The same request sent to every port at the same moment (a provider's retry landing on
    another node while the first delivery is still being answered); the answers in port order."""
    answers: list[Answer] = [Answer(0, b"", "not sent")] * len(ports)
    together = threading.Barrier(len(ports))

    def send(position: int, port: int) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)
        connection.connect()  # connected first, so the requests leave as close together as can be
        together.wait(timeout=REQUEST_TIMEOUT_SECONDS)
        answers[position] = _exchange(connection, request)
        connection.close()

    threads = [
        threading.Thread(target=send, args=(position, port)) for position, port in enumerate(ports)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tuple(answers)


def _exchange(connection: http.client.HTTPConnection, request: Request) -> Answer:
    """One request and its whole response; a failure is anything but a 200, named."""
    try:
        connection.request(request.method, request.path, request.body, dict(request.headers))
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        connection.close()
        return Answer(0, b"", type(error).__name__)
    failure = None if response.status == 200 else f"HTTP {response.status}"
    return Answer(response.status, body, failure)
