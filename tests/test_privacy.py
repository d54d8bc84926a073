"""Personal identifiers at rest (issue 7): URNs and typed text only ever encrypted, found by a
keyed hash that no key rotation changes; the keys come from configuration or, on SQLite, a
private key file made once; a missing or wrong key is one clear error; SQLite's files are 0600
in a 0700 directory. Runs on SQLite, and on PostgreSQL when DIBOT_DATABASE_URL names it."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from dibot.config import Config, ConfigError, DatabaseConfig, PrivacyConfig, load_config
from dibot.runtime import check_privacy
from dibot.turns import TurnHandler
from flows.model import Flow
from storage.database import make_engine
from storage.migrate import upgrade
from storage.models import Answer, Respondent, TimelineEntry, table
from storage.personal_data import rekey
from storage.privacy import (
    WRONG_KEY,
    Keys,
    PrivacyKeyError,
    database_keys,
    key_file,
    keys_of,
    keys_option,
    new_key,
    open_privacy,
    parse_keys,
)
from tests.turn_helpers import send, start_quick_check

URN = "tel:+447700900123"
OTHER = "telegram:700900124"
respondents, answers, timeline = table(Respondent), table(Answer), table(TimelineEntry)


def respondent_rows(engine: sa.Engine) -> list[tuple[str, bytes]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(respondents.c.urn_cipher, respondents.c.urn_digest))
        return [(str(cipher), bytes(digest)) for cipher, digest in rows]


def engine_with(engine: sa.Engine, keys: Keys) -> sa.Engine:
    return make_engine(engine.url, execution_options=keys_option(keys))


# --- URNs and typed text -----------------------------------------------------------------------


def test_a_urn_is_stored_encrypted_and_found_by_its_keyed_hash(
    engine: sa.Engine, flow: Flow
) -> None:
    handler = TurnHandler(engine, flow)
    start_quick_check(handler, URN)
    [(cipher, digest)] = respondent_rows(engine)
    lookup_key = open_privacy(engine).lookup_key
    assert "447700900123" not in cipher
    assert keys_of(engine).decrypt(cipher) == URN
    assert bytes(digest) == hmac.digest(lookup_key, URN.encode(), hashlib.sha256)
    assert len(respondent_rows(engine)) == 1  # the later turns found the same respondent


def test_typed_text_is_stored_encrypted(engine: sa.Engine, flow: Flow) -> None:
    handler = TurnHandler(engine, flow)
    start_quick_check(handler, URN)
    send(handler, URN, "Usualy")
    with engine.connect() as conn:
        raw, option = conn.execute(sa.select(answers.c.raw, answers.c.option)).one()
    assert "Usualy" not in raw
    assert keys_of(engine).decrypt(raw) == "Usualy"
    assert option == 4
    with engine.connect() as conn:
        texts = conn.execute(sa.select(timeline.c.text_cipher).order_by(timeline.c.id)).scalars()
        tokens = list(texts)
    assert not any("Usualy" in token for token in tokens)
    assert keys_of(engine).decrypt(tokens[-2]) == "Usualy"  # what they sent, then the reply


def test_typed_text_is_not_kept_at_all_when_no_days_are_given(
    engine: sa.Engine, flow: Flow
) -> None:
    handler = TurnHandler(engine, flow, keep_raw_text=False)
    start_quick_check(handler, URN)
    send(handler, URN, "Usualy")
    with engine.connect() as conn:
        row = conn.execute(sa.select(answers.c.raw, answers.c.option, answers.c.score)).one()
    assert row.raw is None
    assert (row.option, row.score) == (4, 3)
    with engine.connect() as conn:
        kept = conn.execute(
            sa.select(timeline.c.direction, timeline.c.text_cipher.is_not(None)).order_by(
                timeline.c.id
            )
        ).all()
    assert {direction for direction, has_text in kept if has_text} == {"out"}  # replies only
    assert [direction for direction, _ in kept].count("in") == 4


# --- rotation ------------------------------------------------------------------------------------


def test_lookup_does_not_depend_on_which_key_encrypted_a_row(engine: sa.Engine, flow: Flow) -> None:
    start_quick_check(TurnHandler(engine, flow), URN)
    send(TurnHandler(engine, flow), URN, "Usualy")
    fresh = new_key()
    old_text = _key_text(engine)
    rotated = parse_keys(f"{fresh},{old_text}")
    both = engine_with(engine, rotated)
    try:
        handler = TurnHandler(both, flow)
        send(handler, URN, "Sometims")  # found though encrypted under the old key
        send(handler, OTHER, "Hi")  # encrypted under the new one
        assert len(respondent_rows(both)) == 2
        report = rekey(both, rotated)
        assert (report.urns, report.raw_texts) == (2, 2)
        assert report.timeline_texts == 12  # six messages in, each with its reply
    finally:
        both.dispose()
    only_new = engine_with(engine, parse_keys(fresh))
    try:
        urns = {keys_of(only_new).decrypt(cipher) for cipher, _ in respondent_rows(only_new)}
        assert urns == {URN, OTHER}
        handler = TurnHandler(only_new, flow)
        send(handler, URN, "3")
        assert len(respondent_rows(only_new)) == 2
        with only_new.connect() as conn:
            tokens = conn.execute(sa.select(timeline.c.text_cipher)).scalars().all()
        assert "Sometims" in {keys_of(only_new).decrypt(token) for token in tokens}
    finally:
        only_new.dispose()
    only_old = engine_with(engine, parse_keys(old_text))
    try:
        with pytest.raises(PrivacyKeyError, match="does not decrypt"):
            open_privacy(only_old)
    finally:
        only_old.dispose()


def _key_text(engine: sa.Engine) -> str:
    """The key the test database was made with: the run's, else its key file's."""
    given = os.environ.get("DIBOT_PRIVACY_ENCRYPTION_KEY")
    path = key_file(engine.url)
    if given or path is None:
        return given or ""
    return path.read_text().strip()


# --- where keys come from ----------------------------------------------------------------------


def test_a_wrong_key_stops_in_one_line(database_url: str) -> None:
    config = Config(
        database=DatabaseConfig(url=database_url),
        privacy=PrivacyConfig(encryption_key=new_key()),
    )
    with pytest.raises(PrivacyKeyError) as error:
        check_privacy(config)
    assert str(error.value) == WRONG_KEY
    assert "\n" not in str(error.value)


def test_postgresql_must_be_given_a_key() -> None:
    with pytest.raises(PrivacyKeyError, match=r"encryption_key must be set for PostgreSQL"):
        database_keys("postgresql://dibot@127.0.0.1/dibot")


def test_a_key_that_is_not_a_fernet_key_is_a_config_error_that_never_quotes_it() -> None:
    secret = "not-a-key-but-maybe-a-password"
    with pytest.raises(ConfigError) as error:
        load_config(environ={"DIBOT_PRIVACY_ENCRYPTION_KEY": f"{new_key()},{secret}"})
    assert "key 2 is not a Fernet key" in str(error.value)
    assert secret not in str(error.value)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DIBOT_PRIVACY_RAW_TEXT_DAYS", "-1", "raw_text_days must be 0 or more"),
        ("DIBOT_PRIVACY_INBOX_DAYS", "0", "inbox_days must be at least 1"),
    ],
)
def test_retention_periods_are_checked(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(environ={variable: value})


def test_sqlite_without_a_key_gets_a_private_key_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIBOT_PRIVACY_ENCRYPTION_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 'var' / 'dibot.db'}"
    upgrade(url)
    path = tmp_path / "var" / "dibot.db.key"
    made = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    parse_keys(made)
    upgrade(url)
    assert path.read_text() == made
    path.unlink()
    with pytest.raises(PrivacyKeyError, match=r"key file .* is missing"):
        database_keys(url, create=True)
    with pytest.raises(PrivacyKeyError, match="does not exist"):
        database_keys(url)


def test_sqlite_files_are_private(
    tmp_path: Path, flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIBOT_PRIVACY_ENCRYPTION_KEY", raising=False)
    database = tmp_path / "var" / "dibot.db"
    url = f"sqlite:///{database}"
    upgrade(url)
    engine = make_engine(url)
    try:
        send(TurnHandler(engine, flow), URN, "Hi")
        with engine.connect() as conn:  # the WAL and shared memory exist while it is open
            conn.exec_driver_sql("SELECT count(*) FROM respondents").scalar()
            modes = {
                name: stat.S_IMODE(os.stat(tmp_path / "var" / name).st_mode)
                for name in ("dibot.db", "dibot.db-wal", "dibot.db-shm", "dibot.db.key")
            }
    finally:
        engine.dispose()
    assert modes == dict.fromkeys(modes, 0o600)
    assert stat.S_IMODE(os.stat(tmp_path / "var").st_mode) == 0o700


def test_a_database_made_before_is_made_private_by_upgrade(tmp_path: Path) -> None:
    database = tmp_path / "dibot.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    upgrade(f"sqlite:///{database}")
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
