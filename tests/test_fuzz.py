"""Fuzzing what residents and Twilio send: nothing but the declared errors, never a 5xx.

- The matcher (`normalise`, `command_form`, `command_of`, `language_named`, `match_option`)
  reads any Unicode text up to a few thousand characters (see tests/fuzzing.py) without
  raising, and says something well formed: a normalised text with no control character and
  nothing to strip at either end, a command the flow has, a language it offers, an option of
  the question or a pair of them; and after all that, a number alone still chooses its option.
- The Twilio form parser (`parse_inbound`) turns any form into an `Inbound` (text cleaned and
  bounded), and the identifier checks answer any value with a plain yes or no.
- End to end through Flask's test client: Twilio posts signed with twilio's own
  RequestValidator, with any Body, From, MessageSid, NumMedia and extra parameters (and the
  same post again, as Twilio retries), get 200 with well-formed TwiML or 400, never a 5xx;
  status callbacks with any values get 204.

Runs on SQLite, or on PostgreSQL when DIBOT_DATABASE_URL names it (which refuses more than
SQLite: NUL characters, over-long values). The module prints how many inputs it tried.
"""

from __future__ import annotations

import unicodedata
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from bot.matching import (
    EDGE_PUNCTUATION,
    Match,
    command_form,
    command_of,
    language_named,
    match_option,
    normalise,
)
from bot.messages import MAX_TEXT_CHARS, UNREADABLE, Inbound
from channels.identifiers import is_message_id, is_phone_number
from channels.twilio_sms import parse_inbound
from dibot.config import Config, CouncilConfig, DatabaseConfig, TwilioConfig
from dibot.runtime import Runtime, load_configured_flow
from dibot.web import create_app
from flows.loader import load_flow
from flows.model import Flow, Option, OptionPair
from tests.fuzzing import HTTP_TEXT, TEXTS

FLOWS = {"bilingual": load_flow(), "english": load_flow(languages=["en"])}
TOKEN = "fuzz-auth-token-not-a-secret"
PUBLIC_URL = "https://dibot.example.gov.uk"
fuzzed: Counter[str] = Counter()
"""Inputs tried, by kind; printed at the end of the module (`pytest -s` shows it)."""


@pytest.fixture(scope="module", autouse=True)
def count_inputs() -> Iterator[None]:
    yield
    print(f"\ninputs fuzzed: {sum(fuzzed.values())} {dict(fuzzed)}")


# --- the matcher ---------------------------------------------------------------------------


def options_and_pairs(flow: Flow) -> list[tuple[tuple[Option, ...], tuple[OptionPair, ...]]]:
    found = [(prompt.options, ()) for prompt in flow.prompts.values()]
    return found + [(scale.options, scale.pairs) for scale in flow.scales.values()]


def check_normalised(folded: str) -> None:
    assert folded == folded.strip()
    assert not folded.startswith(tuple(EDGE_PUNCTUATION))
    assert not folded.endswith(tuple(EDGE_PUNCTUATION))
    assert not any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in folded)


@settings(max_examples=3000, deadline=None)
@given(
    text=TEXTS,
    flow_name=st.sampled_from(sorted(FLOWS)),
    which=st.integers(min_value=0),
    reversed_languages=st.booleans(),
)
def test_the_matcher_reads_any_text(
    text: str, flow_name: str, which: int, reversed_languages: bool
) -> None:
    fuzzed["matcher"] += 1
    flow = FLOWS[flow_name]
    languages = flow.languages[::-1] if reversed_languages else flow.languages
    check_normalised(normalise(text))
    assert isinstance(command_form(text), str)
    assert command_of(flow, text, languages) in (None, *flow.commands)
    assert language_named(flow, text) in (None, *flow.languages)
    choices = options_and_pairs(flow)
    options, pairs = choices[which % len(choices)]
    match = match_option(flow, options, text, languages, pairs)
    numbers = {option.number for option in options}
    assert isinstance(match, Match)
    assert match.option is None or match.option in numbers
    if match.either is not None:
        assert match.option is None
        assert set(match.either) <= numbers
        assert match.either[0] < match.either[1]


@settings(max_examples=500, deadline=None)
@given(text=TEXTS, number=st.integers(min_value=1, max_value=5))
def test_a_number_alone_always_chooses_its_option(text: str, number: int) -> None:
    """Whatever else the matcher is fed, a reply of an option's number (padded with the
    blanks and marks a phone adds) chooses it: fuzzing never leaves a cache or state behind
    that changes that."""
    fuzzed["matcher"] += 1
    flow = FLOWS["bilingual"]
    options = flow.scales["access"].options
    match_option(flow, options, text, flow.languages)
    for reply in (str(number), f" {number}. ", f"\u200b{number}\u200b", f"{number}\n"):
        assert match_option(flow, options, reply, flow.languages) == Match(number)


# --- the Twilio form and identifiers -------------------------------------------------------

FIELD_NAMES = st.one_of(
    st.sampled_from(["Body", "From", "To", "MessageSid", "NumMedia", "NumSegments", "ErrorCode"]),
    st.text(max_size=20),
)


@settings(max_examples=1500, deadline=None)
@given(fields=st.lists(st.tuples(FIELD_NAMES, TEXTS), max_size=6))
def test_the_twilio_form_parser_reads_any_form(fields: list[tuple[str, str]]) -> None:
    fuzzed["twilio form"] += 1
    form: MultiDict[str, str] = MultiDict(fields)
    inbound = parse_inbound(form)
    assert isinstance(inbound, Inbound)
    assert len(inbound.text) <= MAX_TEXT_CHARS
    assert UNREADABLE.search(inbound.text) is None
    assert inbound.button is None
    for _name, value in fields:
        assert isinstance(is_message_id(value), bool)
        assert isinstance(is_phone_number(value), bool)


# --- end to end through Flask --------------------------------------------------------------

SMS = "/webhooks/twilio/sms"
STATUS = "/webhooks/twilio/status"
DRAMA_NUMBERS = st.integers(min_value=0, max_value=999).map(lambda n: f"+447700900{n:03d}")
NOT_A_PHONE_NUMBER = HTTP_TEXT.filter(
    lambda text: sum(char.isdigit() for char in text) < 7 or not text.strip("+").isalnum()
)
"""Any sender but one that could be someone's real number: the fixtures use only Ofcom's
drama range."""
SENDERS = st.one_of(DRAMA_NUMBERS, DRAMA_NUMBERS, NOT_A_PHONE_NUMBER, st.just(""))
SIDS = st.one_of(
    st.uuids().map(lambda value: f"SM{value.hex}"),
    st.text("0123456789abcdefSM", min_size=1, max_size=34),
    HTTP_TEXT,
    st.text("A", min_size=60, max_size=300),
    st.just(""),
)
BODIES = st.one_of(
    HTTP_TEXT,
    TEXTS.map(lambda text: "".join(c for c in text if unicodedata.category(c) != "Cs")),
    st.sampled_from(["STOP", "START", "yes", "1", "2", "back", "Cymraeg"]),
)


@pytest.fixture(scope="module")
def council_flow() -> Flow:
    return load_configured_flow(Config(council=CouncilConfig(name="Testshire Council")))


@pytest.fixture
def app(database_url: str, council_flow: Flow) -> Iterator[Flask]:
    config = Config(
        database=DatabaseConfig(url=database_url),
        twilio=TwilioConfig(auth_token=TOKEN, public_url=PUBLIC_URL),
        council=CouncilConfig(name="Testshire Council"),
    )
    app = create_app(config, flow=council_flow)
    yield app
    runtime: Runtime = app.extensions["dibot"]
    runtime.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def signed_post(client: FlaskClient, path: str, form: MultiDict[str, str]) -> int:
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + path, form)
    response = client.post(path, data=form, headers={"X-Twilio-Signature": signature})
    if response.status_code == 200 and path == SMS:
        root = ET.fromstring(response.get_data())  # well-formed TwiML
        assert root.tag == "Response"
    return response.status_code


FUZZ_WEB = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
"""One app and database for all the examples of a test: requests are independent."""


@FUZZ_WEB
@given(
    sid=SIDS,
    sender=SENDERS,
    body=st.one_of(st.none(), BODIES),
    media=st.one_of(st.none(), st.sampled_from(["0", "1", "10", "-1", "٣", "1e9"]), HTTP_TEXT),
    extra=st.lists(st.tuples(st.text(min_size=1, max_size=20), HTTP_TEXT), max_size=3),
    again=st.booleans(),
)
def test_signed_twilio_posts_never_get_a_server_error(
    client: FlaskClient,
    sid: str,
    sender: str,
    body: str | None,
    media: str | None,
    extra: list[tuple[str, str]],
    again: bool,
) -> None:
    fuzzed["twilio webhook"] += 1
    form: MultiDict[str, str] = MultiDict([("MessageSid", sid), ("From", sender)])
    for name, value in (("Body", body), ("NumMedia", media)):
        if value is not None:
            form.add(name, value)
    for name, value in extra:
        form.add(name, value)
    first = signed_post(client, SMS, form)
    assert first in (200, 400), first
    if again:  # Twilio's retry of the same message
        assert signed_post(client, SMS, form) == first


@FUZZ_WEB
@given(
    recipient=SENDERS,
    error=st.one_of(st.just("21610"), HTTP_TEXT),
    status=st.one_of(st.sampled_from(["delivered", "undelivered", "failed"]), HTTP_TEXT),
)
def test_signed_status_callbacks_never_get_a_server_error(
    client: FlaskClient, recipient: str, error: str, status: str
) -> None:
    fuzzed["twilio status"] += 1
    form: MultiDict[str, str] = MultiDict(
        [("MessageSid", f"SM{uuid.uuid4().hex}"), ("To", recipient), ("ErrorCode", error)]
    )
    form.add("MessageStatus", status)
    assert signed_post(client, STATUS, form) == 204
