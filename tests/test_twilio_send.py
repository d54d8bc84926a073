"""Sending an SMS through Twilio's REST API, against a fake Twilio on 127.0.0.1.

Each outcome is checked with what the fake received: a send is only ever "retry_later" when
Twilio certainly did not take it, and "unknown" whenever it may have.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator

from channels.twilio_send import (
    SmsOutcome,
    TwilioSendSettings,
    TwilioSms,
    judge_refusal,
    retry_after,
    status_callback_url,
)
from flows.segments import count_segments
from tests.fake_twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    MESSAGING_SERVICE_SID,
    SERVICE_SENDER,
    FakeTwilio,
)
from tests.local_server import LocalServer

RESIDENT = "+447700900123"
OTHER_RESIDENT = "+447700900124"
SENDER = "+447700900000"
CALLBACK = "https://dibot.example.gov.uk/webhooks/twilio/status"
BODY = "Hello from Anytown Council. Reply 1 to start your digital skills check."
READ_TIMEOUT = 0.5


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


def settings_for(fake: FakeTwilio | None = None, **overrides: Any) -> TwilioSendSettings:
    values: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": SENDER,
        "status_callback_url": CALLBACK,
        "api_base_url": fake.base_url if fake else "https://api.twilio.com",
        "connect_timeout": 2.0,
        "read_timeout": READ_TIMEOUT,
    }
    values.update(overrides)
    return TwilioSendSettings(**values)


def send(fake: FakeTwilio, to: str = RESIDENT, body: str = BODY, **overrides: Any) -> SmsOutcome:
    with TwilioSms(settings_for(fake, **overrides)) as sms:
        return sms.send(to, body)


# Accepted.


def test_an_accepted_send_returns_twilios_sid_and_segment_count(twilio: FakeTwilio) -> None:
    outcome = send(twilio)
    (message,) = twilio.messages
    assert outcome == SmsOutcome(
        "accepted", "accepted by Twilio", message_sid=message.sid, segments=1
    )
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)


def test_the_fake_received_to_body_from_and_the_status_callback(twilio: FakeTwilio) -> None:
    send(twilio)
    (request,) = twilio.received
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.authorised
    assert request.username == ACCOUNT_SID
    assert dict(request.params) == {
        "To": RESIDENT,
        "From": SENDER,
        "Body": BODY,
        "StatusCallback": CALLBACK,
    }


@pytest.mark.parametrize(
    "body",
    [
        "a" * 161,  # GSM-7, two parts
        "Diolch! Byddwn yn anfon neges atoch ŵ",  # UCS-2 for ŵ, one part
        "Croeso ŵ " * 10,  # UCS-2, two parts
    ],
)
def test_the_segment_count_is_twilios(twilio: FakeTwilio, body: str) -> None:
    outcome = send(twilio, body=body)
    assert outcome.segments == count_segments(body).segments
    assert twilio.messages[0].body == body


def test_through_a_messaging_service_the_sender_is_twilios_choice(twilio: FakeTwilio) -> None:
    outcome = send(twilio, from_number="", messaging_service_sid=MESSAGING_SERVICE_SID)
    assert outcome.kind == "accepted"
    assert outcome.segments is None  # Twilio reports 0 until it has picked a sender
    (request,) = twilio.received
    assert dict(request.params) == {
        "To": RESIDENT,
        "MessagingServiceSid": MESSAGING_SERVICE_SID,
        "Body": BODY,
        "StatusCallback": CALLBACK,
    }


def test_a_messaging_service_wins_over_a_from_number(twilio: FakeTwilio) -> None:
    send(twilio, messaging_service_sid=MESSAGING_SERVICE_SID)
    (request,) = twilio.received
    assert request.params["MessagingServiceSid"] == MESSAGING_SERVICE_SID
    assert "From" not in request.params


def test_without_a_callback_url_none_is_sent(twilio: FakeTwilio) -> None:
    send(twilio, status_callback_url="")
    assert "StatusCallback" not in twilio.received[0].params


def test_twilio_edge_and_region_in_the_environment_do_not_move_the_host(
    twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    assert send(twilio).kind == "accepted"


def test_one_sender_sends_many_and_shares_between_threads(twilio: FakeTwilio) -> None:
    twilio.opt_out(OTHER_RESIDENT)
    outcomes: dict[str, list[str]] = {RESIDENT: [], OTHER_RESIDENT: []}
    with TwilioSms(settings_for(twilio)) as sms:

        def send_five(to: str) -> None:
            for _ in range(5):
                outcomes[to].append(sms.send(to, BODY).kind)

        threads = [threading.Thread(target=send_five, args=(to,)) for to in outcomes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert outcomes == {RESIDENT: ["accepted"] * 5, OTHER_RESIDENT: ["opted_out"] * 5}
    assert len(twilio.messages) == 5


# Refused by Twilio: never retried.


def test_21610_is_an_opt_out(twilio: FakeTwilio) -> None:
    twilio.opt_out(RESIDENT)
    outcome = send(twilio)
    assert outcome.kind == "opted_out"
    assert outcome.error_code == 21610
    assert outcome.error_message == "Attempt to send to unsubscribed recipient"
    assert outcome.http_status == 400
    assert twilio.messages == []


@pytest.mark.parametrize(
    ("arrange", "code", "words"),
    [
        (FakeTwilio.invalid_number, 21211, "The 'To' number +447700900123 is not a valid phone"),
        (FakeTwilio.not_mobile, 21614, "'To' number +447700900123 is not a valid mobile number"),
    ],
)
def test_other_4xx_refuse_the_message_for_good_keeping_twilios_code_and_words(
    twilio: FakeTwilio, arrange: Any, code: int, words: str
) -> None:
    arrange(twilio, RESIDENT)
    outcome = send(twilio)
    assert outcome.kind == "refused"
    assert outcome.error_code == code
    assert outcome.error_message is not None
    assert outcome.error_message.startswith(words)
    assert outcome.reason == f"Twilio refused the message (HTTP 400, error {code})"
    assert RESIDENT not in outcome.reason


def test_twilios_own_check_of_a_send_is_a_refusal(twilio: FakeTwilio) -> None:
    outcome = send(twilio, body="")
    assert (outcome.kind, outcome.error_code) == ("refused", 21602)


# Not taken: safe to send again later.


def test_429_is_retry_later_with_twilios_retry_after(twilio: FakeTwilio) -> None:
    twilio.rate_limit(retry_after=7)
    outcome = send(twilio)
    assert outcome.kind == "retry_later"
    assert outcome.retry_after == timedelta(seconds=7)
    assert (outcome.http_status, outcome.error_code) == (429, 20429)
    assert twilio.messages == []
    assert send(twilio).kind == "accepted"


def test_429_without_retry_after_leaves_the_wait_to_the_caller(twilio: FakeTwilio) -> None:
    twilio.rate_limit(retry_after=None)
    outcome = send(twilio)
    assert (outcome.kind, outcome.retry_after) == ("retry_later", None)


def test_a_5xx_from_twilio_is_retry_later(twilio: FakeTwilio) -> None:
    twilio.fail(500)
    outcome = send(twilio)
    assert (outcome.kind, outcome.http_status, outcome.error_code) == ("retry_later", 500, 20500)
    assert twilio.messages == []


def test_wrong_credentials_are_retry_later_and_name_the_settings(twilio: FakeTwilio) -> None:
    outcome = send(twilio, auth_token="not-the-token")
    assert outcome.kind == "retry_later"
    assert (outcome.http_status, outcome.error_code) == (401, 20003)
    assert "twilio.auth_token" in outcome.reason
    (request,) = twilio.received
    assert not request.authorised
    assert twilio.messages == []


def test_a_refused_connection_is_retry_later() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with TwilioSms(settings_for(api_base_url=f"http://127.0.0.1:{port}")) as sms:
        outcome = sms.send(RESIDENT, BODY)
    assert outcome == SmsOutcome("retry_later", "could not connect to Twilio (connection refused)")


def test_a_connect_timeout_is_retry_later() -> None:
    """A listener whose accept queue is full drops new connections' SYNs (Linux)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):
            filler = socket.socket()
            fillers.append(filler)
            filler.settimeout(0.2)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            pytest.fail("the accept queue never filled")
        base_url = f"http://127.0.0.1:{port}"
        with TwilioSms(settings_for(api_base_url=base_url, connect_timeout=0.2)) as sms:
            started = time.monotonic()
            outcome = sms.send(RESIDENT, BODY)
        assert time.monotonic() - started < 2
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert outcome == SmsOutcome("retry_later", "could not connect to Twilio (connect timeout)")


# Unknown: Twilio may have taken it. Never resent blindly.


def test_no_answer_within_the_read_timeout_is_unknown_and_twilio_did_take_it(
    twilio: FakeTwilio,
) -> None:
    twilio.stall(seconds=5)
    started = time.monotonic()
    outcome = send(twilio)
    assert time.monotonic() - started < 3
    assert outcome.kind == "unknown"
    assert outcome.reason == "no answer from Twilio in 0.5 s: it may have taken it"
    (request,) = twilio.received
    assert request.params["To"] == RESIDENT
    assert len(twilio.messages) == 1  # it was taken: a resend would reach the resident twice


def test_a_connection_dropped_after_sending_is_unknown(twilio: FakeTwilio) -> None:
    twilio.hang_up()
    outcome = send(twilio)
    assert outcome.kind == "unknown"
    assert len(twilio.received) == 1
    assert len(twilio.messages) == 1


def test_a_connection_reset_once_made_is_unknown_even_if_twilio_read_nothing(
    twilio: FakeTwilio,
) -> None:
    """The request's bytes had left: urllib3 reports a reset while sending as one while
    reading, so the client cannot tell this from a Twilio that took it, then failed."""
    twilio.reset_connection()
    outcome = send(twilio)
    assert outcome.kind == "unknown"
    assert twilio.resets_done == 1
    assert twilio.received == []
    assert send(twilio).kind == "accepted"


def test_a_5xx_page_from_something_in_front_of_twilio_is_unknown(twilio: FakeTwilio) -> None:
    twilio.fail(502, from_twilio=False)
    outcome = send(twilio)
    assert outcome.kind == "unknown"
    assert (outcome.http_status, outcome.error_code, outcome.error_message) == (502, None, None)


# Nothing personal in the logs.


def test_logs_carry_the_outcome_and_error_code_never_the_number_or_the_body(
    twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    twilio.invalid_number(OTHER_RESIDENT)  # Twilio's message names the number
    twilio.stall(seconds=5, to=RESIDENT)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("channels.twilio_send.http").setLevel(logging.DEBUG)
        try:
            with TwilioSms(settings_for(twilio)) as sms:
                sms.send(OTHER_RESIDENT, BODY)
                sms.send(RESIDENT, BODY)
        finally:
            logging.getLogger("channels.twilio_send.http").setLevel(logging.WARNING)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "SMS send: refused (Twilio error 21211)" in logged
    assert "SMS send: unknown" in logged
    for secret in ("7700900123", "7700900124", "07700", BODY, "Hello", AUTH_TOKEN):
        assert secret not in logged


def test_the_librarys_request_trace_is_kept_out_of_the_logs_by_default(
    twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        send(twilio)
    assert [record.getMessage() for record in caplog.records] == ["SMS send: accepted"]


# The judgement itself.


@pytest.mark.parametrize(
    ("status", "code", "content_type", "kind"),
    [
        (400, 21610, "application/json", "opted_out"),
        (400, 21211, "application/json", "refused"),
        (400, 21614, "application/json", "refused"),
        (404, 20404, "application/json", "refused"),
        (429, 20429, "application/json", "retry_later"),
        (429, None, "text/html", "retry_later"),
        (401, 20003, "application/json", "retry_later"),
        (500, 20500, "application/json; charset=utf-8", "retry_later"),
        (503, 20503, "application/problem+json", "retry_later"),
        (502, None, "text/html", "unknown"),
        (504, None, "", "unknown"),
        (302, None, "text/html", "unknown"),
    ],
)
def test_judging_an_error_answer(
    status: int, code: int | None, content_type: str, kind: str
) -> None:
    outcome = judge_refusal(status, code, "Twilio's words", {"Content-Type": content_type})
    assert outcome.kind == kind
    assert outcome.http_status == status


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "30"}, timedelta(seconds=30)),
        ({"Retry-After": " 0 "}, timedelta(0)),
        (
            {
                "Retry-After": "Wed, 01 Dec 2027 10:02:00 GMT",
                "Date": "Wed, 01 Dec 2027 10:00:30 GMT",
            },
            timedelta(seconds=90),
        ),
        (
            {
                "Retry-After": "Wed, 01 Dec 2027 09:00:00 GMT",
                "Date": "Wed, 01 Dec 2027 10:00:00 GMT",
            },
            timedelta(0),
        ),
        ({"Retry-After": "Wed, 01 Dec 2027 10:02:00 GMT"}, None),  # no Date to count from
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "９"}, None),
        ({"Retry-After": "9" * 40}, None),
        ({}, None),
    ],
)
def test_retry_after_in_seconds_or_as_a_date(headers: dict[str, str], wait: timedelta) -> None:
    assert retry_after(headers) == wait


def test_the_status_callback_url_is_the_public_url_and_the_status_path() -> None:
    assert status_callback_url("https://dibot.example.gov.uk/") == CALLBACK
    assert status_callback_url("https://dibot.example.gov.uk") == CALLBACK
    assert status_callback_url("") == ""


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"account_sid": ""}, "twilio.account_sid must be set"),
        ({"auth_token": ""}, "twilio.auth_token must be set"),
        ({"from_number": ""}, "twilio.messaging_service_sid or twilio.from_number must be set"),
        ({"api_base_url": "api.twilio.com"}, "twilio.api_base_url must be an http\\(s\\) URL"),
        ({"api_base_url": "ftp://api.twilio.com"}, "twilio.api_base_url must be an http"),
        ({"status_callback_url": "/webhooks/twilio/status"}, "the status callback URL must be"),
        ({"read_timeout": 0}, "timeouts must be over 0 seconds"),
        ({"connect_timeout": -1.0}, "timeouts must be over 0 seconds"),
    ],
)
def test_settings_that_cannot_send_are_refused_at_once(
    overrides: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        settings_for(**overrides)


# The fake's status callbacks, for the delivery-status tests to come.


def test_the_fake_signs_status_callbacks_as_twilio_does(twilio: FakeTwilio) -> None:
    send(twilio, from_number="", messaging_service_sid=MESSAGING_SERVICE_SID)
    sid = twilio.messages[0].sid
    url, params, signature = twilio.status_callback(sid, "undelivered", error_code=30003)
    assert url == CALLBACK
    assert params["MessageSid"] == params["SmsSid"] == sid
    assert params["MessageStatus"] == "undelivered"
    assert params["ErrorCode"] == "30003"
    assert (params["To"], params["From"]) == (RESIDENT, SERVICE_SENDER)
    assert params["MessagingServiceSid"] == MESSAGING_SERVICE_SID
    assert RequestValidator(AUTH_TOKEN).validate(url, params, signature)
    assert not RequestValidator("another-token").validate(url, params, signature)


def test_the_fake_posts_a_signed_status_callback(twilio: FakeTwilio) -> None:
    send(twilio)
    sid = twilio.messages[0].sid
    with _Receiver() as receiver:
        url = receiver.url + "/webhooks/twilio/status?node=2"
        assert twilio.post_status_callback(sid, "delivered", url=url) == 204
        (path, signature, form) = receiver.requests[0]
    assert path == "/webhooks/twilio/status?node=2"
    assert form["MessageStatus"] == "delivered"
    assert "ErrorCode" not in form
    assert RequestValidator(AUTH_TOKEN).validate(url, form, signature)


@dataclass
class _Received:
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    closed: bool = False


class _Receiver(LocalServer[_Received]):
    """A webhook receiver on 127.0.0.1 that records each POST and answers 204."""

    def __init__(self) -> None:
        self._state = _Received()
        super().__init__()

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        return self._state.requests

    @property
    def url(self) -> str:
        return self.origin

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        received = self._state

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                signature = self.headers.get("X-Twilio-Signature", "")
                received.requests.append((self.path, signature, form))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
