"""No personal data in clear at rest (issue 7), end to end: a whole assessment over signed
Twilio webhooks, then the database searched as an attacker with the files would search it
(SQLite: the raw bytes of the database and its WAL; PostgreSQL: every table's rows as text)
for the phone number in every form and for what the respondent typed, before and after
retention; a 21610 for a number that never texted stores nobody; and the bytes a turn leaves
behind once retention has run."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from bot.engine import step
from bot.messages import Inbound
from bot.state import State
from dibot.config import Config, DatabaseConfig, FlowConfig, TwilioConfig
from dibot.runtime import load_configured_flow
from dibot.turns import TurnHandler
from dibot.web import create_app
from flows.model import Flow
from storage.database import make_engine, sqlite_file
from storage.models import Answer, InboxEntry, Respondent, table
from storage.personal_data import RetentionPolicy, apply_retention
from tests.turn_helpers import send

TOKEN = "at-rest-token-not-a-secret"
PUBLIC_URL = "https://dibot.example.gov.uk"
SMS, STATUS = "/webhooks/twilio/sms", "/webhooks/twilio/status"
SENDER = "+447700900123"
PHONE_FORMS = ("+447700900123", "447700900123", "07700900123")
ENGLISH = FlowConfig(languages="en")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = RetentionPolicy(raw_text_days=30, inbox_days=7)
PAST_EVERY_PERIOD = T0 + timedelta(days=31)
BYTES_PER_TURN_LIMIT = 450
"""After retention, a turn leaves its answer row (option, score, ids, times) and its share of
the respondent's and conversation's rows: 184 bytes measured on SQLite; and two timeline
entries without their texts (when, which way, what kind, on which channel: what staff read of
a conversation, kept as the rest of the record is), with their index: about 200 bytes more,
385 in all. The inbox's replies alone were about 450 bytes a turn more, kept for ever."""
OPTION_LINE = re.compile(r"^(\d+) (.+)$", re.MULTILINE)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def english_flow() -> Flow:
    return load_configured_flow(Config(flow=ENGLISH))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(database_url: str, engine: sa.Engine, english_flow: Flow, clock: Clock) -> Iterator[Flask]:
    config = Config(
        database=DatabaseConfig(url=database_url),
        twilio=TwilioConfig(auth_token=TOKEN, public_url=PUBLIC_URL),
        flow=ENGLISH,
    )
    handler = TurnHandler(engine, english_flow, clock=clock)
    app = create_app(config, flow=english_flow, handler=handler)
    yield app
    app.extensions["dibot"].engine.dispose()  # the status webhook's own connections


def post(client: FlaskClient, path: str, params: dict[str, str]) -> list[str]:
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + path, params)
    response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code in (200, 204)
    if response.status_code == 204:
        return []
    return [m.text or "" for m in ET.fromstring(response.get_data()).findall("Message")]


def sms(body: str) -> dict[str, str]:
    return {
        "MessageSid": f"SM{uuid.uuid4().hex}",
        "AccountSid": "AC" + "0" * 32,
        "From": SENDER,
        "To": "+447700900999",
        "Body": body,
        "NumMedia": "0",
    }


def typo(label: str, said: str) -> str | None:
    """A long word of an option's label with its third letter dropped (the matcher forgives
    it), unless that could be found in what the bot said anyway."""
    for word in re.findall(r"[A-Za-z]{6,}", label):
        misspelt = str(word[:2] + word[3:])
        if misspelt.lower() not in said.lower():
            return misspelt
    return None


def next_reply(flow: Flow, state: State, said: str, now: datetime, turn: int) -> str:
    """What the respondent sends: a misspelt option (a different one each turn) where that
    answers, else the digit 2, else 1 (consent, the quick check)."""
    options = OPTION_LINE.findall(said)
    shift = turn % len(options) if options else 0
    candidates = [typo(label, said) for _, label in options[shift:] + options[:shift]]
    for text in [c for c in candidates if c] + ["2", "1"]:
        events = step(flow, state, Inbound(text), now).events
        if any(event.kind == "answered" for event in events) or text == "1":
            return text
    return "1"


def whole_assessment(client: FlaskClient, flow: Flow, clock: Clock) -> tuple[set[str], str]:
    """A quick check from "Hi" to the priorities message: the texts typed as answers, and the
    priorities message."""
    state, said, typed = State(), "", set[str]()
    for number in range(200):
        if state.stage == "done":
            return typed, said
        text = "Hi" if state.stage == "new" else next_reply(flow, state, said, clock.now, number)
        turn = step(flow, state, Inbound(text), clock.now)
        if any(e.kind == "answered" and e.raw == text for e in turn.events) and text.isalpha():
            typed.add(text)
        said = "\n".join(post(client, SMS, sms(text)))
        state = turn.state
        clock.now += timedelta(seconds=30)
    raise AssertionError("the assessment did not finish")


def held_in_clear(engine: sa.Engine, url: str, needles: set[str]) -> list[str]:
    """Which of `needles` the database holds in clear: in its files' bytes (SQLite, with the
    WAL and shared memory), or in its tables' rows as text (PostgreSQL)."""
    path = sqlite_file(url)
    if path is not None:
        data = b"".join(
            companion.read_bytes()
            for suffix in ("", "-wal", "-shm")
            if (companion := path.with_name(path.name + suffix)).exists()
        ).lower()
        return sorted(needle for needle in needles if needle.lower().encode() in data)
    with engine.connect() as conn:
        text = "\n".join(
            str(row[0])
            for name in sa.inspect(conn).get_table_names()
            for row in conn.execute(sa.text(f'SELECT t::text FROM "{name}" t'))
        ).lower()
    return sorted(needle for needle in needles if needle.lower() in text)


def test_after_a_whole_assessment_over_sms_no_phone_number_or_typed_text_is_in_clear(
    app: Flask, engine: sa.Engine, english_flow: Flow, clock: Clock, database_url: str
) -> None:
    typed, priorities = whole_assessment(app.test_client(), english_flow, clock)
    assert len(typed) >= 5, typed
    control = priorities.splitlines()[0]  # a reply the inbox keeps in clear, for a while
    assert held_in_clear(engine, database_url, {control}) == [control], "the search sees nothing"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table(Respondent))).scalar() == 1
        kept = conn.execute(sa.select(sa.func.count(table(Answer).c.raw))).scalar_one()
    assert kept >= len(typed)  # kept, encrypted, until retention
    assert held_in_clear(engine, database_url, {*PHONE_FORMS, *typed}) == []

    apply_retention(engine, POLICY, PAST_EVERY_PERIOD)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count(table(Answer).c.raw))).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(table(InboxEntry))).scalar() == 0
    assert held_in_clear(engine, database_url, {*PHONE_FORMS, *typed}) == []


def test_a_21610_for_a_number_that_never_texted_stores_nobody(
    app: Flask, engine: sa.Engine
) -> None:
    params = {
        "MessageSid": "SM" + "c" * 32,
        "MessageStatus": "undelivered",
        "ErrorCode": "21610",
        "To": "+447700900125",
    }
    client = app.test_client()
    assert post(client, STATUS, params) == []
    with engine.connect() as conn:
        for name in ("respondents", "conversations"):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one() == 0


def test_bytes_a_turn_leaves_after_retention(
    database_url: str, english_flow: Flow, tmp_path: Path
) -> None:
    path = sqlite_file(database_url)
    if path is None:
        pytest.skip("measured on SQLite's file; PostgreSQL's pages are its own business")
    engine = make_engine(database_url)
    try:
        empty = _vacuumed_size(engine, path)
        clock = Clock()
        handler = TurnHandler(engine, english_flow, clock=clock)
        turns = sum(_quick_check(handler, english_flow, n, clock) for n in range(40))
        kept = _vacuumed_size(engine, path)
        apply_retention(engine, POLICY, PAST_EVERY_PERIOD)
        after = _vacuumed_size(engine, path)
    finally:
        engine.dispose()
    per_turn_kept, per_turn = (kept - empty) / turns, (after - empty) / turns
    print(
        f"\n{turns} turns: {per_turn_kept:.0f} bytes a turn within the retention periods, "
        f"{per_turn:.0f} after retention"
    )
    assert per_turn < BYTES_PER_TURN_LIMIT


def _quick_check(handler: TurnHandler, flow: Flow, n: int, clock: Clock) -> int:
    urn = f"tel:+447700900{n:03d}"
    state, turns = State(), 0
    while state.stage != "done":
        text = "Hi" if state.stage == "new" else ("1" if state.stage != "asking" else "Usualy")
        turn = step(flow, state, Inbound(text), clock.now)
        if state.stage == "asking" and not turn.events:
            text = "2"
            turn = step(flow, state, Inbound(text), clock.now)
        send(handler, urn, text)
        state, turns = turn.state, turns + 1
    return turns


def _vacuumed_size(engine: sa.Engine, path: Path) -> int:
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.execute("VACUUM")  # type: ignore[union-attr]
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    return path.stat().st_size
