"""Fuzzing what Telegram sends: nothing but the declared errors, never a 5xx.

- The update parser (`parse_update_json`) takes any JSON object: arbitrary ones, and real
  updates of every kind (text, /start, tap, sticker, photo with caption, voice note, edit,
  blocked, unblocked) with one text field of another type, with parts dropped, retyped or
  replaced, ids of any size; it gives a parsed update or None ("malformed updates give None"),
  and what it parses names a Telegram chat. `chat_id_of` refuses what is not a Telegram URN
  with ValueError only.
- End to end through Flask's test client: webhook posts with the right secret and any body
  (such updates, JSON of any shape, bytes that are not JSON) get 200 or 400, never a 5xx; a
  200 with a body is a tap's answerCallbackQuery, for Telegram to perform.

Runs on SQLite, or on PostgreSQL when DIBOT_DATABASE_URL names it. The module prints how many
inputs it tried.
"""

from __future__ import annotations

import contextlib
import json
import unicodedata
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.messages import MAX_TEXT_CHARS
from channels.telegram import SECRET_HEADER
from channels.telegram_parse import (
    ChatBlocked,
    TelegramInbound,
    UnusableTap,
    chat_id_of,
    parse_update_json,
)
from dibot.config import Config, CouncilConfig, DatabaseConfig, TelegramConfig
from dibot.runtime import Runtime, load_configured_flow
from dibot.web import create_app
from flows.model import Flow
from tests.fake_telegram import (
    FakeTelegram,
    edited_update,
    media_update,
    member_update,
    tap_update,
    text_update,
)
from tests.fuzzing import CHARACTERS, HTTP_TEXT, TEXTS

SECRET = "fuzz-webhook-secret_0123456789"
CHAT = 810777
fuzzed: Counter[str] = Counter()
"""Inputs tried, by kind; printed at the end of the module (`pytest -s` shows it)."""


@pytest.fixture(scope="module", autouse=True)
def count_inputs() -> Iterator[None]:
    yield
    print(f"\ninputs fuzzed: {sum(fuzzed.values())} {dict(fuzzed)}")


# --- updates ---------------------------------------------------------------------------

JSON_TEXT = st.text(CHARACTERS.filter(lambda char: unicodedata.category(char) != "Cs"))
"""Text JSON can carry (no lone surrogates)."""
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    JSON_TEXT,
)
UPDATE_KEYS = [
    "update_id",
    "message",
    "edited_message",
    "callback_query",
    "my_chat_member",
    "chat",
    "id",
    "type",
    "text",
    "caption",
    "data",
    "from",
    "language_code",
    "date",
    "message_id",
    "sticker",
    "photo",
    "new_chat_member",
    "status",
]
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(UPDATE_KEYS), st.text(max_size=8)), children),
    ),
    max_leaves=25,
)
SAME_TYPE = {
    bool: st.booleans(),
    int: st.one_of(st.integers(), st.integers(min_value=-(2**64), max_value=2**64)),
    str: JSON_TEXT,
}
"""Values of a type, to put where a value of that type was (a chat id of any size…)."""


def mutated(value: Any) -> st.SearchStrategy[Any]:
    """`value` (a real update), mostly kept, with any part dropped, retyped or replaced."""
    if isinstance(value, dict):
        parts = {key: mutated(part) for key, part in value.items()}
        kept = st.fixed_dictionaries(parts)
        return st.one_of(kept, kept, kept, st.fixed_dictionaries({}, optional=parts), JSON)
    if isinstance(value, list):
        return st.one_of(st.tuples(*(mutated(part) for part in value)).map(list), JSON)
    same = SAME_TYPE.get(type(value), JSON)
    return st.one_of(st.just(value), st.just(value), st.just(value), same, JSON)


def paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Where in `value` a part can be changed: every key and index, nested."""
    if path:
        yield path
    parts = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, part in parts:
        yield from paths(part, (*path, key))


REAL_UPDATES = [
    text_update(CHAT, "1"),
    text_update(CHAT, "/start"),
    tap_update(CHAT, "consent:1"),
    media_update(CHAT, "sticker"),
    media_update(CHAT, "photo", caption="2"),
    media_update(CHAT, "voice"),
    edited_update(CHAT, "3"),
    member_update(CHAT, "kicked"),
    member_update(CHAT, "member"),
]
REAL_PATHS = [list(paths(update)) for update in REAL_UPDATES]


def part_of(value: Any, key: str | int) -> Any:
    """`value[key]` where `value` is a JSON object or array that has it, else None."""
    if isinstance(value, dict):
        return value.get(key)
    if isinstance(value, list) and isinstance(key, int) and key < len(value):
        return value[key]
    return None


@st.composite
def changed(draw: st.DrawFn) -> Any:
    """A real update with one to three parts dropped, retyped or replaced by any JSON: the
    others stay as Telegram sends them, so each change reaches the parser's branch for it."""
    which = draw(st.integers(min_value=0, max_value=len(REAL_UPDATES) - 1))
    update = json.loads(json.dumps(REAL_UPDATES[which]))
    places = REAL_PATHS[which]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        *above, last = places[draw(st.integers(min_value=0, max_value=len(places) - 1))]
        parent: Any = update
        for key in above:  # an earlier change may have dropped or replaced the way there
            parent = part_of(parent, key)
        if part_of(parent, last) is None:
            continue
        if draw(st.booleans()):
            del parent[last]
        else:
            parent[last] = draw(st.one_of(SAME_TYPE.get(type(parent[last]), JSON), JSON))
    return update


def value_at(value: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        value = part_of(value, key)
    return value


TEXT_PATHS = [
    [path for path in places if isinstance(value_at(update, path), str)]
    for update, places in zip(REAL_UPDATES, REAL_PATHS, strict=True)
]
NOT_TEXT = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(UPDATE_KEYS), SCALARS, max_size=3),
)


@st.composite
def retyped(draw: st.DrawFn) -> Any:
    """A real update with one text field (a message's text, a tap's data, a language code, a
    name…) of another JSON type, everything else as Telegram sends it."""
    which = draw(st.integers(min_value=0, max_value=len(REAL_UPDATES) - 1))
    update = json.loads(json.dumps(REAL_UPDATES[which]))
    places = TEXT_PATHS[which]
    *above, last = places[draw(st.integers(min_value=0, max_value=len(places) - 1))]
    value_at(update, tuple(above))[last] = draw(NOT_TEXT)
    return update


CHANGED_UPDATES = st.one_of(retyped(), changed())
UPDATES = st.one_of(
    CHANGED_UPDATES,
    CHANGED_UPDATES,
    st.one_of(*(mutated(update) for update in REAL_UPDATES)),
    st.dictionaries(st.sampled_from(UPDATE_KEYS), JSON),
    JSON,
)


@settings(max_examples=2000, deadline=None)
@given(update=UPDATES)
def test_the_telegram_parser_reads_any_update(update: Any) -> None:
    fuzzed["telegram update"] += 1
    if not isinstance(update, dict):
        return  # the webhook refuses anything but a JSON object before parsing (400)
    parsed = parse_update_json(update)
    assert parsed is None or isinstance(parsed, TelegramInbound | ChatBlocked | UnusableTap)
    if isinstance(parsed, TelegramInbound):
        assert isinstance(parsed.message_id, str)
        assert isinstance(parsed.inbound.text, str)
        assert len(parsed.inbound.text) <= MAX_TEXT_CHARS
        assert parsed.language is None or isinstance(parsed.language, str)
    if isinstance(parsed, TelegramInbound | ChatBlocked):
        assert isinstance(chat_id_of(parsed.urn), int)


@settings(max_examples=500, deadline=None)
@given(urn=st.one_of(TEXTS, st.integers().map(lambda n: f"telegram:{n}")))
def test_a_urn_that_is_no_telegram_chat_is_a_value_error(urn: str) -> None:
    fuzzed["telegram urn"] += 1
    with contextlib.suppress(ValueError):
        assert isinstance(chat_id_of(urn), int)


# --- end to end through Flask --------------------------------------------------------------


@pytest.fixture(scope="module")
def council_flow() -> Flow:
    return load_configured_flow(Config(council=CouncilConfig(name="Testshire Council")))


@pytest.fixture
def client(database_url: str, council_flow: Flow, fake: FakeTelegram) -> Iterator[FlaskClient]:
    config = Config(
        database=DatabaseConfig(url=database_url),
        telegram=TelegramConfig(
            bot_token=fake.token, webhook_secret=SECRET, api_base_url=fake.base_url
        ),
        council=CouncilConfig(name="Testshire Council"),
    )
    app: Flask = create_app(config, flow=council_flow)
    yield app.test_client()
    runtime: Runtime = app.extensions["dibot"]
    runtime.engine.dispose()


FUZZ_WEB = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
"""One app and database for all the examples: requests are independent."""


@FUZZ_WEB
@given(
    body=st.one_of(
        CHANGED_UPDATES.map(lambda update: json.dumps(update).encode()),
        CHANGED_UPDATES.map(lambda update: json.dumps(update).encode()),
        UPDATES.map(lambda update: json.dumps(update).encode()),
        st.binary(max_size=300),
        HTTP_TEXT.map(str.encode),
    ),
    update_id=st.integers(min_value=1, max_value=2**40),
)
def test_telegram_webhook_posts_never_get_a_server_error(
    client: FlaskClient, body: bytes, update_id: int
) -> None:
    fuzzed["telegram webhook"] += 1
    try:  # most mutated updates keep a fresh update_id, so they are taken as turns
        update = json.loads(body)
    except ValueError:
        update = None
    if isinstance(update, dict) and isinstance(update.get("update_id"), int):
        update["update_id"] = update_id
        body = json.dumps(update).encode()
    response = client.post(
        "/webhooks/telegram",
        data=body,
        headers={SECRET_HEADER: SECRET, "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 200 and response.get_data():  # a tap, answered in the response
        answer = response.get_json()
        assert answer["method"] == "answerCallbackQuery"
        assert isinstance(answer["callback_query_id"], str)
