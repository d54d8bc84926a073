"""Running dibot as an operator does: the console script as a real process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DIBOT = shutil.which("dibot", path=str(Path(sys.executable).parent))
STARTUP_LIMIT_SECONDS = 60
STOP_LIMIT_SECONDS = 30


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


KEY_VARIABLE = "DIBOT_PRIVACY_ENCRYPTION_KEY"
TEST_KEY = "aQT7Yt2X1bJQ2bZm6f0Cq8W1kqzv0F3o9b1q2r3s4t4="
"""The Fernet key of the tests' PostgreSQL databases; never a real one."""


def environment(**settings: str) -> dict[str, str]:
    """This environment without any DIBOT_ setting of the developer's, plus `settings`; a
    PostgreSQL database gets the run's encryption key (TEST_KEY, unless the run was given one)
    unless `settings` give one."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("DIBOT_")}
    url = settings.get("DIBOT_DATABASE_URL", "")
    if url.startswith("postgres"):
        settings.setdefault(KEY_VARIABLE, os.environ.get(KEY_VARIABLE, TEST_KEY))
    return {**clean, **settings}


def wait_for_health(url: str, server: subprocess.Popen[str]) -> tuple[int, object]:
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, json.load(response)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    return 0, None


@contextmanager
def serving(cwd: Path, port: int, **settings: str) -> Iterator[subprocess.Popen[str]]:
    """`dibot serve` on 127.0.0.1:`port`, healthy before the block runs, stopped after it."""
    assert DIBOT is not None, "the dibot console script is not installed in this environment"
    environ = environment(DIBOT_SERVER_PORT=str(port), **settings)
    health = f"http://127.0.0.1:{port}/healthz"
    with running([DIBOT, "serve"], cwd, environ, health) as server:
        yield server


@contextmanager
def running(
    command: list[str], cwd: Path, environ: dict[str, str], health_url: str
) -> Iterator[subprocess.Popen[str]]:
    """A server process, answering 200 at `health_url` before the block runs; SIGTERM after
    it, then SIGKILL to its whole process group if it has not stopped in time."""
    server = subprocess.Popen(
        command,
        cwd=cwd,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        status, _ = wait_for_health(health_url, server)
        assert status == 200, f"{Path(command[0]).name} did not become healthy at {health_url}"
        yield server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=STOP_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.communicate()
