"""Serving under misbehaving clients: dozens of slow or idle connections never take `dibot serve`
away from everyone else (the bar's item 10b), and every request is bounded in size and time.

A real `dibot serve` (2 workers) on a free 127.0.0.1 port holds 50 connections that send their
body a byte a second, send half their headers, or send nothing, while /healthz and signed
Twilio webhooks must each be answered within `ANSWER_LIMIT_SECONDS`; an oversized body gets 413
at once; a request not whole within `REQUEST_TIMEOUT_SECONDS` is dropped (408, or closed if it
sent nothing). Worker recycling and a clean SIGTERM are checked on the same workers with a
small WSGI app. Runs on SQLite, or on PostgreSQL when DIBOT_DATABASE_URL names it. Every wait is
bounded; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
from twilio.request_validator import RequestValidator

from dibot.cli import gunicorn_server
from dibot.config import Config
from dibot.serving import (
    MAX_BODY_BYTES,
    MAX_HEAD_BYTES,
    MAX_REQUESTS,
    REQUEST_TIMEOUT_SECONDS,
    BufferingWorker,
    Framing,
    Refused,
    frame,
)
from tests.processes import (
    STOP_LIMIT_SECONDS,
    environment,
    free_port,
    running,
    serving,
)

HOST = "127.0.0.1"
TOKEN = "serving-token-not-a-secret"
ANSWER_LIMIT_SECONDS = 5.0
SLOW_CLIENTS = 50
CLOSE_SLACK_SECONDS = 4.0
"""How long after REQUEST_TIMEOUT_SECONDS a dropped connection may take to be seen closed."""
SLOW_BODY = (
    b"POST /webhooks/twilio/sms HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
)
HALF_HEADERS = b"POST /webhooks/twilio/sms HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"


# The framing rule, alone -------------------------------------------------------------------


def test_a_head_not_yet_ended_is_not_framed() -> None:
    assert frame(b"GET /healthz HTTP/1.1\r\nHost: x\r\n") is None


def test_a_request_ends_after_its_content_length() -> None:
    head = b"POST /x HTTP/1.1\r\nHost: x\r\ncontent-length:  12 \r\n\r\n"
    assert frame(head + b"abc") == Framing(len(head), 12, expects_continue=False)
    assert frame(b"GET / HTTP/1.0\r\n\r\n") == Framing(18, 0, expects_continue=False)


def test_expect_100_continue_is_noted_for_http_11_bodies_only() -> None:
    expect = b"Expect: 100-Continue\r\nContent-Length: 5\r\n\r\n"
    framing = frame(b"POST /x HTTP/1.1\r\n" + expect)
    assert framing is not None
    assert framing.expects_continue
    old = frame(b"POST /x HTTP/1.0\r\n" + expect)
    assert old is not None
    assert not old.expects_continue


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (f"POST /x HTTP/1.1\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode(), 413),
        (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
        (b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
        (b"POST /x HTTP/1.1\r\nContent-Length: -3\r\n\r\n", 400),
        (b"POST /x HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_BYTES, 431),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n", 431),
    ],
    ids=["too-large", "chunked", "two-lengths", "negative", "hex", "endless-head", "long-head"],
)
def test_requests_that_will_not_be_read_are_refused(request_bytes: bytes, status: int) -> None:
    with pytest.raises(Refused) as refused:
        frame(request_bytes)
    assert refused.value.status == status


def test_serve_uses_the_buffering_workers_and_recycles_them() -> None:
    settings = gunicorn_server(Config(), app=None).cfg
    assert settings.worker_class is BufferingWorker
    assert settings.max_requests == MAX_REQUESTS
    assert 0 < settings.max_requests_jitter < MAX_REQUESTS


# A real `dibot serve` with 50 slow clients --------------------------------------------------


@dataclass
class SlowClient:
    kind: str
    sock: socket.socket
    opened: float
    received: bytes = b""
    closed_after: float | None = None


def open_slow_clients(port: int) -> list[SlowClient]:
    """SLOW_CLIENTS connections of three kinds, interleaved so each worker gets some of all."""
    kinds = ("body a byte a second", "half the headers", "nothing")
    clients = []
    for index in range(SLOW_CLIENTS):
        kind = kinds[index % len(kinds)]
        sock = socket.create_connection((HOST, port), timeout=ANSWER_LIMIT_SECONDS)
        if kind == "body a byte a second":
            sock.sendall(SLOW_BODY)
        elif kind == "half the headers":
            sock.sendall(HALF_HEADERS)
        clients.append(SlowClient(kind, sock, time.monotonic()))
    return clients


@contextmanager
def trickling(clients: list[SlowClient]) -> Iterator[None]:
    """Send one byte a second to each body-sending client until the block ends (at most a
    minute), ignoring clients the server has dropped."""
    stop = threading.Event()

    def trickle() -> None:
        deadline = time.monotonic() + 60
        while not stop.wait(1.0) and time.monotonic() < deadline:
            for client in clients:
                if client.kind == "body a byte a second":
                    with suppress(OSError):
                        client.sock.send(b"a")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def wait_until_closed(clients: list[SlowClient], limit: float) -> None:
    """Read every client until the server closes it or `limit` (a monotonic time) passes."""
    open_ = {client.sock: client for client in clients}
    while open_ and time.monotonic() < limit:
        readable, _, _ = select.select(list(open_), [], [], max(0.0, limit - time.monotonic()))
        for sock in readable:
            client = open_[sock]
            try:
                chunk = sock.recv(4096)
            except (ConnectionResetError, TimeoutError):
                chunk = b""
            client.received += chunk
            if not chunk:
                client.closed_after = time.monotonic() - client.opened
                del open_[sock]


T = TypeVar("T")


def timed(call: Callable[[], T]) -> tuple[float, T]:
    start = time.monotonic()
    result = call()
    return time.monotonic() - start, result


def healthz(port: int) -> int:
    url = f"http://{HOST}:{port}/healthz"
    with urllib.request.urlopen(url, timeout=ANSWER_LIMIT_SECONDS) as response:
        response.read()
        return int(response.status)


def twilio_webhook(port: int, sender: str) -> tuple[int, bytes]:
    """A signed inbound SMS, as Twilio posts it."""
    url = f"http://{HOST}:{port}/webhooks/twilio/sms"
    params = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": sender, "Body": "Hello"}
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, params)},
    )
    with urllib.request.urlopen(request, timeout=ANSWER_LIMIT_SECONDS) as response:
        return int(response.status), response.read()


def exchange(port: int, pieces: list[bytes], pause: float = 0.0) -> bytes:
    """Send `pieces` with `pause` between them, then read the answer to its end."""
    with socket.create_connection((HOST, port), timeout=ANSWER_LIMIT_SECONDS) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(pause)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_dibot_serve_answers_everyone_while_50_slow_clients_hold_connections(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    settings = {
        "DIBOT_DATABASE_URL": database_url,
        "DIBOT_SERVER_WORKERS": "2",
        "DIBOT_TWILIO_AUTH_TOKEN": TOKEN,
        "DIBOT_TWILIO_PUBLIC_URL": f"http://{HOST}:{port}",
        "DIBOT_FLOW_LANGUAGES": "en",
    }
    with serving(tmp_path, port, **settings):
        clients = open_slow_clients(port)
        try:
            with trickling(clients):
                time.sleep(1.5)  # every slow client is now in a worker's hands
                health = [timed(lambda: healthz(port)) for _ in range(6)]
                webhooks = [
                    timed(partial(twilio_webhook, port, f"+4477009001{i:02d}")) for i in range(6)
                ]
                with ThreadPoolExecutor(4) as pool:
                    together = list(pool.map(lambda _: timed(lambda: healthz(port)), range(8)))
                oversized = timed(
                    lambda: exchange(
                        port,
                        [
                            b"POST /webhooks/twilio/sms HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Content-Type: application/x-www-form-urlencoded\r\n"
                            b"Content-Length: 10000000\r\n\r\nBody=" + b"x" * 1000
                        ],
                    )
                )
                # A slow request that does arrive in time is served, not dropped.
                piecemeal = timed(
                    lambda: exchange(
                        port, [b"GET /heal", b"thz HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"], 0.5
                    )
                )
                wait_until_closed(
                    clients, time.monotonic() + REQUEST_TIMEOUT_SECONDS + CLOSE_SLACK_SECONDS
                )
        finally:
            for client in clients:
                client.sock.close()
        after = healthz(port)

    times = [seconds for seconds, _ in [*health, *webhooks, *together]]
    print(
        f"\n{SLOW_CLIENTS} slow clients: healthz and webhooks answered in at most "
        f"{max(times) * 1000:.1f} ms (median {sorted(times)[len(times) // 2] * 1000:.1f} ms); "
        f"413 in {oversized[0] * 1000:.1f} ms"
    )
    assert all(status == 200 for _, status in [*health, *together])
    for _, (status, body) in webhooks:
        assert status == 200
        assert b"<Message>" in body
    assert max(times) < ANSWER_LIMIT_SECONDS
    seconds, answer = oversized
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert seconds < ANSWER_LIMIT_SECONDS
    seconds, answer = piecemeal
    assert answer.startswith(b"HTTP/1.1 200 ")
    for client in clients:
        assert client.closed_after is not None, f"{client.kind}: still open"
        assert client.closed_after > REQUEST_TIMEOUT_SECONDS - 0.5, client.kind
        if client.kind == "nothing":
            assert client.received == b""
        else:
            assert client.received.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), client.kind
    assert after == 200


# The workers themselves, on a small app -----------------------------------------------------

PID_APP = """
import os, sys, time
from dibot.cli import gunicorn_server
from dibot.config import Config, ServerConfig

def app(environ, start_response):
    time.sleep(float(environ.get("QUERY_STRING") or 0))  # ?2 takes two seconds
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]

port, workers, max_requests = (int(argument) for argument in sys.argv[1:])
server = gunicorn_server(Config(server=ServerConfig(port=port, workers=workers)), app)
server.cfg.set("max_requests", max_requests)
server.cfg.set("max_requests_jitter", 0)
server.run()
"""
"""`gunicorn_server` serving an app that answers with its worker's pid (after sleeping
QUERY_STRING seconds), with a small max_requests to see workers recycled."""


@contextmanager
def pid_app(
    tmp_path: Path, workers: int, max_requests: int
) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    script = tmp_path / "pid_app.py"
    script.write_text(PID_APP, encoding="utf-8")
    port = free_port()
    command = [sys.executable, str(script), str(port), str(workers), str(max_requests)]
    with running(command, tmp_path, environment(), f"http://{HOST}:{port}/") as server:
        yield port, server


def worker_pid(port: int, seconds: float = 0) -> int:
    url = f"http://{HOST}:{port}/?{seconds}"
    with urllib.request.urlopen(url, timeout=ANSWER_LIMIT_SECONDS + seconds) as response:
        return int(response.read())


def test_workers_are_recycled_after_max_requests_without_a_failed_request(
    tmp_path: Path,
) -> None:
    with pid_app(tmp_path, workers=1, max_requests=3) as (port, _):
        pids = [worker_pid(port) for _ in range(10)]
    # The health check was the first worker's first request.
    assert len(set(pids)) >= 3, pids
    assert pids[0] == pids[1] != pids[2], pids


def test_sigterm_lets_requests_in_progress_and_still_arriving_finish(tmp_path: Path) -> None:
    with pid_app(tmp_path, workers=2, max_requests=0) as (port, server):
        with ThreadPoolExecutor(1) as pool:
            in_progress = pool.submit(worker_pid, port, 2.0)
            arriving = socket.create_connection((HOST, port), timeout=ANSWER_LIMIT_SECONDS)
            arriving.sendall(b"GET /?0 HTTP/1.1\r\nHost: x\r\n")  # the blank line comes later
            time.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            arriving.sendall(b"\r\n")
            answer = b""
            while chunk := arriving.recv(65536):
                answer += chunk
            arriving.close()
            assert in_progress.result(timeout=ANSWER_LIMIT_SECONDS + 2) > 0
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert server.wait(timeout=STOP_LIMIT_SECONDS) == 0
