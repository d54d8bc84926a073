"""240 replies through two outbox workers against a Bot API that fails a quarter of the sends:
what certainly did not reach Telegram is sent again until it goes, exactly once and in each
chat's order; what Telegram may have (it read the request and gave no answer) is held as
"unknown" and never sent again.

The fake Bot API server draws its faults from a seeded mix (see `tests.fake_telegram`); the
workers run on real time with short limits (pacing, back-off, timeouts), so the test takes a
few seconds.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bot.messages import Inbound, Outbound
from channels.sending import RetryPolicy
from channels.telegram import run_worker
from channels.telegram_bot import Timeouts
from channels.telegram_outbox import Pacer
from dibot.turns import TurnHandler
from flows.model import Flow
from storage import outbox
from storage.models import OutboxEntry, table
from tests.fake_telegram import UNANSWERED, FakeTelegram, FaultMix
from tests.telegram_support import telegram_config

CHATS = 40
REPLIES_PER_CHAT = 6  # the reply to /start, then five more
MIX = FaultMix(
    rates={"429": 0.06, "500": 0.06, "502": 0.06, "reset": 0.06, "delay": 0.01, "drop": 0.01},
    seed=20261202,
    retry_after=1,
    delay=1.0,
)
TIMEOUTS = Timeouts(connect=1.0, read=0.4, write=1.0, pool=1.0, margin=1.0)
"""The read timeout is well under the fake's `delay`: a delayed answer is never waited for."""
SETTLE_LIMIT = 60.0
outbox_table = table(OutboxEntry)


def policy(seed: int) -> RetryPolicy:
    return RetryPolicy(
        first_backoff=timedelta(milliseconds=50),
        max_backoff=timedelta(milliseconds=500),
        claim_lease=timedelta(seconds=5),
        send_lease=timedelta(seconds=10),
        rng=random.Random(seed),
    )


def queue_replies(engine: sa.Engine, flow: Flow) -> dict[int, list[int]]:
    """Each chat's outbox ids, in the order queued: a turn's reply, then five of staff's."""
    handler = TurnHandler(engine, flow)
    queued: dict[int, list[int]] = {}
    for n in range(CHATS):
        chat = 970_000 + n
        result = handler.handle(
            channel="telegram",
            message_id=f"{chat}-start",
            urn=f"telegram:{chat}",
            inbound=Inbound("/start"),
            queue_replies=True,
        )
        queued[chat] = list(result.queued)
        with engine.begin() as conn:
            respondent = conn.execute(
                sa.select(outbox_table.c.respondent_id).where(outbox_table.c.id == queued[chat][0])
            ).scalar_one()
            for k in range(1, REPLIES_PER_CHAT):
                message = Outbound(f"reply {k} to {chat}")
                queued[chat].append(
                    outbox.queue(
                        conn,
                        channel="telegram",
                        respondent_id=respondent,
                        message=message,
                        now=datetime.now(UTC),
                    )
                )
    return queued


def unsettled(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(outbox_table.c.status.in_(outbox.UNSETTLED))
            ).scalar_one()
        )


def rows(engine: sa.Engine) -> dict[int, tuple[str, str]]:
    """id -> (status, text)"""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(outbox_table.c.id, outbox_table.c.status, outbox_table.c.text)
        )
        return {row.id: (row.status, row.text) for row in found}


def test_replies_under_provider_faults_go_once_in_order_or_are_held_as_unknown(
    fake: FakeTelegram, engine: sa.Engine, database_url: str, flow: Flow
) -> None:
    queued = queue_replies(engine, flow)
    assert sum(len(ids) for ids in queued.values()) == CHATS * REPLIES_PER_CHAT == 240
    fake.fault_mix(MIX)
    config = telegram_config(fake, database_url)
    handler = TurnHandler(engine, flow)
    stop = threading.Event()
    started = time.monotonic()
    workers = [
        threading.Thread(
            target=run_worker,
            args=(config, handler),
            kwargs={
                "engine": engine,
                "stop": stop,
                "idle_wait": 0.02,
                "pacer": Pacer(per_chat=0.05, overall=0.002),
                "timeouts": TIMEOUTS,
                "policy": policy(seed),
            },
        )
        for seed in (1, 2)
    ]
    for worker in workers:
        worker.start()
    try:
        while unsettled(engine) and time.monotonic() - started < SETTLE_LIMIT:
            time.sleep(0.05)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    elapsed = time.monotonic() - started

    stored = rows(engine)
    chat_of = {row_id: chat for chat, ids in queued.items() for row_id in ids}
    text_of = {row_id: text for row_id, (_, text) in stored.items()}
    status = Counter(state for state, _ in stored.values())
    delivered = [(call.params["chat_id"], call.params["text"]) for call in fake.deliveries]
    copies = Counter(delivered)
    unknown = {(chat_of[i], text_of[i]) for i, (state, _) in stored.items() if state == "unknown"}
    unanswered = {
        (call.params["chat_id"], call.params["text"])
        for kind, call in fake.injected
        if kind in UNANSWERED and call is not None
    }
    injected = fake.injected_counts()
    print(
        f"\nfaults injected: {dict(sorted(injected.items()))} ({sum(injected.values())} in"
        f" {len(fake.calls_to('sendMessage')) + injected['reset']} requests);"
        f" outbox: {dict(status)}; delivered {len(copies)}/240, duplicates"
        f" {sum(n - 1 for n in copies.values())}, unknown {len(unknown)}; {elapsed:.1f} s"
    )

    assert status.keys() <= {"sent", "unknown"}, status  # nothing given up, nothing stuck
    assert set(injected) == set(MIX.rates)  # every kind of fault was met
    assert max(copies.values()) == 1  # nothing delivered twice
    assert unknown == unanswered  # unknown: exactly what the fake read and left unanswered
    sent = {(chat_of[i], text_of[i]) for i, (state, _) in stored.items() if state == "sent"}
    assert sent <= set(copies)  # every reply whose failures were all provable went
    assert len(copies) >= 0.99 * 240
    assert len(sent) + len(unknown) == 240
    by_chat: defaultdict[int, list[str]] = defaultdict(list)
    for chat, text in delivered:
        by_chat[chat].append(text)
    for chat, ids in queued.items():  # each chat's replies arrived in the order queued
        assert by_chat[chat] == [text_of[i] for i in ids]
    assert elapsed < 30
