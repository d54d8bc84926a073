"""The Twilio SMS webhook as Twilio meets it: requests signed by twilio's own RequestValidator.

A signed message gets TwiML with the next prompt and its answer is stored once; anything not
signed for exactly this URL gets 403 and leaves no trace; odd bodies get a helpful reply.
Runs on SQLite, or on PostgreSQL when DIBOT_DATABASE_URL names it (see conftest.py).
"""

from __future__ import annotations

import logging
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from dibot.config import Config, CouncilConfig, DatabaseConfig, FlowConfig, TwilioConfig
from dibot.runtime import Runtime, load_configured_flow
from dibot.web import create_app
from flows.model import Flow
from storage import timeline

TOKEN = "test-auth-token-not-a-secret"
PUBLIC_URL = "https://dibot.example.gov.uk"
SMS = "/webhooks/twilio/sms"
STATUS = "/webhooks/twilio/status"
SENDER = "+447700900123"
COUNCIL = CouncilConfig(name="Testshire Council", privacy_url="testshire.gov.uk/privacy")
ENGLISH_ONLY = FlowConfig(languages="en")
"""Webhook behaviour, not the language choice (the transcripts take that over SMS)."""


@contextmanager
def running_app(config: Config, flow: Flow) -> Iterator[Flask]:
    app = create_app(config, flow=flow)
    try:
        yield app
    finally:
        runtime: Runtime = app.extensions["dibot"]
        runtime.engine.dispose()


@pytest.fixture(scope="module")
def council_flow() -> Flow:
    return load_configured_flow(Config(council=COUNCIL, flow=ENGLISH_ONLY))


@pytest.fixture
def config(database_url: str) -> Config:
    return Config(
        database=DatabaseConfig(url=database_url),
        twilio=TwilioConfig(auth_token=TOKEN, public_url=PUBLIC_URL),
        council=COUNCIL,
        flow=ENGLISH_ONLY,
    )


@pytest.fixture
def app(config: Config, council_flow: Flow) -> Iterator[Flask]:
    with running_app(config, council_flow) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def signature(url: str, params: Mapping[str, str], token: str = TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


def inbound(body: str | None, sid: str | None = None, **extra: str) -> dict[str, str]:
    """The parameters Twilio posts for an inbound SMS (Body left out when None)."""
    sid = sid or f"SM{uuid.uuid4().hex}"
    params = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": SENDER,
        "To": "+447700900999",
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    if body is not None:
        params["Body"] = body
    params.update(extra)
    return params


def post(
    client: FlaskClient,
    params: Mapping[str, str],
    *,
    path: str = SMS,
    signed_for: str | None = None,
    token: str = TOKEN,
    base_url: str = "http://localhost",
    headers: Mapping[str, str] | None = None,
) -> TestResponse:
    """Post as Twilio does, signed for `signed_for` (default: the public URL of `path`)."""
    sig = signature(signed_for or PUBLIC_URL + path, params, token)
    sent = {**(headers or {}), "X-Twilio-Signature": sig}
    return client.post(path, data=dict(params), headers=sent, base_url=base_url)


def messages(response: TestResponse) -> list[str]:
    """The texts of the TwiML <Message> elements (parsing proves the XML is well formed)."""
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.get_data())
    assert root.tag == "Response"
    return [element.text or "" for element in root.findall("Message")]


def count(app: Flask, table: str) -> int:
    runtime: Runtime = app.extensions["dibot"]
    with runtime.engine.connect() as connection:
        return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def question_text(message: str) -> str:
    """ "3/22 Do you have…?\n1 No…" -> "Do you have…?" (without progress and options)."""
    return message.split("\n")[0].split(" ", 1)[1]


def reach_first_question(client: FlaskClient) -> str:
    """Consent, then the quick check: returns the first question's message."""
    for body in ("Hi", "1"):
        assert len(messages(post(client, inbound(body)))) == 1
    (question,) = messages(post(client, inbound("1")))
    return question


def test_known_answer_vector_from_twilio_with_form_multidict() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    form = MultiDict(
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
    )
    validator = RequestValidator("12345")
    assert validator.compute_signature(url, form) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert validator.validate(url, form, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_first_message_gets_the_consent_prompt_with_the_council_named(
    client: FlaskClient,
) -> None:
    (reply,) = messages(post(client, inbound("Hello")))
    assert "Testshire Council" in reply
    assert "testshire.gov.uk/privacy" in reply
    assert "\n1 " in reply


def test_an_answer_is_stored_once_and_the_next_question_follows(
    app: Flask, client: FlaskClient
) -> None:
    first = reach_first_question(client)
    assert count(app, "answers") == 0
    (reply,) = messages(post(client, inbound("2")))
    assert reply != first
    assert count(app, "answers") == 1


def forge(how: str, params: dict[str, str]) -> dict[str, str]:
    """Headers for a request that Twilio did not sign as it arrives (may alter `params`)."""
    genuine = signature(PUBLIC_URL + SMS, params)
    if how == "missing":
        return {}
    if how == "garbage":
        return {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
    if how == "other-url":
        return {"X-Twilio-Signature": signature("https://evil.example.com" + SMS, params)}
    if how == "other-token":
        return {"X-Twilio-Signature": signature(PUBLIC_URL + SMS, params, "another-token")}
    if how == "body-changed":
        params["Body"] = "4"
    elif how == "parameter-added":
        params["Extra"] = "1"
    return {"X-Twilio-Signature": genuine}


@pytest.mark.parametrize(
    "how", ["missing", "garbage", "other-url", "other-token", "body-changed", "parameter-added"]
)
def test_unsigned_requests_are_refused_and_leave_no_trace(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    params = inbound("Hello from +447700900123")
    headers = forge(how, params)
    with caplog.at_level(logging.DEBUG):
        response = client.post(SMS, data=params, headers=headers)
    assert response.status_code == 403
    assert "Message" not in response.get_data(as_text=True)
    for table in ("respondents", "inbox", "conversations", "answers"):
        assert count(app, table) == 0
    assert "refused" in caplog.text
    for secret in (SENDER, "Hello", TOKEN):
        assert secret not in caplog.text


def test_status_callback_without_a_valid_signature_is_refused(client: FlaskClient) -> None:
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": SENDER}
    response = post(client, params, path=STATUS, signed_for=PUBLIC_URL + SMS)
    assert response.status_code == 403


def test_no_auth_token_configured_refuses_everything(config: Config, council_flow: Flow) -> None:
    without_token = replace(config, twilio=TwilioConfig(public_url=PUBLIC_URL))
    with running_app(without_token, council_flow) as app:
        response = post(app.test_client(), inbound("Hello"), token="")
        assert response.status_code == 403
        assert count(app, "inbox") == 0


def test_behind_a_tls_proxy_the_public_url_is_what_is_checked(
    app: Flask, client: FlaskClient
) -> None:
    params = inbound("Hello")
    response = post(
        client,
        params,
        base_url="http://10.0.0.5:8000",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
    )
    assert len(messages(response)) == 1
    assert count(app, "inbox") == 1


def test_a_query_string_is_part_of_what_is_signed(client: FlaskClient) -> None:
    params = inbound("Hello")
    path = SMS + "?node=b"
    assert len(messages(post(client, params, path=path))) == 1
    refused = post(client, inbound("Hello"), path=path, signed_for=PUBLIC_URL + SMS)
    assert refused.status_code == 403


def test_without_public_url_the_request_url_is_checked(config: Config, council_flow: Flow) -> None:
    direct = replace(config, twilio=TwilioConfig(auth_token=TOKEN))
    with running_app(direct, council_flow) as app:
        client = app.test_client()
        params = inbound("Hello")
        ok = post(client, params, signed_for="http://localhost" + SMS)
        assert len(messages(ok)) == 1
        refused = post(client, inbound("Hello"))  # signed for the public URL
        assert refused.status_code == 403


def test_unknown_extra_parameters_still_validate_and_geo_fields_are_not_kept(
    app: Flask, client: FlaskClient
) -> None:
    params = inbound(
        "Hello",
        FromCity="LONDON",
        FromZip="SW1A",
        FromCountry="GB",
        SomeFieldTwilioAddsNextYear="x",
        MediaContentType0="",
    )
    assert len(messages(post(client, params))) == 1
    runtime: Runtime = app.extensions["dibot"]
    with runtime.engine.connect() as connection:
        for table in ("respondents", "inbox", "conversations"):
            rows = connection.execute(sa.text(f"SELECT * FROM {table}")).all()
            assert "LONDON" not in repr(rows)
            assert "SW1A" not in repr(rows)


def test_the_same_message_sid_twice_gets_the_same_reply_and_one_answer(
    app: Flask, client: FlaskClient
) -> None:
    reach_first_question(client)
    params = inbound("3", sid="SM" + "d" * 32)
    first = post(client, params)
    again = post(client, params)
    assert messages(first) == messages(again)
    assert first.get_data() == again.get_data()
    assert count(app, "answers") == 1
    (next_question,) = messages(post(client, inbound("2")))
    assert next_question != messages(first)[0]
    assert count(app, "answers") == 2


def test_the_fallback_url_with_the_same_sid_changes_nothing(
    app: Flask, client: FlaskClient
) -> None:
    reach_first_question(client)
    params = inbound("4", sid="SM" + "f" * 32)
    first = post(client, params)
    fallback = inbound("4", sid="SM" + "f" * 32, ErrorCode="11200", ErrorUrl=PUBLIC_URL + SMS)
    assert messages(post(client, fallback)) == messages(first)
    assert count(app, "answers") == 1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(None, id="missing-body"),
        pytest.param("", id="empty"),
        pytest.param("   \n\t ", id="whitespace"),
        pytest.param("x" * 1600, id="1600-chars"),
        pytest.param("7" * 1600, id="1600-digits"),
        pytest.param("😀🎉👍", id="emoji-only"),
        pytest.param("مرحبا، أحتاج مساعدة", id="right-to-left"),
        pytest.param("\u200b\u200e\u202e\u2066\ufeff", id="zero-width-and-bidi"),
        pytest.param("\x00\x01\x07\x1b[2J\x7f", id="control-chars"),
        pytest.param("x'); DROP TABLE answers; --", id="sql-injection"),
        pytest.param("<script>alert(1)</script>]]><Message>9</Message>", id="html-injection"),
        pytest.param("{{7*7}} ${7*7} %s %(n)s {n}", id="template-injection"),
    ],
)
def test_odd_bodies_get_a_helpful_reply_not_an_error(
    app: Flask, client: FlaskClient, body: str | None
) -> None:
    question = reach_first_question(client)
    response = post(client, inbound(body))
    (reply,) = messages(response)
    assert reply.strip()
    assert "<script>" not in reply
    assert count(app, "inbox") == 4
    assert count(app, "answers") == 0
    # The conversation carries on at the same question.
    (after,) = messages(post(client, inbound("REPEAT")))
    assert question_text(question) in after


def test_odd_bodies_as_the_very_first_message_get_the_consent_prompt(
    client: FlaskClient,
) -> None:
    for number, body in enumerate((None, "\x00", "😀", "<b>", "x" * 1600)):
        response = post(client, inbound(body, From=f"+4477009001{number:02d}"))
        (reply,) = messages(response)
        assert "Testshire Council" in reply


def test_media_with_no_text_says_only_text_is_read(app: Flask, client: FlaskClient) -> None:
    reach_first_question(client)
    params = inbound(
        "",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/media/ME1",
        MediaContentType0="image/jpeg",
    )
    (reply,) = messages(post(client, params))
    assert reply.strip()
    assert count(app, "answers") == 0


def test_a_message_without_sid_or_sender_is_a_bad_request(client: FlaskClient) -> None:
    params = inbound("Hello")
    del params["From"]
    assert post(client, params).status_code == 400


@pytest.mark.parametrize("keyword", ["STOP", "stop", " Stop ", "UNSUBSCRIBE", "cancel", "Quit"])
def test_twilio_opt_out_keywords_get_empty_twiml_and_are_recorded(
    app: Flask, client: FlaskClient, keyword: str
) -> None:
    reach_first_question(client)
    params = inbound(keyword)
    assert messages(post(client, params)) == []
    assert messages(post(client, params)) == []  # Twilio's retry: still nothing to send
    runtime: Runtime = app.extensions["dibot"]
    with runtime.engine.connect() as connection:
        opted_out = connection.execute(sa.text("SELECT opted_out FROM respondents")).scalar_one()
        respondent_id = connection.execute(sa.text("SELECT id FROM respondents")).scalar_one()
        last = timeline.read(connection, respondent_id)[-1]
    assert opted_out
    # Twilio confirmed it, not dibot: the timeline shows their word and nothing sent after it.
    assert (last.direction, last.kind, last.text) == ("in", "message", keyword)


def test_start_after_stop_resumes_at_the_same_question(client: FlaskClient) -> None:
    question = reach_first_question(client)
    messages(post(client, inbound("STOP")))
    (reply,) = messages(post(client, inbound("START")))
    assert question_text(question) in reply


def test_status_callback_is_acknowledged(client: FlaskClient) -> None:
    params = {
        "MessageSid": "SM" + "a" * 32,
        "MessageStatus": "delivered",
        "To": SENDER,
        "AccountSid": "AC" + "0" * 32,
    }
    assert post(client, params, path=STATUS).status_code == 204


def test_status_21610_opts_the_respondent_out_until_start(app: Flask, client: FlaskClient) -> None:
    reach_first_question(client)
    params = {
        "MessageSid": "SM" + "b" * 32,
        "MessageStatus": "undelivered",
        "ErrorCode": "21610",
        "To": SENDER,
    }
    assert post(client, params, path=STATUS).status_code == 204
    runtime: Runtime = app.extensions["dibot"]
    with runtime.engine.connect() as connection:
        opted_out = connection.execute(sa.text("SELECT opted_out FROM respondents")).scalar_one()
    assert opted_out
    assert messages(post(client, inbound("2"))) == []
    (reply,) = messages(post(client, inbound("START")))
    assert "1/22" in reply
    with runtime.engine.connect() as connection:
        opted_out = connection.execute(sa.text("SELECT opted_out FROM respondents")).scalar_one()
    assert not opted_out


@pytest.mark.parametrize("body", [" 2 ", "2\x00", "\u200b2\u200b", "2\x1b", "2 😀"])
def test_an_answer_wrapped_in_odd_characters_never_fails(
    app: Flask, client: FlaskClient, body: str
) -> None:
    reach_first_question(client)
    (reply,) = messages(post(client, inbound(body)))
    assert reply.strip()


def post_at_once(app: Flask, requests: list[dict[str, str]]) -> list[TestResponse]:
    """Each request from its own thread, released together."""
    barrier = threading.Barrier(len(requests))

    def send(params: dict[str, str]) -> TestResponse:
        client = app.test_client()
        barrier.wait(timeout=30)
        return post(client, params)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(send, requests))


def test_the_same_message_sid_at_the_same_moment_is_taken_once(
    app: Flask, client: FlaskClient
) -> None:
    reach_first_question(client)
    params = inbound("5", sid="SM" + "c" * 32)
    responses = post_at_once(app, [params] * 8)
    bodies = {response.get_data() for response in responses}
    assert len(bodies) == 1
    assert all(response.status_code == 200 for response in responses)
    assert count(app, "answers") == 1


def test_two_messages_at_the_same_moment_answer_consecutive_questions(
    app: Flask, client: FlaskClient
) -> None:
    reach_first_question(client)
    responses = post_at_once(app, [inbound("2"), inbound("3")])
    assert len({messages(response)[0] for response in responses}) == 2
    assert count(app, "answers") == 2  # one answer per question: two questions answered


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("From", "+44" + "7" * 94, "From is not a phone number"),
        ("From", "+447700900123\x00", "From is not a phone number"),
        ("From", "07700 900123; DROP TABLE", "From is not a phone number"),
        ("MessageSid", "SM" + "a" * 127, "MessageSid is not a message id"),
        ("MessageSid", "SM\x00" + "a" * 32, "MessageSid is not a message id"),
    ],
)
def test_provider_ids_no_twilio_would_send_are_a_specific_400_on_every_database(
    app: Flask, client: FlaskClient, field: str, value: str, said: str
) -> None:
    response = post(client, inbound("Hello", **{field: value}))

    assert (response.status_code, response.get_data(as_text=True)) == (400, said + "\n")
    assert value not in response.get_data(as_text=True)
    assert count(app, "respondents") == count(app, "inbox") == 0


@pytest.mark.parametrize(
    "body", ["❶", "➀", "⓵", "፩", "1" * 5000, "2" * 4301, "٣" * 3, "x" * 20_000]
)
def test_digit_lookalikes_and_huge_bodies_get_a_reply_never_a_500(
    client: FlaskClient, body: str
) -> None:
    reach_first_question(client)
    (reply,) = messages(post(client, inbound(body)))
    assert reply.startswith("Sorry") or "1/22" in reply


def test_a_21610_for_a_number_too_long_or_never_seen_creates_nobody(
    app: Flask, client: FlaskClient
) -> None:
    params = {"MessageSid": "SM" + "e" * 32, "ErrorCode": "21610", "To": "+44" + "7" * 120}
    assert post(client, params, path=STATUS).status_code == 204
    assert count(app, "respondents") == 0
