"""The outbox worker's pacing, quiet hours and stopping: a chat held back never holds back the
others, outreach waits for quiet hours while replies go, a claimed row is never left "sending"
by a wait or a stop, and rows that must not go say why; long polling's own sends keep order.

Time is a `FakeClock` (nothing really sleeps); Telegram is the fake Bot API server over HTTP.
"""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime, timedelta
from random import Random

import pytest
import sqlalchemy as sa

from bot.messages import Inbound, Outbound
from channels.sending import RetryPolicy
from channels.telegram import TelegramChannel, quiet_hours_of, run_worker
from channels.telegram_parse import parse_update_json
from dibot.config import Config
from dibot.turns import TurnHandler
from flows.model import Flow
from outreach.quiet_hours import parse_quiet_hours
from storage import outbox
from tests.fake_telegram import FakeTelegram, text_update
from tests.telegram_support import FakeClock, Worker, first_replies, outbox_rows, telegram_config

CHAT = 940001
OTHER_CHAT = 940002
START = datetime(2026, 11, 2, 9, tzinfo=UTC)


@pytest.fixture
def config(fake: FakeTelegram, database_url: str) -> Config:
    return telegram_config(fake, database_url)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def handler(engine: sa.Engine, flow: Flow, clock: FakeClock) -> TurnHandler:
    return TurnHandler(engine, flow, clock=clock.now)


def queue_turns(handler: TurnHandler, chat_id: int, *said: str) -> None:
    for n, text in enumerate(said):
        handler.handle(
            channel="telegram",
            message_id=f"{chat_id}-{n}",
            urn=f"telegram:{chat_id}",
            inbound=Inbound(text),
            queue_replies=True,
        )


def sent_to(fake: FakeTelegram) -> list[tuple[int, str]]:
    return [(call.params["chat_id"], call.params["text"]) for call in fake.sent()]


def test_a_chat_held_back_by_flood_control_does_not_hold_back_the_others(
    fake: FakeTelegram, config: Config, handler: TurnHandler, engine: sa.Engine, clock: FakeClock
) -> None:
    queue_turns(handler, CHAT, "/start", "1")
    queue_turns(handler, OTHER_CHAT, "/start")
    first, second, other = (row["id"] for row in outbox_rows(engine))
    fake.flood(CHAT, retry_after=30)

    tried = run_worker(config, handler, engine=engine, clock=clock, until_empty=True)

    chats = [chat for chat, _ in sent_to(fake)]
    assert chats == [CHAT, OTHER_CHAT, CHAT, CHAT]  # the other chat went while CHAT waited
    texts = [text for chat, text in sent_to(fake) if chat == CHAT]
    assert texts[0] == texts[1] != texts[2]  # CHAT's messages still in order
    assert tried == 4
    assert sum(clock.slept) == pytest.approx(31.0, abs=1e-3)  # retry_after, then 1 s per chat
    rows = {row["id"]: (row["status"], row["attempts"]) for row in outbox_rows(engine)}
    # the second was held back for pacing, not tried: its claims while held do not count
    assert rows == {first: ("sent", 2), second: ("sent", 1), other: ("sent", 1)}


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_worker_between_rows_leaving_nothing_claimed(
    fake: FakeTelegram,
    config: Config,
    handler: TurnHandler,
    engine: sa.Engine,
    signal_number: int,
) -> None:
    queue_turns(handler, CHAT, "/start")
    queue_turns(handler, OTHER_CHAT, "/start")

    class SignalledClock(FakeClock):
        """The signal arrives during the first pause (the pacing before the second row)."""

        def sleep(self, seconds: float) -> None:
            if not self.slept:
                signal.pthread_kill(threading.main_thread().ident or 0, signal_number)
            elif len(self.slept) > 50:
                raise RuntimeError("the worker did not stop")
            super().sleep(seconds)

    reached: list[int] = []

    def before(number: int, frame: object) -> None:
        reached.append(number)

    previous = signal.signal(signal_number, before)
    try:
        tried = run_worker(config, handler, engine=engine, clock=SignalledClock(START))
        restored = signal.getsignal(signal_number)
    finally:
        signal.signal(signal_number, previous)

    assert reached == []  # the worker's own handler took it
    assert restored is before  # and the one before it is back
    assert tried == 1
    assert len(fake.sent()) == 1
    rows = [(row["status"], row["attempts"]) for row in outbox_rows(engine)]
    assert rows == [("sent", 1), ("pending", 0)]  # released, not left "sending"


def test_a_released_row_goes_back_to_pending_uncounted_and_waits(
    engine: sa.Engine, handler: TurnHandler
) -> None:
    queue_turns(handler, CHAT, "/start")
    [row] = outbox.claim(engine, "telegram", 10, START)
    later = START + timedelta(seconds=3)

    assert outbox.release(engine, row, later, START) is True
    assert outbox.release(engine, row, later, START) is False  # only a claimed row
    [stored] = outbox_rows(engine)
    assert (stored["status"], stored["attempts"]) == ("pending", 0)
    assert outbox.claim(engine, "telegram", 10, later - timedelta(microseconds=1)) == []
    [again] = outbox.claim(engine, "telegram", 10, later)
    assert again.attempts == 1
    outbox.begin(engine, again, later)
    assert outbox.release(engine, again, later, later) is False  # never a row being sent
    outbox.mark_sent(engine, again, "tg-1", later)
    assert outbox.release(engine, again, later, later) is False  # nor a sent one
    assert outbox_rows(engine)[0]["status"] == "sent"


@pytest.mark.parametrize("why", ["unreachable", "opted out"])
def test_a_row_that_must_not_go_says_why(
    fake: FakeTelegram,
    config: Config,
    handler: TurnHandler,
    engine: sa.Engine,
    clock: FakeClock,
    why: str,
) -> None:
    queue_turns(handler, CHAT, "/start")
    clock.at += timedelta(minutes=1)
    if why == "unreachable":
        handler.mark_unreachable(f"telegram:{CHAT}")
    else:
        handler.mark_opted_out(f"telegram:{CHAT}")

    assert run_worker(config, handler, engine=engine, clock=clock, until_empty=True) == 0

    assert fake.sent() == []
    assert [(row["status"], row["error"]) for row in outbox_rows(engine)] == [("failed", why)]


def retry_later(engine: sa.Engine, clock: FakeClock) -> None:
    """The oldest row meets a 500 and waits a minute for its retry."""
    [row] = outbox.claim(engine, "telegram", 1, clock.at)
    outbox.begin(engine, row, clock.at)
    outbox.retry(
        engine, row, "500: Internal Server Error", clock.at, clock.at + timedelta(minutes=1)
    )


def test_a_polled_turns_reply_never_overtakes_an_earlier_one_waiting_for_a_retry(
    fake: FakeTelegram,
    config: Config,
    handler: TurnHandler,
    engine: sa.Engine,
    clock: FakeClock,
    flow: Flow,
) -> None:
    queue_turns(handler, CHAT, "/start")
    retry_later(engine, clock)
    channel = TelegramChannel(config, lambda: handler, lambda: engine, clock)
    try:
        parsed = parse_update_json(text_update(CHAT, "1"))
        assert parsed is not None
        channel.follow_up(parsed, channel.take(parsed))
    finally:
        channel.close()
    assert fake.sent() == []  # the turn's reply waits behind the earlier one
    clock.at += timedelta(minutes=1)
    run_worker(config, handler, engine=engine, clock=clock, until_empty=True)
    first, second = outbox_rows(engine)
    assert [call.params["text"] for call in fake.sent(CHAT)] == [
        first_replies(flow, Inbound("/start"))[0].text,
        first_replies(flow, Inbound("/start"), Inbound("1"))[0].text,
    ]
    assert [(first["status"], first["attempts"]), (second["status"], second["attempts"])] == [
        ("sent", 2),
        ("sent", 1),
    ]


def test_polling_stops_at_its_first_reply_that_did_not_go_and_leaves_the_rest_in_order(
    fake: FakeTelegram, config: Config, handler: TurnHandler, engine: sa.Engine, clock: FakeClock
) -> None:
    queue_turns(handler, CHAT, "/start")
    [row] = outbox_rows(engine)
    with engine.begin() as conn:
        respondent = conn.execute(
            sa.text("SELECT respondent_id FROM outbox WHERE id = :id"), {"id": row["id"]}
        ).scalar_one()
        later = outbox.queue(
            conn,
            channel="telegram",
            respondent_id=respondent,
            message=Outbound("and then this"),
            now=clock.at,
        )
    fake.inject("502")
    channel = TelegramChannel(config, lambda: handler, lambda: engine, clock)
    try:
        parsed = parse_update_json(text_update(CHAT, "hello"))
        assert parsed is not None
        channel.follow_up(parsed, (row["id"], later))
    finally:
        channel.close()
    assert len(fake.sent(CHAT)) == 1  # the 502; the second was not tried after it
    assert [r["status"] for r in outbox_rows(engine)] == ["pending", "pending"]
    clock.at += timedelta(minutes=1)
    run_worker(config, handler, engine=engine, clock=clock, until_empty=True)
    texts = [call.params["text"] for call in fake.sent(CHAT)]
    assert texts[1:] == [texts[0], "and then this"]
    assert [r["status"] for r in outbox_rows(engine)] == ["sent", "sent"]


def test_back_off_doubles_with_jitter_up_to_a_cap_and_never_before_retry_after() -> None:
    policy = RetryPolicy(
        first_backoff=timedelta(seconds=2), max_backoff=timedelta(seconds=60), rng=Random(1)
    )
    for attempts, ceiling in ((1, 2), (2, 4), (3, 8), (6, 60), (40, 60)):
        delays = {policy.delay(attempts) for _ in range(50)}
        assert all(
            timedelta(seconds=ceiling / 2) <= d <= timedelta(seconds=ceiling) for d in delays
        )
        assert len(delays) > 1  # spread out, so retries from many chats do not come together
    assert policy.delay(1, retry_after=timedelta(seconds=30)) == timedelta(seconds=30)


def test_a_reply_that_could_not_go_for_a_day_is_given_up(
    fake: FakeTelegram, config: Config, handler: TurnHandler, engine: sa.Engine, clock: FakeClock
) -> None:
    queue_turns(handler, CHAT, "/start")
    clock.at += timedelta(hours=24)
    fake.inject("500")
    run_worker(config, handler, engine=engine, clock=clock, until_empty=True)
    [row] = outbox_rows(engine)
    assert row["status"] == "failed"
    assert row["error"].startswith("gave up after 1 tries: NotDelivered: 500")


def respondent_of(engine: sa.Engine, chat_id: int) -> int:
    [row_id, *_] = [row["id"] for row in outbox_rows(engine) if row["urn"] == f"telegram:{chat_id}"]
    with engine.connect() as conn:
        query = sa.text("SELECT respondent_id FROM outbox WHERE id = :id")
        return int(conn.execute(query, {"id": row_id}).scalar_one())


def queue_reminder(engine: sa.Engine, chat_id: int, now: datetime) -> int:
    """An outreach row, due `now`: as if queued within quiet hours and not sent before they
    ended (a backlog, or a retry that fell after them)."""
    respondent = respondent_of(engine, chat_id)
    with engine.begin() as conn:
        return outbox.queue(
            conn,
            channel="telegram",
            respondent_id=respondent,
            message=Outbound("A reminder: your check is waiting"),
            now=now,
            kind="reminder",
        )


def test_quiet_hours_hold_an_outreach_row_and_let_replies_through(
    fake: FakeTelegram, config: Config, engine: sa.Engine, flow: Flow
) -> None:
    evening = datetime(2026, 11, 2, 20, 30, tzinfo=UTC)  # a Monday; London is on UTC
    clock = FakeClock(evening)
    handler = TurnHandler(engine, flow, clock=clock.now)
    queue_turns(handler, CHAT, "/start")
    reminder = queue_reminder(engine, CHAT, evening)
    queue_turns(handler, OTHER_CHAT, "/start")  # a reply queued after the reminder
    consent = first_replies(flow, Inbound("/start"))[0].text
    quiet = parse_quiet_hours("09:00-20:00")

    with Worker(config, handler, engine, clock, quiet=quiet) as worker:
        worker.deliver()
        assert sent_to(fake) == [(CHAT, consent), (OTHER_CHAT, consent)]
        [held] = [row for row in outbox_rows(engine) if row["id"] == reminder]
        assert (held["status"], held["attempts"], held["error"]) == ("pending", 0, None)

        clock.at = datetime(2026, 11, 3, 8, 59, tzinfo=UTC)
        worker.deliver()
        assert len(fake.sent()) == 2  # not before the morning

        clock.at = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
        worker.deliver()
    assert sent_to(fake)[2:] == [(CHAT, "A reminder: your check is waiting")]
    assert {row["status"] for row in outbox_rows(engine)} == {"sent"}


def test_the_worker_holds_outreach_to_the_configured_quiet_hours_by_default(
    fake: FakeTelegram, config: Config, engine: sa.Engine, flow: Flow
) -> None:
    assert quiet_hours_of(config) == parse_quiet_hours("09:00-20:00", "mon-sat")
    sunday = datetime(2026, 11, 8, 12, tzinfo=UTC)
    clock = FakeClock(sunday)
    handler = TurnHandler(engine, flow, clock=clock.now)
    queue_turns(handler, CHAT, "/start")
    queue_reminder(engine, CHAT, sunday)

    assert run_worker(config, handler, engine=engine, clock=clock, until_empty=True) == 1
    assert len(fake.sent(CHAT)) == 1  # the reply; the reminder waits for Monday

    clock.at = datetime(2026, 11, 9, 9, tzinfo=UTC)
    assert run_worker(config, handler, engine=engine, clock=clock, until_empty=True) == 1
    assert fake.sent(CHAT)[-1].params["text"] == "A reminder: your check is waiting"
