"""Nothing personal and no secret in any log line, failures and tracebacks included.

Whole assessments run over signed Twilio webhooks and over the Telegram webhook (its replies
sent to a fake Bot API by the outbox worker), with failures on the way: a request whose
signature does not match, an unsigned status callback, Telegram's secret wrong, a body that is
not JSON, an update dibot does not read, the database failing in the middle of one turn on
each channel (an engine event hook raises the driver's own OperationalError; the provider's
retry then succeeds), a Bot API that answers 500, STOP and START,
a 21610 status callback. Every log record is captured with the root logger at DEBUG and every
logger propagating to it (the levels dibot's own logging configuration gives a library's
logger stay: they are what is under test), and formatted with its traceback and stack. Then a
real `dibot serve` takes an assessment over HTTP, with bad signatures, Telegram posts (their
replies sent by a real `dibot worker`) and the database failing on one turn of each channel
(its answers table renamed away), and the stderr of both is read too.

No line may hold the phone number in any form (+447700900123, 447700900123, 07700900123,
7700900123), the Telegram chat id, any message body a resident sent or any text a resident
was sent, the Twilio auth token, the bot token (or its secret half) or the webhook secret.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from twilio.request_validator import RequestValidator

from channels.telegram import SECRET_HEADER, run_worker
from dibot.config import (
    Config,
    CouncilConfig,
    DatabaseConfig,
    FlowConfig,
    TelegramConfig,
    TwilioConfig,
)
from dibot.runtime import Runtime, load_configured_flow
from dibot.web import create_app
from flows.model import Flow
from storage.database import make_engine
from tests.fake_telegram import FakeTelegram, keyboard_payloads, tap_update, text_update
from tests.processes import DIBOT, STOP_LIMIT_SECONDS, environment, free_port, wait_for_health
from tests.telegram_support import FakeClock

PHONE = "+447700900123"
PHONE_FORMS = ("+447700900123", "447700900123", "07700900123", "7700900123")
CHAT = 918273645
TWILIO_TOKEN = "log-test-auth-token-4f9c2e71"
BOT_TOKEN = "918000111:AAH-log-test-bot-token-q8Zr"
WEBHOOK_SECRET = "log-test-webhook-secret_Xy7Kp"
PUBLIC_URL = "https://dibot.example.gov.uk"
SMS = "/webhooks/twilio/sms"
STATUS = "/webhooks/twilio/status"
TELEGRAM = "/webhooks/telegram"
GREETING = "Hello from the library, my number is 07700 900123"
NONSENSE = "zebra crossing forty two"
SECRETS = (TWILIO_TOKEN, BOT_TOKEN, BOT_TOKEN.split(":", 1)[1], WEBHOOK_SECRET)
FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(threadName)s: %(message)s")


class Conversation:
    """What a resident sent and was sent, to be looked for in the logs afterwards."""

    def __init__(self) -> None:
        self.bodies: set[str] = set()

    def said(self, text: str) -> None:
        self.bodies.add(text)

    def heard(self, text: str) -> None:
        for line in text.splitlines():
            self.bodies.add(line)

    def searched_for(self) -> set[str]:
        """Texts long enough to mean something if found (a lone "2" is in every log)."""
        return {text.strip() for text in self.bodies if len(text.strip()) >= 6}


# --- Twilio ---------------------------------------------------------------------------------


def signed(path: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> dict[str, str]:
    return {
        "X-Twilio-Signature": RequestValidator(token).compute_signature(PUBLIC_URL + path, params)
    }


def twiml_messages(body: bytes) -> list[str]:
    return [element.text or "" for element in ET.fromstring(body).findall("Message")]


class SmsResident:
    def __init__(self, client: FlaskClient, conversation: Conversation) -> None:
        self.client = client
        self.conversation = conversation

    def send(self, body: str, sid: str | None = None, expect: int = 200) -> list[str]:
        params = {"MessageSid": sid or f"SM{uuid.uuid4().hex}", "From": PHONE, "Body": body}
        params.update({"To": "+447700900999", "NumMedia": "0", "FromCity": "LONDON"})
        self.conversation.said(body)
        response = self.client.post(SMS, data=params, headers=signed(SMS, params))
        assert response.status_code == expect, response.status_code
        if expect != 200:
            return []
        replies = twiml_messages(response.get_data())
        for reply in replies:
            self.conversation.heard(reply)
        return replies


def third_option(reply: str) -> str | None:
    """The words of option 3 of the question in `reply` ("3 Sometimes" -> "Sometimes"); None
    when it asks no question (the priorities at the end)."""
    for line in reply.splitlines():
        if line.startswith("3 "):
            return line[2:]
    return None


# --- failures ---------------------------------------------------------------------------------


class FailOnce:
    """An engine event hook: the next statement that starts with `prefix` fails as the database
    driver itself fails (OperationalError), once."""

    def __init__(self, engine: sa.Engine, prefix: str) -> None:
        self.engine = engine
        self.prefix = prefix
        self.armed = False
        self.fired = 0
        event.listen(engine, "before_cursor_execute", self.hook)

    def hook(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.armed and statement.lstrip().upper().startswith(self.prefix):
            self.armed = False
            self.fired += 1
            raise self.engine.dialect.loaded_dbapi.OperationalError("server closed the connection")

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self.hook)


@contextmanager
def every_record(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every record at DEBUG: the root logger at DEBUG (as `logging.basicConfig(level=DEBUG)`
    would set it) and every logger propagating to it. Levels that a logger was given stay: dibot
    sets httpx's (its request lines carry the bot token) and Twilio's HTTP client's, SQLAlchemy
    its own; they are the logging configuration under test."""
    loggers = [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    with caplog.at_level(logging.DEBUG):
        for logger in loggers:
            logger.propagate = True
        try:
            yield
        finally:
            for logger in loggers:
                logger.propagate = False


def formatted(records: list[logging.LogRecord]) -> list[str]:
    """Every line of every record, message, traceback and stack."""
    return [line for record in records for line in FORMAT.format(record).splitlines()]


def leaks(lines: list[str], conversation: Conversation) -> list[str]:
    forbidden = [*PHONE_FORMS, str(CHAT), *SECRETS, *sorted(conversation.searched_for())]
    return [f"{term!r} in {line!r}" for line in lines for term in forbidden if term in line]


# --- in process -------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=BOT_TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def flow() -> Flow:
    council, english = CouncilConfig(name="Testshire Council"), FlowConfig(languages="en")
    return load_configured_flow(Config(council=council, flow=english))


@pytest.fixture
def config(database_url: str, fake: FakeTelegram) -> Config:
    return Config(
        database=DatabaseConfig(url=database_url),
        twilio=TwilioConfig(auth_token=TWILIO_TOKEN, public_url=PUBLIC_URL),
        telegram=TelegramConfig(
            bot_token=BOT_TOKEN, webhook_secret=WEBHOOK_SECRET, api_base_url=fake.base_url
        ),
        council=CouncilConfig(name="Testshire Council"),
        flow=FlowConfig(languages="en"),
    )


@pytest.fixture
def app(config: Config, flow: Flow) -> Iterator[Flask]:
    app = create_app(config, flow=flow)  # the runtime's own engine, as `dibot serve` has it
    yield app
    runtime: Runtime = app.extensions["dibot"]
    runtime.engine.dispose()


def sms_assessment(client: FlaskClient, engine: sa.Engine, conversation: Conversation) -> None:
    resident = SmsResident(client, conversation)
    forged = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": PHONE, "Body": GREETING}
    response = client.post(SMS, data=forged, headers=signed(SMS, forged, "another-token"))
    assert response.status_code == 403
    unsigned = {"MessageSid": f"SM{uuid.uuid4().hex}", "To": PHONE, "ErrorCode": "21610"}
    assert client.post(STATUS, data=unsigned).status_code == 403

    resident.send(GREETING)
    resident.send("I agree")
    (question,) = resident.send("Quick check")
    failure = FailOnce(engine, "INSERT INTO ANSWERS")
    try:
        answered = 0
        while (answer := third_option(question)) is not None:
            if answered == 3:
                (question,) = resident.send(NONSENSE)
            if answered == 5:  # the database fails mid-turn; Twilio's retry goes through
                sid = f"SM{uuid.uuid4().hex}"
                failure.armed = True
                resident.send(answer, sid, expect=500)
                assert failure.fired == 1
                (question,) = resident.send(answer, sid)
                answer = third_option(question) or ""
            if answered == 8:
                assert resident.send("STOP") == []  # Twilio confirms it itself
                assert resident.send("what now") == []
                (question,) = resident.send("START")
            if answered == 10:
                status = {"MessageSid": f"SM{uuid.uuid4().hex}", "To": PHONE, "ErrorCode": "21610"}
                status["MessageStatus"] = "undelivered"
                response = client.post(STATUS, data=status, headers=signed(STATUS, status))
                assert response.status_code == 204
                assert resident.send(answer) == []
                (question,) = resident.send("START")
            (question,) = resident.send(answer)
            answered += 1
    finally:
        failure.remove()
    assert "For free help" in question  # the priorities: the end


def post_update(client: FlaskClient, update: dict[str, Any], secret: str = WEBHOOK_SECRET) -> int:
    response = client.post(TELEGRAM, json=update, headers={SECRET_HEADER: secret})
    return response.status_code


def last_sent(fake: FakeTelegram) -> str:
    sent = fake.sent(CHAT)
    return str(sent[-1].params["text"]) if sent else ""


def telegram_assessment(
    client: FlaskClient,
    config: Config,
    runtime: Runtime,
    fake: FakeTelegram,
    conversation: Conversation,
) -> None:
    engine, handler = runtime.engine, runtime.handler

    def said(update: dict[str, Any]) -> int:
        message = update.get("message") or {}
        if "text" in message:
            conversation.said(message["text"])
        status = post_update(client, update)
        now = FakeClock(datetime.now(UTC))  # the worker sends what the webhook queued
        run_worker(config, handler, engine=engine, clock=now, until_empty=True)
        return status

    assert post_update(client, text_update(CHAT, GREETING), secret="wrong-secret") == 403
    response = client.post(
        TELEGRAM,
        data=b'{"update_id": 1, "message": {"text": "' + GREETING.encode(),
        headers={SECRET_HEADER: WEBHOOK_SECRET, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert post_update(client, {"update_id": 2, "poll": {"id": str(CHAT)}}) == 200

    assert said(text_update(CHAT, GREETING)) == 200
    assert said(tap_update(CHAT, "consent:1")) == 200
    fake.refuse("sendMessage", CHAT, status=500, description="Internal Server Error", times=1)
    assert said(text_update(CHAT, "Quick check")) == 200  # its reply sent again after a 500
    failure = FailOnce(engine, "INSERT INTO ANSWERS")
    try:
        for answered in range(40):
            answer = third_option(last_sent(fake))
            if answer is None:
                break
            if answered == 4:  # the database fails mid-turn: 503, and Telegram tries again
                update = text_update(CHAT, answer)
                failure.armed = True
                assert said(update) == 503
                assert failure.fired == 1
                assert said(update) == 200
            elif answered % 2:
                (*_, tap) = keyboard_payloads(fake.sent(CHAT)[-1])
                assert said(tap_update(CHAT, tap)) == 200
            else:
                assert said(text_update(CHAT, answer)) == 200
            if answered == 6:
                assert said(text_update(CHAT, NONSENSE)) == 200
    finally:
        failure.remove()
    assert "For free help" in last_sent(fake)  # the priorities: the end
    for call in fake.sent(CHAT):
        conversation.heard(call.params["text"])


def test_nothing_personal_or_secret_is_logged_in_process(
    caplog: pytest.LogCaptureFixture, app: Flask, config: Config, fake: FakeTelegram
) -> None:
    runtime: Runtime = app.extensions["dibot"]
    client = app.test_client()
    conversation = Conversation()
    with every_record(caplog):
        sms_assessment(client, runtime.engine, conversation)
        telegram_assessment(client, config, runtime, fake, conversation)
    lines = formatted(caplog.records)
    print(f"\nlog lines searched in process: {len(lines)} ({len(caplog.records)} records)")
    assert any("refused a Twilio webhook" in line for line in lines)
    assert any("Traceback" in line for line in lines)
    assert leaks(lines, conversation) == []


# --- a real `dibot serve` ----------------------------------------------------------------------


@contextmanager
def serving(tmp_path: Path, port: int, **settings: str) -> Iterator[Path]:
    """`dibot serve` on 127.0.0.1:`port`, its stderr in a file (returned), stopped after."""
    assert DIBOT is not None
    stderr = tmp_path / "serve.stderr"
    with stderr.open("w") as sink:
        server = subprocess.Popen(
            [DIBOT, "serve"],
            cwd=tmp_path,
            env=environment(DIBOT_SERVER_PORT=str(port), **settings),
            stdout=sink,
            stderr=sink,
            start_new_session=True,
            text=True,
        )
        try:
            status, _ = wait_for_health(f"http://127.0.0.1:{port}/healthz", server)
            assert status == 200, stderr.read_text()
            yield stderr
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=STOP_LIMIT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


@contextmanager
def working(tmp_path: Path, **settings: str) -> Iterator[Path]:
    """`dibot worker`, its stderr in a file (returned), stopped after."""
    assert DIBOT is not None
    stderr = tmp_path / "worker.stderr"
    with stderr.open("w") as sink:
        worker = subprocess.Popen(
            [DIBOT, "worker"],
            cwd=tmp_path,
            env=environment(**settings),
            stdout=sink,
            stderr=sink,
            start_new_session=True,
            text=True,
        )
        try:
            yield stderr
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=STOP_LIMIT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


@contextmanager
def answers_away(database_url: str) -> Iterator[None]:
    """The answers table renamed away for a while: every turn that answers a question fails in
    the database (as it would with a disk full or a server gone) until it is back."""
    engine = make_engine(database_url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE answers RENAME TO answers_away")
        yield
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE answers_away RENAME TO answers")
        engine.dispose()


def http_post(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_nothing_personal_or_secret_reaches_the_stderr_of_dibot_serve(
    tmp_path: Path, database_url: str, fake: FakeTelegram
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    conversation = Conversation()

    def sms(
        body: str, token: str = TWILIO_TOKEN, path: str = SMS, sid: str | None = None
    ) -> tuple[int, list[str]]:
        params = {"MessageSid": sid or f"SM{uuid.uuid4().hex}", "From": PHONE, "Body": body}
        if path == STATUS:
            params = {"MessageSid": params["MessageSid"], "To": PHONE, "ErrorCode": "21610"}
        signature = RequestValidator(token).compute_signature(base + path, params)
        conversation.said(body)
        status, answer = http_post(
            base + path,
            urllib.parse.urlencode(params).encode(),
            {"X-Twilio-Signature": signature},
        )
        replies = twiml_messages(answer) if status == 200 and path == SMS else []
        for reply in replies:
            conversation.heard(reply)
        return status, replies

    def telegram(body: bytes, secret: str = WEBHOOK_SECRET) -> int:
        headers = {SECRET_HEADER: secret, "Content-Type": "application/json"}
        return http_post(base + TELEGRAM, body, headers)[0]

    settings = {
        "DIBOT_DATABASE_URL": database_url,
        "DIBOT_SERVER_WORKERS": "2",
        "DIBOT_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "DIBOT_TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "DIBOT_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DIBOT_TELEGRAM_API_BASE_URL": fake.base_url,
        "DIBOT_FLOW_LANGUAGES": "en",
    }
    with serving(tmp_path, port, **settings) as stderr, working(tmp_path, **settings) as sent:
        assert sms(GREETING, token="another-token")[0] == 403
        assert sms(GREETING, token="another-token", path=STATUS)[0] == 403
        assert telegram(json.dumps(text_update(CHAT, GREETING)).encode(), "wrong-secret") == 403
        assert telegram(b'{"update_id": 1, "message": {"text": "' + GREETING.encode()) == 400
        for body in (GREETING, "I agree", "Quick check", NONSENSE):
            assert sms(body)[0] == 200
        question = sms(NONSENSE)[1][0]
        for answered in range(40):
            if (answer := third_option(question)) is None:
                break
            if answered == 5:  # the database fails this turn; Twilio's retry goes through
                sid = f"SM{uuid.uuid4().hex}"
                with answers_away(database_url):
                    assert sms(answer, sid=sid)[0] == 500
                answer = third_option(sms(answer, sid=sid)[1][0]) or ""
            question = sms(answer)[1][0]
        assert "For free help" in question
        assert sms("STOP") == (200, [])
        assert sms("", path=STATUS)[0] == 204
        for text in (GREETING, "I agree", "Quick check"):
            conversation.said(text)
            assert telegram(json.dumps(text_update(CHAT, text)).encode()) == 200
        fake.wait_for("sendMessage", 3)
        answer = third_option(last_sent(fake)) or ""
        update = json.dumps(text_update(CHAT, answer)).encode()
        with answers_away(database_url):  # the database fails: 503, and Telegram tries again
            assert telegram(update) == 503
        assert telegram(update) == 200
        fake.wait_for("sendMessage", 4)
    for call in fake.sent(CHAT):
        conversation.heard(call.params["text"])
    lines = stderr.read_text().splitlines() + sent.read_text().splitlines()
    print(f"\nlog lines searched from dibot serve and dibot worker: {len(lines)}")
    assert any("refused a Twilio webhook" in line for line in lines)
    assert any("Traceback" in line for line in lines)
    assert leaks(lines, conversation) == []
