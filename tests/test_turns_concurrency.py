"""Concurrent deliveries: duplicates at the same instant, two messages from one respondent at
once (threads and processes), many respondents at once. Nothing lost, nothing doubled."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from dibot.turns import TurnHandler
from flows.model import Flow
from storage.database import make_engine
from storage.models import Conversation, InboxEntry, Respondent, table
from tests.turn_helpers import NOW, quick_questions, send, start_quick_check, stored_answers

T = TypeVar("T")
URN = "tel:+447700900321"


@pytest.fixture
def handler(engine: sa.Engine, flow: Flow) -> TurnHandler:
    return TurnHandler(engine, flow, clock=lambda: NOW)


def at_once(count: int, work: Callable[[int], T]) -> list[T]:
    """Run `work(0)` … `work(count - 1)` in threads released together; re-raise any error."""
    barrier = threading.Barrier(count)

    def released(index: int) -> T:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(released, index) for index in range(count)]
        return [future.result() for future in futures]


def count_rows(engine: sa.Engine, model: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table(model))).scalar_one()


def test_the_same_message_from_eight_threads_is_one_answer_with_one_reply(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    results = at_once(8, lambda _: send(handler, URN, "4", "SM-same"))
    assert sorted(result.duplicate for result in results) == [False] + [True] * 7
    assert len({result.replies for result in results}) == 1
    assert stored_answers(engine, URN) == [(quick_questions(flow)[0], 4, "4")]


def test_a_new_respondents_first_message_from_eight_threads_creates_them_once(
    engine: sa.Engine, handler: TurnHandler
) -> None:
    results = at_once(8, lambda _: send(handler, "telegram:1001", "/start", "update-1"))
    assert sorted(result.duplicate for result in results) == [False] + [True] * 7
    assert len({result.replies for result in results}) == 1
    assert count_rows(engine, Respondent) == 1
    assert count_rows(engine, Conversation) == 1
    assert count_rows(engine, InboxEntry) == 1


def test_two_messages_at_the_same_instant_answer_consecutive_questions(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    questions = quick_questions(flow)
    for _ in range(5):  # 4 and 5: with a device and a connection, no skills choice comes up
        at_once(2, lambda index: send(handler, URN, str(index + 4)))
    stored = stored_answers(engine, URN)
    assert [question for question, _, _ in stored] == questions[:10]
    for pair in range(5):
        assert {option for _, option, _ in stored[2 * pair : 2 * pair + 2]} == {4, 5}


def _answer_in_own_process(url: str, flow: Flow, text: str, barrier: threading.Barrier) -> None:
    engine = make_engine(url)
    try:
        handler = TurnHandler(engine, flow, clock=lambda: NOW)
        barrier.wait()
        send(handler, URN, text, f"SM-process-{text}")
    finally:
        engine.dispose()


def test_two_messages_at_once_in_two_processes_answer_consecutive_questions(
    database_url: str, engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    processes = [
        context.Process(target=_answer_in_own_process, args=(database_url, flow, text, barrier))
        for text in ("1", "2")
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0, 0]
    stored = stored_answers(engine, URN)
    assert [question for question, _, _ in stored] == quick_questions(flow)[:2]
    assert {option for _, option, _ in stored} == {1, 2}


def test_fifty_respondents_ten_turns_each_with_duplicates_lose_and_double_nothing(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    questions = quick_questions(flow)[:10]

    def respondent(index: int) -> None:
        urn = f"tel:+447700900{100 + index:03d}"
        start_quick_check(handler, urn)
        for turn in range(10):
            message_id = f"SM-{index}-{turn}"
            option = str((index + turn) % 4 + 2)  # never "No" device: no skills choice
            first = send(handler, urn, option, message_id)
            again = send(handler, urn, option, message_id)  # the provider's retry
            assert again.duplicate
            assert again.replies == first.replies

    at_once(50, respondent)
    for index in range(50):
        expected = [
            (question, (index + turn) % 4 + 2, str((index + turn) % 4 + 2))
            for turn, question in enumerate(questions)
        ]
        assert stored_answers(engine, f"tel:+447700900{100 + index:03d}") == expected
