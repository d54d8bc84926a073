"""The tests' fake Telegram Bot API (tests/fake_telegram.py) in a process of its own.

The rule it keeps: the fake shares no interpreter with what it measures or with the load
client, and it reports what it received only when asked, once the senders have stopped, so
the count is final. It listens on 127.0.0.1 only. The spawned process imports this module and
the fake, nothing of dibot, so it starts quickly.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection

TELEGRAM_TOKEN = "123456:BENCH-token-not-a-secret"
"""The bot token the fake answers to; never a real one."""
START_LIMIT_SECONDS = 60
STOP_LIMIT_SECONDS = 30


@dataclass(frozen=True)
class Received:
    """What the fake Bot API was asked to do."""

    sends: tuple[tuple[int, str], ...]
    """(chat id, text) of every sendMessage, in the order they arrived."""
    calls: Mapping[str, int]
    """Calls per method."""


def _serve(connection: Connection, token: str) -> None:
    from tests.fake_telegram import FakeTelegram

    with FakeTelegram(token) as fake:
        connection.send(fake.base_url)
        connection.recv()  # the senders have stopped
        sends = [(int(c.params["chat_id"]), str(c.params.get("text", ""))) for c in fake.sent()]
        connection.send((sends, dict(Counter(call.method for call in fake.calls))))


class FakeBotApi:
    """The running fake: `base_url` is what `telegram.api_base_url` should say."""

    def __init__(self, connection: Connection, base_url: str) -> None:
        self._connection = connection
        self.base_url = base_url

    def received(self) -> Received:
        """Everything it received; ask once, after the senders have stopped."""
        self._connection.send("report")
        sends, calls = self._connection.recv()
        return Received(tuple(sends), calls)


@contextmanager
def fake_bot_api(token: str = TELEGRAM_TOKEN) -> Iterator[FakeBotApi]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve, args=(theirs, token), daemon=True)
    process.start()
    try:
        if not ours.poll(START_LIMIT_SECONDS):
            raise RuntimeError("the fake Bot API did not start")
        yield FakeBotApi(ours, ours.recv())
    finally:
        if process.is_alive():
            process.terminate()
        process.join(timeout=STOP_LIMIT_SECONDS)
        process.close()
        ours.close()
