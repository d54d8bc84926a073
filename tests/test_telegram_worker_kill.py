"""An outbox worker killed with SIGKILL holding a row: if it had not begun the send, the claim's
lease runs out and another worker sends the row, exactly once; if the send had begun (the fake
Bot API had the request), the row becomes "unknown" and is never sent again. Either way the
chat's next reply follows it, in order.

One worker is the worker function in a spawned process, stopped where it holds a claim (in a
pacing pause before the send); the other is a real `dibot worker` killed while Telegram holds
its request unanswered.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event

import pytest
import sqlalchemy as sa

from bot.messages import Inbound, Outbound
from channels.sending import RetryPolicy
from channels.telegram import run_worker
from channels.telegram_outbox import Pacer
from dibot.config import Config, DatabaseConfig, FlowConfig, TelegramConfig
from dibot.turns import TurnHandler
from flows.loader import load_flow
from flows.model import Flow
from storage import outbox
from storage.database import make_engine
from storage.models import OutboxEntry, table
from tests.fake_telegram import FakeTelegram
from tests.processes import DIBOT, environment
from tests.telegram_support import FakeClock, telegram_config

CHAT = 960001
LEASE = timedelta(seconds=1)
KEY_VARIABLE = "DIBOT_PRIVACY_ENCRYPTION_KEY"
outbox_table = table(OutboxEntry)


def queue_two(engine: sa.Engine, flow: Flow) -> tuple[int, int]:
    """The reply to /start, and one more after it, for CHAT."""
    result = TurnHandler(engine, flow).handle(
        channel="telegram",
        message_id="kill-1",
        urn=f"telegram:{CHAT}",
        inbound=Inbound("/start"),
        queue_replies=True,
    )
    [first] = result.queued
    with engine.begin() as conn:
        respondent = conn.execute(
            sa.select(outbox_table.c.respondent_id).where(outbox_table.c.id == first)
        ).scalar_one()
        second = outbox.queue(
            conn,
            channel="telegram",
            respondent_id=respondent,
            message=Outbound("the next reply"),
            now=datetime.now(UTC),
        )
    return first, second


def states(engine: sa.Engine) -> list[tuple[str, int, str | None, str]]:
    """(status, attempts, error, text) of every row, oldest first."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(
                outbox_table.c.status,
                outbox_table.c.attempts,
                outbox_table.c.error,
                outbox_table.c.text,
            ).order_by(outbox_table.c.id)
        )
        return [tuple(row) for row in found]


class HangingClock:
    """Time stands still; the first pause (the pacing before the send) says so and never
    ends: the process is killed there, holding its claim."""

    def __init__(self, paused: Event) -> None:
        self.at = datetime.now(UTC)
        self.paused = paused

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.paused.set()
        time.sleep(600)


def claim_then_hang(database_url: str, base_url: str, token: str, paused: Event) -> None:
    """In a spawned process: a worker that claims the oldest row and hangs before sending it."""
    config = Config(
        database=DatabaseConfig(url=database_url),
        telegram=TelegramConfig(bot_token=token, api_base_url=base_url),
        flow=FlowConfig(languages="en"),
    )
    engine = make_engine(database_url)
    clock = HangingClock(paused)
    pacer = Pacer()
    pacer.hold(CHAT, clock.at + timedelta(seconds=0.1))  # a short pause: slept holding the claim
    handler = TurnHandler(engine, load_flow(languages=["en"]))
    policy = RetryPolicy(claim_lease=LEASE)
    run_worker(config, handler, engine=engine, clock=clock, pacer=pacer, policy=policy)


def test_a_claim_whose_worker_was_killed_before_sending_is_sent_by_another_once(
    fake: FakeTelegram, engine: sa.Engine, database_url: str, flow: Flow
) -> None:
    queue_two(engine, flow)
    context = multiprocessing.get_context("spawn")
    paused = context.Event()
    child = context.Process(
        target=claim_then_hang, args=(database_url, fake.base_url, fake.token, paused)
    )
    child.start()
    try:
        assert paused.wait(timeout=30), "the worker did not claim the row"
        assert [state[0] for state in states(engine)] == ["claimed", "pending"]
    finally:
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(timeout=10)
    assert child.exitcode == -signal.SIGKILL
    assert fake.sent() == []

    stop = threading.Event()
    other = threading.Thread(
        target=run_worker,
        args=(telegram_config(fake, database_url), TurnHandler(engine, flow)),
        kwargs={"engine": engine, "stop": stop, "idle_wait": 0.05},
    )
    started = time.monotonic()
    other.start()
    try:
        fake.wait_for("sendMessage", 2, timeout=15)
    finally:
        stop.set()
        other.join(timeout=15)
    waited = time.monotonic() - started

    texts = [call.params["text"] for call in fake.sent(CHAT)]
    rows = states(engine)
    assert texts == [rows[0][3], "the next reply"]  # each once, in order
    assert [(status, attempts) for status, attempts, _, _ in rows] == [("sent", 1), ("sent", 1)]
    assert waited < 10  # the lease (1 s) ran out; nothing waited for longer


@pytest.mark.skipif(DIBOT is None, reason="the dibot console script is not installed")
def test_a_send_whose_worker_was_killed_is_unknown_and_never_sent_again(
    fake: FakeTelegram,
    engine: sa.Engine,
    database_url: str,
    flow: Flow,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue_two(engine, flow)
    fake.stall("sendMessage", 30, CHAT)  # Telegram takes the request and does not answer
    settings = {
        "DIBOT_DATABASE_URL": database_url,
        "DIBOT_TELEGRAM_BOT_TOKEN": fake.token,
        "DIBOT_TELEGRAM_API_BASE_URL": fake.base_url,
        "DIBOT_FLOW_LANGUAGES": "en",
    }
    if KEY_VARIABLE in os.environ:
        settings[KEY_VARIABLE] = os.environ[KEY_VARIABLE]
    worker = subprocess.Popen(
        [str(DIBOT), "worker"],
        env=environment(**settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        received = fake.wait_for("sendMessage", 1, timeout=30)
        assert len(received) == 1, "dibot worker did not send"
        assert [state[0] for state in states(engine)] == ["sending", "pending"]
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.communicate(timeout=10)
    assert worker.returncode == -signal.SIGKILL

    config = telegram_config(fake, database_url)
    handler = TurnHandler(engine, flow)
    soon = FakeClock(datetime.now(UTC) + timedelta(seconds=30))
    run_worker(config, handler, engine=engine, clock=soon, until_empty=True)
    assert len(fake.sent(CHAT)) == 1  # still "sending": its lease holds, nothing goes after it

    after_the_lease = FakeClock(datetime.now(UTC) + outbox.SEND_LEASE + timedelta(seconds=1))
    run_worker(config, handler, engine=engine, clock=after_the_lease, until_empty=True)
    first, second = states(engine)
    assert (first[0], first[1], first[2]) == ("unknown", 1, outbox.LEASE_LOST_ERROR)
    assert (second[0], second[3]) == ("sent", "the next reply")
    assert [call.params["text"] for call in fake.sent(CHAT)] == [first[3], "the next reply"]

    with caplog.at_level(logging.WARNING, logger="channels.telegram"):
        run_worker(config, handler, engine=engine, clock=after_the_lease, until_empty=True)
    assert "replies of unknown fate: 1 " in caplog.text
    assert len(fake.sent(CHAT)) == 2  # never sent again
