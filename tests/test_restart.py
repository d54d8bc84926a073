"""A real `dibot serve` killed mid-assessment and started again: everyone carries on.

A hundred respondents are spread over the first questions of a quick check through signed
webhooks over HTTP; the server's whole process group is then killed (SIGKILL: no clean
shutdown), a new server starts on the same database, and each respondent is asked the very
question they were on, then moves to the next one.
"""

from __future__ import annotations

import os
import signal
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from twilio.request_validator import RequestValidator

from tests.processes import free_port, serving

TOKEN = "restart-token-not-a-secret"
RESPONDENTS = 100
CONCURRENCY = 8


def send(port: int, sender: str, body: str) -> list[str]:
    """One inbound SMS as Twilio posts it, signed for the URL it is posted to."""
    url = f"http://127.0.0.1:{port}/webhooks/twilio/sms"
    params = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": sender, "Body": body}
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": signature},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return [m.text or "" for m in ET.fromstring(response.read()).findall("Message")]


def sender(index: int) -> str:
    return f"+447700900{index:03d}"


def answered_before_crash(index: int) -> int:
    return index % 6


def test_everyone_resumes_at_the_same_question_after_a_crash(
    tmp_path: Path, database_url: str
) -> None:
    settings = {
        "DIBOT_DATABASE_URL": database_url,
        "DIBOT_TWILIO_AUTH_TOKEN": TOKEN,
        "DIBOT_SERVER_WORKERS": "2",
    }
    port = free_port()

    def begin(index: int) -> None:
        for body in ["Hi", "1", "1", "1"] + ["3"] * answered_before_crash(index):
            (reply,) = send(port, sender(index), body)
        assert f"{answered_before_crash(index) + 1}/22 " in reply

    with serving(tmp_path, port, **settings) as server, ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(begin, range(RESPONDENTS)))
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)

    def carry_on(index: int) -> None:
        position = answered_before_crash(index) + 1
        (again,) = send(port, sender(index), "repeat")
        assert again.startswith(f"{position}/22 ")
        (following,) = send(port, sender(index), "4")
        assert f" {position + 1}/22 " in following

    with serving(tmp_path, port, **settings), ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(carry_on, range(RESPONDENTS)))
