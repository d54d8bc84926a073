"""Delivery reports as Twilio sends them: status callbacks for messages the SMS sender sent
through the fake Twilio, signed by twilio's own RequestValidator, posted to the app.

A report moves the outbox row's delivery status only forward, whatever order or how many times
reports come; a forged one changes nothing (403); one for a message we never sent changes
nothing and is still acknowledged (204). Errors that say the number cannot be texted stop every
later text. Runs on SQLite, or on PostgreSQL when DIBOT_DATABASE_URL names it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from dibot.config import Config, DatabaseConfig, FlowConfig, TwilioConfig
from dibot.runtime import Runtime
from dibot.turns import TurnHandler
from dibot.web import create_app
from flows.model import Flow
from storage import outbox
from storage.models import DELIVERY_STATUSES
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.test_sms_outbox import (
    PUBLIC_URL,
    SENDER,
    StepClock,
    drain,
    make_sender,
    phone,
    queue,
    respondent,
    row,
)

STATUS_PATH = "/webhooks/twilio/status"
SIGNATURE_HEADER = "X-Twilio-Signature"
REPORTED_AT = datetime(2027, 3, 1, 10, 5, tzinfo=UTC)


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def app(database_url: str, flow: Flow) -> Iterator[Flask]:
    config = Config(
        database=DatabaseConfig(url=database_url),
        twilio=TwilioConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            from_number=SENDER,
            public_url=PUBLIC_URL,
        ),
        flow=FlowConfig(languages="en"),
    )
    app = create_app(config, flow=flow)
    yield app
    runtime: Runtime = app.extensions["dibot"]
    runtime.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def handler(engine: sa.Engine, flow: Flow, clock: StepClock) -> TurnHandler:
    return TurnHandler(engine, flow, clock=clock.now)


def send_texts(
    twilio: FakeTwilio,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
    numbers: list[str],
) -> dict[str, tuple[int, str]]:
    """Queue and send one text to each number: number -> (outbox id, Message SID)."""
    ids = {
        number: queue(engine, flow, number, f"Invitation for {number[-3:]}") for number in numbers
    }
    with make_sender(twilio, engine, handler, clock, rate=10_000) as sender:
        drain(sender, clock)
    return {
        number: (ids[number], row(engine, ids[number])["provider_message_id"]) for number in ids
    }


def report(
    client: FlaskClient,
    twilio: FakeTwilio,
    sid: str,
    status: str,
    error_code: int | None = None,
    *,
    at: datetime = REPORTED_AT,
) -> int:
    """Post the callback Twilio would send for the message it took as `sid`."""
    url, params, signature = twilio.status_callback(sid, status, error_code)
    assert url == PUBLIC_URL + STATUS_PATH
    with time_machine.travel(at, tick=False):
        response = client.post(
            urlsplit(url).path, data=params, headers={SIGNATURE_HEADER: signature}
        )
    return response.status_code


def delivery(engine: sa.Engine, outbox_id: int) -> tuple[Any, ...]:
    found = row(engine, outbox_id)
    return found["delivery_status"], found["delivery_error_code"], found["delivery_updated_at"]


def test_reports_are_recorded_on_the_row_of_the_message_they_name(
    twilio: FakeTwilio,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
    client: FlaskClient,
) -> None:
    texts = send_texts(twilio, engine, flow, handler, clock, [phone(1), phone(2)])
    (first, first_sid), (second, _) = texts[phone(1)], texts[phone(2)]

    assert report(client, twilio, first_sid, "sent") == 204
    assert delivery(engine, first) == ("sent", None, REPORTED_AT)
    later = REPORTED_AT + timedelta(seconds=4)
    assert report(client, twilio, first_sid, "delivered", at=later) == 204
    assert delivery(engine, first) == ("delivered", None, later)
    assert delivery(engine, second)[0] == "queued"  # as Twilio said when it took it


@pytest.mark.parametrize(
    ("reports", "final"),
    [
        (["delivered", "sent"], "delivered"),
        (["sent", "queued", "sending"], "sent"),
        (["undelivered", "delivered", "sent"], "undelivered"),
        (["failed", "delivered", "read"], "failed"),
        (["delivered", "read", "delivered", "sent"], "read"),
        (["read", "delivered"], "read"),
        (["sending", "sent", "delivered"], "delivered"),
    ],
)
def test_a_status_never_moves_backwards(
    twilio: FakeTwilio,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
    client: FlaskClient,
    reports: list[str],
    final: str,
) -> None:
    ((outbox_id, sid),) = send_texts(twilio, engine, flow, handler, clock, [phone(1)]).values()
    for status in reports:
        assert report(client, twilio, sid, status) == 204
    assert delivery(engine, outbox_id)[0] == final


def test_a_repeated_report_changes_nothing(
    twilio: FakeTwilio,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
    client: FlaskClient,
) -> None:
    ((outbox_id, sid),) = send_texts(twilio, engine, flow, handler, clock, [phone(1)]).values()
    report(client, twilio, sid, "undelivered", 30007)
    assert (
        report(client, twilio, sid, "undelivered", 30007, at=REPORTED_AT + timedelta(hours=1))
        == 204
    )
    assert delivery(engine, outbox_id) == ("undelivered", 30007, REPORTED_AT)


@pytest.mark.parametrize("code", [30003, 30005, 30006])
def test_a_number_that_cannot_take_texts_makes_the_respondent_unreachable(
    twilio: FakeTwilio,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
    client: FlaskClient,
    code: int,
) -> None:
    texts = send_texts(twilio, engine, flow, handler, clock, [phone(1), phone(2)])
    (outbox_id, sid), (_, other_sid) = texts[phone(1)], texts[phone(2)]

    assert report(client, twilio, sid, "undelivered", code) == 204
    assert report(client, twilio, other_sid, "delivered") == 204

    assert delivery(engine, outbox_id) == ("undelivered", code, REPORTED_AT)
    assert respondent(engine, phone(1)) == {"opted_out": False, "unreachable": True}
    assert respondent(engine, phone(2)) == {"opted_out": False, "unreachable": False}
    reminder = queue(engine, flow, phone(1), "A reminder", kind="reminder", now=clock.now())
    with make_sender(twilio, engine, handler, clock) as sender:
        drain(sender, clock)
    assert (row(engine, reminder)["status"], row(engine, reminder)["error"]) == (
        "failed",
        "unreachable",
    )
    assert len(twilio.received) == 2


@pytest.mark.parametrize(("status", "code"), [("undelivered", 30007), ("failed", 30008)])
def test_other_delivery_errors_are_only_recorded(
    twilio: FakeTwilio,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
    client: FlaskClient,
    status: str,
    code: int,
) -> None:
    ((outbox_id, sid),) = send_texts(twilio, engine, flow, handler, clock, [phone(1)]).values()
    assert report(client, twilio, sid, status, code) == 204
    assert delivery(engine, outbox_id) == (status, code, REPORTED_AT)
    assert respondent(engine, phone(1)) == {"opted_out": False, "unreachable": False}


def test_21610_in_a_report_opts_the_respondent_out(
    twilio: FakeTwilio,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
    client: FlaskClient,
) -> None:
    ((outbox_id, sid),) = send_texts(twilio, engine, flow, handler, clock, [phone(1)]).values()
    assert report(client, twilio, sid, "failed", 21610) == 204
    assert delivery(engine, outbox_id) == ("failed", 21610, REPORTED_AT)
    assert respondent(engine, phone(1))["opted_out"]
    checkin = queue(engine, flow, phone(1), "A check-in", kind="checkin", now=clock.now())
    with make_sender(twilio, engine, handler, clock) as sender:
        drain(sender, clock)
    assert (row(engine, checkin)["status"], row(engine, checkin)["error"]) == (
        "failed",
        "opted out",
    )


def test_a_report_for_a_message_we_never_sent_changes_nothing_and_is_acknowledged(
    twilio: FakeTwilio,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
    client: FlaskClient,
) -> None:
    ((outbox_id, _),) = send_texts(twilio, engine, flow, handler, clock, [phone(1)]).values()
    before = row(engine, outbox_id)
    params = {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": "SM" + "f" * 32,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "To": phone(1),
        "From": SENDER,
    }
    url = PUBLIC_URL + STATUS_PATH
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    response = client.post(STATUS_PATH, data=params, headers={SIGNATURE_HEADER: signature})
    assert response.status_code == 204
    assert row(engine, outbox_id) == before
    assert respondent(engine, phone(1)) == {"opted_out": False, "unreachable": False}


@pytest.mark.parametrize("forgery", ["wrong token", "status changed", "other url", "unsigned"])
def test_a_forged_report_is_refused_and_changes_nothing(
    twilio: FakeTwilio,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
    client: FlaskClient,
    forgery: str,
) -> None:
    ((outbox_id, sid),) = send_texts(twilio, engine, flow, handler, clock, [phone(1)]).values()
    url, params, signature = twilio.status_callback(sid, "undelivered", 30003)
    headers = {SIGNATURE_HEADER: signature}
    if forgery == "wrong token":
        headers[SIGNATURE_HEADER] = RequestValidator("not-the-token").compute_signature(url, params)
    elif forgery == "status changed":
        params["ErrorCode"] = "30005"
    elif forgery == "other url":
        other = "https://elsewhere.example.com" + STATUS_PATH
        headers[SIGNATURE_HEADER] = RequestValidator(AUTH_TOKEN).compute_signature(other, params)
    else:
        headers = {}
    response = client.post(STATUS_PATH, data=params, headers=headers)
    assert response.status_code == 403
    assert delivery(engine, outbox_id) == ("queued", None, clock.now())
    assert respondent(engine, phone(1)) == {"opted_out": False, "unreachable": False}


def test_reports_arriving_at_once_in_any_order_settle_on_the_furthest(
    twilio: FakeTwilio,
    engine: sa.Engine,
    flow: Flow,
    handler: TurnHandler,
    clock: StepClock,
    app: Flask,
) -> None:
    """40 messages, each with four reports shuffled together and posted from 8 threads."""
    numbers = [phone(n) for n in range(40)]
    texts = send_texts(twilio, engine, flow, handler, clock, numbers)
    chooser = Random(20270301)
    ends = {number: chooser.choice(["delivered", "undelivered", "read"]) for number in numbers}
    reports: list[tuple[str, str, int | None]] = []
    for number, (_, sid) in texts.items():
        final = ends[number]
        reports += [(sid, "queued", None), (sid, "sending", None), (sid, "sent", None)]
        reports.append((sid, final, 30003 if final == "undelivered" else None))
        if final == "read":
            reports.append((sid, "delivered", None))
    chooser.shuffle(reports)
    signed = [twilio.status_callback(*one) for one in reports]
    local = threading.local()

    def post(callback: tuple[str, dict[str, str], str]) -> int:
        if not hasattr(local, "client"):
            local.client = app.test_client()
        url, params, signature = callback
        response = local.client.post(
            urlsplit(url).path, data=params, headers={SIGNATURE_HEADER: signature}
        )
        return int(response.status_code)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(post, signed))

    assert answers == [204] * len(signed)
    for number, (outbox_id, _) in texts.items():
        assert delivery(engine, outbox_id)[0] == ends[number]
        assert respondent(engine, phone(int(number[-3:])))["unreachable"] == (
            ends[number] == "undelivered"
        )


def test_every_delivery_status_has_its_place_in_the_order() -> None:
    for status in DELIVERY_STATUSES:
        assert status not in outbox.may_replace(status)
    assert outbox.may_replace("delivered") == ("accepted", "queued", "sending", "sent")
    assert outbox.may_replace("read") == ("accepted", "queued", "sending", "sent", "delivered")
