"""The whole outreach cycle, with the command line alone, as a council runs it over months.

An outreach worker enrols a resident into a cohort; `dibot worker --once` (cron) sends the
invitation through Twilio's REST API (the fake, on 127.0.0.1); the resident answers the quick
check by SMS in the words people type, over the signed webhook; the worker texts a follow-up and
reads the reply with `dibot show`; a check-in is scheduled for the cohort three months ahead,
across the clock change to BST; the clock travels (time-machine) and the worker invites the
resident, who answers again, better; the last text says what changed, and `dibot show` shows
the gains. Every text the resident gets is read for its sense, not only its form.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from dibot.cli import main
from dibot.config import load_config
from dibot.runtime import Runtime
from dibot.web import create_app
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

LONDON = ZoneInfo("Europe/London")
PUBLIC_URL = "https://dibot.example.gov.uk"
RESIDENT = "+447700900123"
AS_TYPED = "07700 900123"
FROM_NUMBER = "+447700900001"
COHORT = "Library drop-in"


def config_file(tmp_path: Path, database_url: str, twilio: FakeTwilio) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[database]
url = "{database_url}"

[twilio]
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"
from_number = "{FROM_NUMBER}"
public_url = "{PUBLIC_URL}"
api_base_url = "{twilio.base_url}"

[council]
name = "Testshire Council"
privacy_url = "testshire.gov.uk/privacy"
helpline = "0300 000 1234"
help_device = "Borrow a tablet from any Testshire library."

[outreach]
quiet_hours = "09:00-20:00"
quiet_days = "mon-sat"
reminders = ""
""",
        encoding="utf-8",
    )
    return path


class Resident:
    """The resident's phone: texts sent over the signed webhook, texts received from Twilio."""

    def __init__(self, client: FlaskClient, twilio: FakeTwilio) -> None:
        self.client = client
        self.twilio = twilio
        self.seen = 0

    def text(self, body: str) -> list[str]:
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": ACCOUNT_SID,
            "From": RESIDENT,
            "To": FROM_NUMBER,
            "Body": body,
            "NumMedia": "0",
        }
        url = PUBLIC_URL + "/webhooks/twilio/sms"
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
        response = self.client.post(
            "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
        )
        assert response.status_code == 200
        return [m.text or "" for m in ET.fromstring(response.get_data()).findall("Message")]

    def delivered(self) -> None:
        """Twilio reports every message it took for the resident as delivered."""
        for message in self.twilio.messages:
            url, params, signature = self.twilio.status_callback(message.sid, "delivered")
            assert url == PUBLIC_URL + "/webhooks/twilio/status"
            response = self.client.post(
                "/webhooks/twilio/status", data=params, headers={"X-Twilio-Signature": signature}
            )
            assert response.status_code == 204

    def inbox(self) -> list[str]:
        """Texts Twilio took for the resident since last asked."""
        mine = [message for message in self.twilio.messages if message.to == RESIDENT]
        new, self.seen = mine[self.seen :], len(mine)
        return [message.body for message in new]

    def answer_until_the_end(self, first_question: str, skill: str) -> str:
        """Answer every question as this resident would, in their own words; the last text."""
        message = first_question
        for _ in range(40):
            if "Do you have" in message:
                reply = "yes always"
            elif "stop you going online" in message:
                reply = "not at all"
            elif "How well can you" in message:
                reply = skill
            elif "would you do it regularly" in message:
                reply = "4"
            else:
                return message
            (message,) = self.text(reply)
        raise AssertionError("the check did not end")


def dibot(capsys: pytest.CaptureFixture[str], config: Path, *arguments: str) -> str:
    assert main([*arguments, "--config", str(config)]) == 0
    return capsys.readouterr().out


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


def test_enrol_invite_assess_follow_up_and_check_in_months_later_by_the_command_line(
    tmp_path: Path,
    database_url: str,
    twilio: FakeTwilio,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = config_file(tmp_path, database_url, twilio)
    app = create_app(load_config(config))
    resident = Resident(app.test_client(), twilio)
    try:
        with time_machine.travel(datetime(2027, 3, 1, 8, 30, tzinfo=LONDON), tick=True):
            out = dibot(capsys, config, "enrol", "--phone", AS_TYPED, "--cohort", COHORT)
            assert "held by quiet hours until 2027-03-01 09:00" in out
            dibot(capsys, config, "worker", "--once")
            assert resident.inbox() == [], "an invitation went out before 09:00"

        with time_machine.travel(datetime(2027, 3, 1, 9, 0, 5, tzinfo=LONDON), tick=True):
            out = dibot(capsys, config, "worker", "--once")
            assert "1 sms" in out
            (invitation,) = resident.inbox()
            assert invitation.startswith("Hi, this is Testshire Council.")
            assert "English" in invitation
            assert "Cymraeg" in invitation
            resident.delivered()

            (consent,) = resident.text("English")
            assert "Testshire Council" in consent
            assert "testshire.gov.uk/privacy" in consent
            (mode,) = resident.text("1")
            assert "Quick: 22 questions" in mode
            (first,) = resident.text("quick")
            baseline_end = resident.answer_until_the_end(first, skill="only with help")
            assert "Your priorities" in baseline_end
            assert "doing well" not in baseline_end.lower()

            out = dibot(
                capsys,
                config,
                "send",
                "--phone",
                AS_TYPED,
                "--text",
                "Hi, it's Sam at Testshire library. Would you like a hand with email?",
                "--by",
                "Sam",
            )
            assert "follow-up queued: 1 message, 1 SMS segment" in out
            dibot(capsys, config, "worker", "--once")
            (followup,) = resident.inbox()
            assert followup.startswith("Hi, it's Sam")
            held = resident.text("Yes please! Tuesday is good 👍")
            assert held == [], "the bot spoke in a follow-up thread"

            shown = dibot(capsys, config, "show", "--phone", AS_TYPED)
            assert "Yes please! Tuesday is good 👍" in shown
            assert "Hi, it's Sam" in shown
            assert "[sent, delivered]" in shown
            assert RESIDENT not in shown
            assert "07700 900123" not in shown

            out = dibot(capsys, config, "checkin", "--cohort", COHORT, "--after", "3m")
            assert "2027-06-01 09:00" in out or "2027-06-01 10:00" in out

        # Three months on, across the change to BST: nothing is due the day before.
        with time_machine.travel(datetime(2027, 5, 31, 12, 0, tzinfo=LONDON), tick=True):
            dibot(capsys, config, "worker", "--once")
            assert resident.inbox() == []

        with time_machine.travel(datetime(2027, 6, 1, 10, 1, tzinfo=LONDON), tick=True):
            out = dibot(capsys, config, "worker", "--once")
            assert "1 check-ins invited" in out
            (checkin,) = resident.inbox()
            assert "Start now" in checkin
            (first_again,) = resident.text("1")
            checkin_end = resident.answer_until_the_end(first_again, skill="4")
            assert "more confident with 7 things since March 2027" in checkin_end

            shown = dibot(capsys, config, "show", "--phone", AS_TYPED)
            assert "#2 check-in, quick" in shown
            assert "follows #1" in shown
            assert "more confident with 7" in shown
    finally:
        runtime: Runtime = app.extensions["dibot"]
        runtime.engine.dispose()
