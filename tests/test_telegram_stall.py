"""A Telegram that stalls holds up no webhook (issue #8): a real `dibot serve` (gunicorn, two
sync workers) takes Telegram updates and SMS at the same moment while the outbox worker's
send is held by a Bot API that does not answer.

The Bot API holds every sendMessage for up to `STALL` seconds (15 s, as in the issue), unless
the test ends the stall first. Every webhook (Telegram's, more of them than the server has
workers, and Twilio's) must be answered while the stall still holds the worker's send: the
order of events is counted (`FakeTelegram.held` as each answer arrives), not timed. No webhook
calls the Bot API; once Telegram answers again, the worker delivers every chat its reply.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from channels.telegram import SECRET_HEADER, run_worker
from channels.telegram_bot import Timeouts
from dibot.turns import TurnHandler
from flows.model import Flow
from tests.fake_telegram import FakeTelegram, text_update
from tests.processes import free_port, serving
from tests.telegram_support import SECRET, outbox_rows, telegram_config

STALL = 15.0
WORKERS = 2
FIRST_CHAT = 820_000
CHATS = tuple(range(820_001, 820_001 + WORKERS + 2))
"""More Telegram updates at once than the server has workers."""
PHONES = ("+447700900201", "+447700900202", "+447700900203")
TWILIO_TOKEN = "stall-test-auth-token-0b6d"
WORKER_TIMEOUTS = Timeouts(connect=2.0, read=2 * STALL, write=2.0, pool=1.0, margin=1.0)
"""The outbox worker waits out the stall, so its send goes once Telegram answers."""
REQUEST_LIMIT = 30.0


def http_post(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_LIMIT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_sms_and_telegram_webhooks_are_answered_while_telegram_stalls(
    tmp_path: Path, database_url: str, fake: FakeTelegram, engine: sa.Engine, flow: Flow
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def telegram(chat: int) -> tuple[int, bytes]:
        body = json.dumps(text_update(chat, "/start")).encode()
        headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
        return http_post(f"{base}/webhooks/telegram", body, headers)

    def sms(phone: str) -> tuple[int, bytes]:
        url = f"{base}/webhooks/twilio/sms"
        params = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": phone, "Body": "Hi"}
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
        data = urllib.parse.urlencode(params).encode()
        return http_post(url, data, {"X-Twilio-Signature": signature})

    settings = {
        "DIBOT_DATABASE_URL": database_url,
        "DIBOT_SERVER_WORKERS": str(WORKERS),
        "DIBOT_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "DIBOT_TELEGRAM_BOT_TOKEN": fake.token,
        "DIBOT_TELEGRAM_WEBHOOK_SECRET": SECRET,
        "DIBOT_TELEGRAM_API_BASE_URL": fake.base_url,
        "DIBOT_FLOW_LANGUAGES": "en",
    }
    fake.stall("sendMessage", STALL, times=100)
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(telegram_config(fake, database_url), TurnHandler(engine, flow)),
        kwargs={"engine": engine, "stop": stop, "idle_wait": 0.05, "timeouts": WORKER_TIMEOUTS},
    )
    answers: list[tuple[str, int, bytes, int]] = []
    """(who, status, body, requests the stall held when the answer arrived), in order."""
    record = threading.Lock()

    def post(who: str, send: threading.Barrier) -> None:
        send.wait()
        status, body = sms(who) if who.startswith("+") else telegram(int(who))
        with record:
            answers.append((who, status, body, fake.held))

    with serving(tmp_path, port, **settings):
        worker.start()
        try:
            assert telegram(FIRST_CHAT)[0] == 200
            assert len(fake.wait_for("sendMessage", 1)) == 1
            assert fake.held == 1  # the worker's send of that reply, held by the stall

            everyone = [str(chat) for chat in CHATS] + list(PHONES)
            together = threading.Barrier(len(everyone))
            posts = [threading.Thread(target=post, args=(who, together)) for who in everyone]
            for thread in posts:
                thread.start()
            for thread in posts:
                thread.join(timeout=REQUEST_LIMIT)
            held_at_the_end = fake.held
            sends_meanwhile = len(fake.calls_to("sendMessage"))
            fake.end_stalls()
            every_chat = 1 + len(CHATS)
            delivered = fake.wait_for("sendMessage", every_chat, timeout=REQUEST_LIMIT)
        finally:
            fake.end_stalls()
            stop.set()
            worker.join(timeout=REQUEST_LIMIT)

    assert sorted(who for who, *_ in answers) == sorted(everyone)
    assert [(who, status) for who, status, *_ in answers] == [(who, 200) for who, *_ in answers]
    assert [held for *_, held in answers] == [1] * len(everyone)  # all before the stall ended
    assert held_at_the_end == 1
    assert sends_meanwhile == 1  # no webhook called the Bot API
    for who, _, body, _ in answers:
        if who in PHONES:
            assert ET.fromstring(body).findall("Message"), who  # the SMS reply, in TwiML
    assert sorted(call.params["chat_id"] for call in delivered) == [FIRST_CHAT, *CHATS]
    assert {row["status"] for row in outbox_rows(engine) if row["urn"].startswith("telegram:")} == {
        "sent"
    }
