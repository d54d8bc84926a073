"""A `dibot worker` killed (SIGKILL) in the middle of sending SMS: nothing is sent twice.

The killed worker held a batch of claimed rows and perhaps one row it had begun. Another
worker, once the claim's lease has run out, sends the claimed rows; the begun one becomes
"unknown" (Twilio may have it) and is never resent. Every other text reaches Twilio once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bot.messages import Outbound
from bot.state import State
from channels.sending import SystemClock
from dibot.config import Config, DatabaseConfig, OutreachConfig, TwilioConfig
from dibot.runtime import Runtime
from dibot.worker import Worker, build_senders
from flows.model import Flow
from storage import outbox
from storage.models import OutboxEntry, table
from storage.repository import TurnStore
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.processes import DIBOT, environment

TEXTS = 200
FROM_NUMBER = "+447700900000"
KILL_AFTER = 45
"""Texts Twilio has taken when the worker is killed: in the middle of a batch of claims."""
WAIT_LIMIT_SECONDS = 120


def phone(index: int) -> str:
    return f"+447700900{index:03d}"


def queue_texts(engine: sa.Engine, flow: Flow) -> None:
    now = datetime.now(UTC)
    store = TurnStore(engine.dialect.name)
    with engine.begin() as conn:
        for index in range(TEXTS):
            conversation = store.lock_conversation(conn, "tel:" + phone(index), flow, State(), now)
            outbox.queue(
                conn,
                channel="sms",
                respondent_id=conversation.respondent_id,
                message=Outbound(f"Note for resident {index}"),
                now=now,
                kind="followup",
            )


@dataclass
class LaterClock(SystemClock):
    """The real clock, `ahead` in the future: the killed worker's claims have run out."""

    ahead: timedelta = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.ahead


def test_a_killed_worker_leaves_nothing_to_send_twice(
    tmp_path: Path, database_url: str, engine: sa.Engine, flow: Flow
) -> None:
    queue_texts(engine, flow)
    settings = {
        "DIBOT_DATABASE_URL": database_url,
        "DIBOT_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "DIBOT_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "DIBOT_TWILIO_FROM_NUMBER": FROM_NUMBER,
        "DIBOT_TWILIO_SEGMENTS_PER_SECOND": "10000",
        "DIBOT_OUTREACH_QUIET_HOURS": "",
        "DIBOT_OUTREACH_REMINDERS": "",
    }
    with FakeTwilio() as twilio:
        twilio.stall(0.02, times=TEXTS)  # each answer a little late: the kill lands mid-batch
        assert DIBOT is not None
        worker = subprocess.Popen(
            [DIBOT, "worker"],
            cwd=tmp_path,
            env=environment(DIBOT_TWILIO_API_BASE_URL=twilio.base_url, **settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while len(twilio.messages) < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        taken_before = len(twilio.messages)
        assert KILL_AFTER <= taken_before < TEXTS, "the kill did not land mid-way"

        rows = table(OutboxEntry)
        with engine.connect() as conn:
            left_claimed = conn.execute(
                sa.select(sa.func.count()).where(rows.c.status.in_(("claimed", "sending")))
            ).scalar_one()
        assert left_claimed >= 2, "the killed worker held no batch of claims: nothing was tested"

        config = Config(
            database=DatabaseConfig(url=database_url),
            twilio=TwilioConfig(
                account_sid=ACCOUNT_SID,
                auth_token=AUTH_TOKEN,
                from_number=FROM_NUMBER,
                api_base_url=twilio.base_url,
                segments_per_second=10_000,
            ),
            outreach=OutreachConfig(quiet_hours="", reminders=""),
        )
        runtime = Runtime(config, flow=flow)
        stop = threading.Event()
        clock = LaterClock(stop, ahead=timedelta(minutes=5))
        try:
            Worker(runtime, build_senders(runtime, clock), clock=clock, stop=stop).run(once=True)
        finally:
            runtime.engine.dispose()
        taken = twilio.messages

    twice = [text for text, count in Counter(m.body for m in taken).items() if count > 1]
    assert twice == []
    with engine.connect() as conn:
        counted = conn.execute(sa.select(rows.c.status, sa.func.count()).group_by(rows.c.status))
        statuses: Counter[str] = Counter(dict(counted.all()))
    assert statuses["sent"] + statuses["unknown"] == TEXTS
    assert statuses["unknown"] <= 1, "only the row being sent at the kill may be in doubt"
    assert len(taken) >= TEXTS - statuses["unknown"]
