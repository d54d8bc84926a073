"""The scale-out benchmark: two nodes and two workers on one PostgreSQL, and checks that mean
something.

No timing is asserted: only that a respondent's messages alternate between the nodes, that the
load client sends each to its node one after another, that the checks notice a reply sent
twice and answers stored out of order, and (on PostgreSQL) that a tiny run through real
`dibot serve` and `dibot worker` processes passes them all.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from types import SimpleNamespace
from typing import ClassVar

import pytest
from sqlalchemy.engine import make_url

from bench import scale_out
from bench.fake_bot_api import Received
from bench.http_load import Request
from bench.scale_out import Message
from bench.split_load import Routed, at_once, run_split_load
from flows.model import Flow

DATABASE_URL_VARIABLE = "DIBOT_DATABASE_URL"
LONG_ENOUGH = 120.0
"""Seconds allowed per load: far more than the tiny counts need, so the count ends them."""
CHAT = 5_000_000


def telegram_message(position: int, update_id: str, questions: tuple[str, ...]) -> Message:
    return Message("telegram", 0, f"telegram:{CHAT}", position, update_id, "1", questions)


def test_one_respondents_consecutive_messages_go_to_alternate_nodes(flow: Flow) -> None:
    work = scale_out.plan(flow, 60, in_flight=3, telegram_slots=1)

    both = scale_out.routed(work.spread, 2)
    for slot, requests in zip(work.spread, both, strict=True):
        pairs = zip(slot, requests, strict=True)
        for (before, to_before), (after, to_after) in pairwise(pairs):
            if before.message.urn == after.message.urn:
                assert to_before.node != to_after.node
    nodes = [routed.node for slot in both for routed in slot]
    assert abs(nodes.count(0) - nodes.count(1)) <= len(work.spread)
    assert {routed.node for slot in scale_out.routed(work.alone, 1) for routed in slot} == {0}
    assert all(p.request.path == "/webhooks/telegram" for p in work.spread[-1])
    assert all(p.request.path == "/webhooks/twilio/sms" for p in work.spread[0])


def test_both_runs_do_the_same_work_from_different_respondents(flow: Flow) -> None:
    work = scale_out.plan(flow, 60, in_flight=3, telegram_slots=1)

    def shape(slots: tuple[tuple[scale_out.Planned, ...], ...]) -> list[list[tuple[str, str]]]:
        return [[(p.message.channel, p.message.body) for p in slot] for slot in slots]

    def people(slots: tuple[tuple[scale_out.Planned, ...], ...]) -> set[str]:
        return {p.message.urn for slot in slots for p in slot}

    assert shape(work.alone) == shape(work.spread)
    assert sum(len(slot) for slot in work.alone) == 60
    twice = {p.message.urn for p in work.at_once}
    assert not people(work.alone) & people(work.spread)
    assert not (people(work.alone) | people(work.spread)) & twice
    assert len(work.at_once) == scale_out.DUPLICATE_MESSAGES * (
        scale_out.DUPLICATE_SMS_RESPONDENTS + scale_out.DUPLICATE_TELEGRAM_RESPONDENTS
    )


def _telegram_replies(sends: list[str]) -> dict[str, int]:
    first, second = telegram_message(0, "1", ()), telegram_message(1, "2", ())
    by_id = {(m.channel, m.message_id): m for m in (first, second)}
    seen = [
        SimpleNamespace(id=10, channel="telegram", provider_message_id="1"),
        SimpleNamespace(id=11, channel="telegram", provider_message_id="2"),
    ]
    queued = [
        SimpleNamespace(inbox_id=10, text="Which language?", status="sent"),
        SimpleNamespace(inbox_id=11, text="Do you agree?", status="sent"),
    ]
    received = Received(tuple((CHAT, text) for text in sends), {"sendMessage": len(sends)})
    return scale_out.replies_against(by_id, seen, queued, received)


def test_the_check_notices_a_reply_sent_twice_lost_or_out_of_order() -> None:
    fine = {"replies_missing": 0, "replies_duplicated": 0, "chats_out_of_order": 0}
    assert _telegram_replies(["Which language?", "Do you agree?"]) == fine
    assert _telegram_replies(["Which language?", "Which language?", "Do you agree?"]) == {
        **fine,
        "replies_duplicated": 1,
    }
    assert _telegram_replies(["Which language?"]) == {**fine, "replies_missing": 1}
    assert _telegram_replies(["Do you agree?", "Which language?"]) == {
        **fine,
        "chats_out_of_order": 1,
    }


def test_the_check_notices_answers_stored_out_of_order() -> None:
    first = telegram_message(4, "5", ("GS01.skill",))
    second = telegram_message(5, "6", ("GS02.skill",))
    by_id = {(m.channel, m.message_id): m for m in (first, second)}
    at = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)

    def stored(*rows: tuple[str, str, datetime]) -> list[SimpleNamespace]:
        return [
            SimpleNamespace(
                channel="telegram", provider_message_id=mid, question=q, answered_at=when
            )
            for mid, q, when in rows
        ]

    later = at + timedelta(seconds=1)
    in_order = stored(("5", "GS01.skill", at), ("6", "GS02.skill", later))
    swapped = stored(("6", "GS02.skill", at), ("5", "GS01.skill", later))
    back_in_time = stored(("5", "GS01.skill", later), ("6", "GS02.skill", at))
    assert scale_out.answers_in_order([first, second], by_id, in_order) == (1, 1)
    assert scale_out.answers_in_order([first, second], by_id, swapped) == (1, 0)
    assert scale_out.answers_in_order([first, second], by_id, back_in_time) == (1, 0)


def test_the_command_needs_postgresql(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(DATABASE_URL_VARIABLE, raising=False)

    assert scale_out.main([]) == 2
    assert "--database-url" in capsys.readouterr().err
    assert scale_out.section(postgresql_url=None).ok is False


def test_two_nodes_and_two_workers_take_each_message_once_and_in_order() -> None:
    url = os.environ.get(DATABASE_URL_VARIABLE, "")
    if not url or make_url(url).get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL's scale-out: several nodes share one database only on PostgreSQL")

    section = scale_out.section(
        postgresql_url=url, seconds=LONG_ENOUGH, requests=48, in_flight=4, telegram_slots=1
    )

    assert section.key == "scale_out"
    assert section.ok, section.markdown
    one, two = section.raw["runs"]
    assert (one["nodes"], two["nodes"]) == (1, 2)
    assert one["failures"] == two["failures"] == {}
    assert len(one["per_node"]) == 1
    assert min(two["per_node"]) > 0
    check = section.raw["check"]
    assert check["ok"], check
    assert check["messages_sent"] == check["inbox_rows"] >= 2 * 48
    assert check["answers_sent"] == check["answers_stored"] > 0
    assert check["respondents_in_order"] == check["respondents"] > 0
    assert check["replies_received"] == check["replies_queued"] > 0
    assert section.raw["fake_bot_api_calls"]["sendMessage"] == check["replies_queued"]
    both = section.raw["at_once"]
    assert both["messages"] == both["same_reply"] > 0
    assert both["failures"] == []  # as the raw numbers come back from JSON
    assert all(goal.met for goal in section.goals), section.markdown


class _Recorder(BaseHTTPRequestHandler):
    """Answers 200 and notes which port took which path, in the order they arrived."""

    arrivals: ClassVar[list[tuple[int, str]]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            self.arrivals.append((self.connection.getsockname()[1], self.path))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_the_client_sends_each_request_to_its_node_one_after_another() -> None:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Recorder) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    ports = [server.server_port for server in servers]
    slots = [
        [Routed(n % 2, Request("POST", f"/slot{slot}/{n}", b"x")) for n in range(6)]
        for slot in range(3)
    ]
    try:
        result = run_split_load(ports, slots, warmup=1, seconds=LONG_ENOUGH)
        twice = at_once(ports, Request("POST", "/retry", b"x"))
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()

    assert result.timing.failures == ()
    assert [slot.sent for slot in result.slots] == [6, 6, 6]
    arrivals = _Recorder.arrivals
    for slot in range(3):
        mine = [(port, path) for port, path in arrivals if path.startswith(f"/slot{slot}/")]
        assert mine == [(ports[n % 2], f"/slot{slot}/{n}") for n in range(6)]
    assert [answer.status for answer in twice] == [200, 200]
    assert sorted(port for port, path in arrivals if path == "/retry") == sorted(ports)
