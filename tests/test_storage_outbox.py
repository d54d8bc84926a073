"""The outbox hands each due message to exactly one worker, retries only what the worker
says failed, never re-sends what may have gone, and never sends to someone who opted out."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bot.messages import Button, Outbound
from dibot.turns import TurnHandler
from flows.model import Flow
from storage import outbox
from storage.models import OutboxEntry, Respondent, table
from tests.people import respondent_columns
from tests.turn_helpers import NOW, send

respondents, outbox_table = table(Respondent), table(OutboxEntry)
LATER = NOW + timedelta(minutes=5)


def add_respondent(engine: sa.Engine, urn: str, *, opted_out: bool = False) -> int:
    with engine.begin() as conn:
        respondent_id: int = conn.execute(
            sa.insert(respondents)
            .values(
                **respondent_columns(engine, urn),
                language="en",
                opted_out=opted_out,
                created_at=NOW,
            )
            .returning(respondents.c.id)
        ).scalar_one()
    return respondent_id


def queue(engine: sa.Engine, respondent_id: int, text: str, channel: str = "telegram") -> int:
    with engine.begin() as conn:
        return outbox.queue(
            conn,
            channel=channel,
            respondent_id=respondent_id,
            message=Outbound(text, (Button("1 Yes", "consent:1"),)),
            now=NOW,
        )


def status_of(engine: sa.Engine, message_id: int) -> tuple[Any, ...]:
    """(status, attempts, provider message id, error)"""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                outbox_table.c.status,
                outbox_table.c.attempts,
                outbox_table.c.provider_message_id,
                outbox_table.c.error,
            ).where(outbox_table.c.id == message_id)
        ).one()
    return tuple(row)


def test_a_queued_message_is_claimed_once_and_marked_sent(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2001")
    message_id = queue(engine, respondent, "Hello")
    assert outbox.claim(engine, "sms", 10, NOW) == []  # another channel's worker
    claimed = outbox.claim(engine, "telegram", 10, NOW)
    assert claimed == [
        outbox.OutboxMessage(
            id=message_id,
            channel="telegram",
            urn="telegram:2001",
            text="Hello",
            buttons=(Button("1 Yes", "consent:1"),),
            attempts=1,
        )
    ]
    assert outbox.claim(engine, "telegram", 10, NOW) == []
    outbox.mark_sent(engine, message_id, "tg-77", NOW)
    assert status_of(engine, message_id) == ("sent", 1, "tg-77", None)


def test_claims_come_oldest_first_up_to_the_limit(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2002")
    ids = [queue(engine, respondent, f"message {n}") for n in range(5)]
    assert [m.id for m in outbox.claim(engine, "telegram", 2, NOW)] == ids[:2]
    assert [m.id for m in outbox.claim(engine, "telegram", 10, NOW)] == ids[2:]


def test_a_failure_with_a_retry_time_is_claimed_again_only_from_then(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2003")
    message_id = queue(engine, respondent, "Hello")
    outbox.claim(engine, "telegram", 10, NOW)
    outbox.mark_failed(engine, message_id, "429 retry_after 300", NOW, retry_at=LATER)
    assert status_of(engine, message_id) == ("pending", 1, None, "429 retry_after 300")
    assert outbox.claim(engine, "telegram", 10, LATER - timedelta(seconds=1)) == []
    [again] = outbox.claim(engine, "telegram", 10, LATER)
    assert (again.id, again.attempts) == (message_id, 2)


def test_a_failure_without_a_retry_time_is_final(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2004")
    message_id = queue(engine, respondent, "Hello")
    outbox.claim(engine, "telegram", 10, NOW)
    outbox.mark_failed(engine, message_id, "400 chat not found", NOW, retry_at=None)
    assert outbox.claim(engine, "telegram", 10, LATER) == []
    outbox.mark_sent(engine, message_id, "late", LATER)  # a final status never goes back
    assert status_of(engine, message_id) == ("failed", 1, None, "400 chat not found")


def test_a_message_left_sending_is_never_sent_again_automatically(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2005")
    message_id = queue(engine, respondent, "Hello")
    outbox.claim(engine, "telegram", 10, NOW)  # the worker dies before recording the send
    assert outbox.claim(engine, "telegram", 10, NOW + timedelta(days=1)) == []
    assert status_of(engine, message_id)[0] == "sending"


def test_nothing_goes_to_someone_opted_out_or_unreachable(engine: sa.Engine) -> None:
    stopped = add_respondent(engine, "telegram:2006", opted_out=True)
    blocked = add_respondent(engine, "telegram:2007")
    with engine.begin() as conn:
        conn.execute(
            sa.update(respondents).where(respondents.c.id == blocked).values(unreachable=True)
        )
    reachable = add_respondent(engine, "telegram:2008")
    to_stopped, to_blocked = queue(engine, stopped, "a"), queue(engine, blocked, "b")
    to_reachable = queue(engine, reachable, "c")
    assert [m.id for m in outbox.claim(engine, "telegram", 10, NOW)] == [to_reachable]
    assert status_of(engine, to_stopped) == ("failed", 0, None, "opted out")
    assert status_of(engine, to_blocked) == ("failed", 0, None, "unreachable")


def test_a_turn_claims_its_own_replies_and_nothing_else(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2010")
    older, own = queue(engine, respondent, "older"), queue(engine, respondent, "own")
    assert [m.id for m in outbox.claim_ids(engine, "telegram", [own], NOW)] == [own]
    assert outbox.claim_ids(engine, "telegram", [own], NOW) == []  # already claimed
    assert outbox.claim_ids(engine, "telegram", [], NOW) == []
    assert [m.id for m in outbox.claim(engine, "telegram", 10, NOW)] == [older]


def test_the_reply_to_stop_is_sent_but_nothing_queued_before_it_or_by_staff(
    engine: sa.Engine, flow: Flow
) -> None:
    times = iter([NOW, LATER])
    handler = TurnHandler(engine, flow, clock=lambda: next(times))
    urn = "telegram:2011"
    unsent = send(handler, urn, "/start", channel="telegram", queue_replies=True).queued
    confirmation = send(handler, urn, "STOP", channel="telegram", queue_replies=True).queued
    with engine.connect() as conn:
        respondent = conn.execute(sa.select(respondents.c.id)).scalar_one()
    check_in = queue(engine, respondent, "How are you getting on?")
    assert len(unsent) == len(confirmation) == 1
    assert [m.id for m in outbox.claim(engine, "telegram", 10, LATER)] == list(confirmation)
    for message_id in (*unsent, check_in):
        assert status_of(engine, message_id) == ("failed", 0, None, "opted out")


def test_workers_claiming_at_once_never_get_the_same_message(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2009")
    ids = {queue(engine, respondent, f"message {n}") for n in range(120)}
    barrier = threading.Barrier(4)
    claimed: list[list[int]] = [[], [], [], []]

    def worker(index: int) -> None:
        barrier.wait()
        while batch := outbox.claim(engine, "telegram", 3, NOW):
            claimed[index].extend(message.id for message in batch)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every_claim = [message_id for batch in claimed for message_id in batch]
    assert sorted(every_claim) == sorted(ids)  # each message exactly once
