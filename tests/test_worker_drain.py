"""Two `dibot worker --once` processes draining one outbox: every message sent exactly once.

The outbox claims each row for one worker (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: the
claim's `BEGIN IMMEDIATE`), and a respondent's rows go in order. On PostgreSQL, 10,000 messages
to 1,000 residents (ten each); on SQLite, where two processes take turns at one write lock, 2,000.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.messages import Outbound
from bot.state import State
from flows.model import Flow
from storage import outbox
from storage.models import OutboxEntry, table
from storage.repository import TurnStore
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.processes import DIBOT, environment

RESIDENTS = 1_000
FROM_NUMBER = "+447700900000"
DRAIN_LIMIT_SECONDS = 600


def phone(index: int) -> str:
    return f"+447700900{index:03d}"


def queue_messages(engine: sa.Engine, flow: Flow, per_resident: int) -> int:
    now = datetime.now(UTC)
    store = TurnStore(engine.dialect.name)
    with engine.begin() as conn:
        for index in range(RESIDENTS):
            urn = "tel:" + phone(index)
            conversation = store.lock_conversation(conn, urn, flow, State(), now)
            for number in range(per_resident):
                outbox.queue(
                    conn,
                    channel="sms",
                    respondent_id=conversation.respondent_id,
                    message=Outbound(f"Note {number} for resident {index}"),
                    now=now,
                    kind="followup",
                    sent_by="outreach",
                    segments=1,
                )
    return RESIDENTS * per_resident


def worker_process(cwd: Path, database_url: str, twilio: FakeTwilio) -> subprocess.Popen[str]:
    assert DIBOT is not None
    environ = environment(
        DIBOT_DATABASE_URL=database_url,
        DIBOT_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        DIBOT_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        DIBOT_TWILIO_FROM_NUMBER=FROM_NUMBER,
        DIBOT_TWILIO_API_BASE_URL=twilio.base_url,
        DIBOT_TWILIO_SEGMENTS_PER_SECOND="10000",
        DIBOT_OUTREACH_QUIET_HOURS="",
        DIBOT_OUTREACH_REMINDERS="",
    )
    return subprocess.Popen(
        [DIBOT, "worker", "--once"],
        cwd=cwd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.timeout(DRAIN_LIMIT_SECONDS + 60)
def test_two_workers_send_every_queued_message_exactly_once_and_in_order(
    tmp_path: Path, database_url: str, engine: sa.Engine, flow: Flow
) -> None:
    per_resident = 10 if engine.dialect.name == "postgresql" else 2
    queued = queue_messages(engine, flow, per_resident)
    with FakeTwilio() as twilio:
        workers = [worker_process(tmp_path, database_url, twilio) for _ in range(2)]
        outputs = [worker.communicate(timeout=DRAIN_LIMIT_SECONDS) for worker in workers]
        taken = twilio.messages

    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
    bodies = Counter((message.to, message.body) for message in taken)
    assert len(taken) == queued
    assert max(bodies.values()) == 1, "a message reached Twilio twice"
    by_resident: dict[str, list[str]] = defaultdict(list)
    for message in taken:
        by_resident[message.to].append(message.body)
    assert len(by_resident) == RESIDENTS
    for index in range(RESIDENTS):
        expected = [f"Note {number} for resident {index}" for number in range(per_resident)]
        assert by_resident[phone(index)] == expected, "one resident's messages out of order"
    rows = table(OutboxEntry)
    with engine.connect() as conn:
        statuses: dict[str, int] = dict(
            conn.execute(sa.select(rows.c.status, sa.func.count()).group_by(rows.c.status)).all()
        )
        sids = conn.execute(
            sa.select(sa.func.count(sa.distinct(rows.c.provider_message_id)))
        ).scalar()
    assert statuses == {"sent": queued}
    assert sids == queued
    shares = [int(re.search(r"(\d+) sms", stdout)[1]) for stdout, _ in outputs]  # type: ignore[index]
    assert all(share > 0 for share in shares), f"one worker did all the work: {shares}"
