"""Personal identifiers at rest: encrypted with the configured keys, found by a keyed hash.

The rule it keeps: a respondent's URN (phone number, Telegram id) and any typed text that is
kept are written only as Fernet tokens (`Keys.encrypt`), never in clear, and a URN is looked up
by `Privacy.digest`, HMAC-SHA256 under the database's *lookup key*. That lookup key is random,
made once by migration 0003, and stored in `privacy_keys` wrapped (encrypted) with the Fernet
keys: so a lookup never depends on which Fernet key encrypted a row, a key rotation never
changes a digest, and a key that cannot unwrap it is known to be the wrong one at once.

Keys are `[privacy] encryption_key`: one or more Fernet keys (44 characters of URL-safe base64,
from `Fernet.generate_key()`) separated by commas; the first encrypts, every one decrypts.
Without one, an SQLite database uses the key file beside it (`<database>.key`, 0600), which
`dibot db upgrade` creates once when the database holds nothing encrypted yet; PostgreSQL must be
given the key. An engine carries the keys it was built with (`keys_option`); an engine built
without them (tests, benchmarks) uses `DIBOT_PRIVACY_ENCRYPTION_KEY`, else the key file.
"""

from __future__ import annotations

import functools
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import URL

from storage.database import (
    PRIVATE_DIRECTORY,
    PRIVATE_FILE,
    database_url,
    read_only,
    sqlite_file,
)

KEY_VARIABLE = "DIBOT_PRIVACY_ENCRYPTION_KEY"
KEYS_OPTION = "dibot_keys"
"""Engine execution option: the `Keys` of the engine's database."""
KEY_FILE_SUFFIX = ".key"
LOOKUP_KEY = "lookup"
"""The `privacy_keys` row holding the wrapped HMAC key of URN lookups."""
LOOKUP_KEY_BYTES = 32

privacy_keys = sa.table(
    "privacy_keys", sa.column("name", sa.String()), sa.column("wrapped", sa.Text())
)

WRONG_KEY = (
    "[privacy] encryption_key does not decrypt this database's data: give the key it was "
    "encrypted with (after a rotation, the new key first and the old one after it, until "
    "`dibot db rekey` has run)"
)


class PrivacyKeyError(Exception):
    """No key, a key that is not a Fernet key, or the wrong key; the message says which and
    never quotes a key."""


class Keys:
    """Fernet keys: the first encrypts, any decrypts (`MultiFernet`)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise PrivacyKeyError("[privacy] encryption_key is empty")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self.count = len(keys)

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise PrivacyKeyError(WRONG_KEY) from None

    def rotate(self, token: str) -> str:
        """The same text, encrypted under the first key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise PrivacyKeyError(WRONG_KEY) from None

    def encrypt_bytes(self, data: bytes) -> str:
        return self._fernet.encrypt(data).decode("ascii")

    def decrypt_bytes(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode("ascii"))
        except InvalidToken:
            raise PrivacyKeyError(WRONG_KEY) from None


class OnceEachKeys(Keys):
    """The same keys, encrypting each distinct text once: one turn stores what the respondent
    typed twice (the answer's raw text and the timeline), and Fernet is a tenth of a turn's
    CPU. Only for one turn's writes: a token reused across rows of the same moment says
    nothing the rows do not (the same person, the same message)."""

    def __init__(self, keys: Keys) -> None:
        self._fernet = keys._fernet
        self.count = keys.count
        self._tokens: dict[str, str] = {}

    def encrypt(self, text: str) -> str:
        token = self._tokens.get(text)
        if token is None:
            token = self._tokens[text] = super().encrypt(text)
        return token


def new_key() -> str:
    """A new Fernet key, as `[privacy] encryption_key` takes it."""
    return Fernet.generate_key().decode("ascii")


def parse_keys(text: str, origin: str = "[privacy] encryption_key") -> Keys:
    """`text` as comma-separated Fernet keys; an error names `origin`, never the text."""
    parts = [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
    if not parts:
        raise PrivacyKeyError(f"{origin} holds no key")
    for number, part in enumerate(parts, start=1):
        try:
            Fernet(part)
        except ValueError:
            raise PrivacyKeyError(
                f"{origin}: key {number} is not a Fernet key (44 characters of URL-safe "
                "base64, e.g. from `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from None
    return Keys([part.encode("ascii") for part in parts])


# --- where the keys come from ---------------------------------------------------------------


def key_file(url: str | URL) -> Path | None:
    """The key file beside an SQLite database file (None for PostgreSQL or in-memory)."""
    path = sqlite_file(url)
    return None if path is None else path.with_name(path.name + KEY_FILE_SUFFIX)


def database_keys(url: str | URL, configured: str = "", *, create: bool = False) -> Keys:
    """The keys for the database at `url`: `configured` if given, else the SQLite key file,
    made (0600) when `create` and the database holds nothing encrypted yet."""
    if configured.strip():
        return parse_keys(configured)
    path = key_file(url)
    if path is None:
        raise PrivacyKeyError(
            "[privacy] encryption_key must be set for PostgreSQL "
            f"({KEY_VARIABLE}); see the README's Personal data section"
        )
    if path.exists():
        return parse_keys(path.read_text(encoding="ascii"), origin=f"key file {path}")
    if not create:
        raise PrivacyKeyError(
            f"no encryption key: [privacy] encryption_key is not set and {path} does not "
            "exist (`dibot db upgrade` creates it for a new database)"
        )
    if holds_encrypted_data(url):
        raise PrivacyKeyError(
            f"the database holds encrypted data but its key file {path} is missing: restore it, "
            "or set [privacy] encryption_key to the key it was encrypted with"
        )
    return _create_key_file(path)


def _create_key_file(path: Path) -> Keys:
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
    key = new_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return parse_keys(key)


def holds_encrypted_data(url: str | URL) -> bool:
    """Whether the SQLite file at `url` exists and has a lookup key (so encrypted data)."""
    path = sqlite_file(url)
    if path is None or not path.is_file():
        return False
    engine = sa.create_engine(database_url(url), poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("privacy_keys"):
                return False
            count = sa.select(sa.func.count()).select_from(privacy_keys)
            return connection.execute(count).scalar_one() > 0
    finally:
        engine.dispose()


@functools.lru_cache(maxsize=64)
def _default_keys(url: str, given: str) -> Keys:
    return database_keys(url, given)


def default_keys(url: str | URL) -> Keys:
    """The keys of a database whose engine carries none: `DIBOT_PRIVACY_ENCRYPTION_KEY`, else
    the SQLite key file (read once per process)."""
    rendered = database_url(url).render_as_string(hide_password=False)
    return _default_keys(rendered, os.environ.get(KEY_VARIABLE, ""))


def keys_option(keys: Keys | Callable[[], Keys]) -> dict[str, Any]:
    """`execution_options` for `make_engine`: the engine's connections carry `keys`, or a
    function giving them when first needed (so work that needs none, such as the health
    check, never fails for want of them)."""
    return {KEYS_OPTION: keys}


def keys_of(bind: sa.Engine | sa.Connection) -> Keys:
    """The keys the engine (or connection) was built with, else the default ones."""
    keys = bind.get_execution_options().get(KEYS_OPTION)
    if isinstance(keys, Keys):
        return keys
    if callable(keys):
        given: Keys = keys()
        return given
    return default_keys(bind.engine.url)


# --- the lookup key ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Privacy:
    """The keys and the lookup key of one database: what reading or writing a URN needs."""

    keys: Keys
    lookup_key: bytes

    def digest(self, urn: str) -> bytes:
        """The URN's keyed hash: what finds a respondent (one HMAC)."""
        return hmac.digest(self.lookup_key, urn.encode("utf-8"), "sha256")

    def encrypt(self, text: str) -> str:
        return self.keys.encrypt(text)

    def decrypt(self, token: str) -> str:
        return self.keys.decrypt(token)


def create_lookup_key(connection: sa.Connection, keys: Keys) -> Privacy:
    """Make the database's lookup key and store it wrapped (migration 0003)."""
    lookup_key = secrets.token_bytes(LOOKUP_KEY_BYTES)
    connection.execute(
        sa.insert(privacy_keys).values(name=LOOKUP_KEY, wrapped=keys.encrypt_bytes(lookup_key))
    )
    return Privacy(keys, lookup_key)


_wrapped_lookup_key = sa.select(privacy_keys.c.wrapped).where(privacy_keys.c.name == LOOKUP_KEY)


def load_privacy(connection: sa.Connection, keys: Keys) -> Privacy:
    """The database's lookup key unwrapped with `keys`; PrivacyKeyError if they are wrong."""
    wrapped = connection.execute(_wrapped_lookup_key).scalar_one_or_none()
    if wrapped is None:
        raise PrivacyKeyError("the database has no lookup key: run `dibot db upgrade` first")
    return Privacy(keys, keys.decrypt_bytes(wrapped))


def open_privacy(engine: sa.Engine) -> Privacy:
    """`load_privacy` on a read-only connection of `engine`, with the engine's keys."""
    with engine.connect() as connection:
        return load_privacy(read_only(connection), keys_of(engine))


def rewrap_lookup_key(connection: sa.Connection, keys: Keys) -> None:
    """Encrypt the lookup key again under the first key (after a rotation)."""
    wrapped = connection.execute(_wrapped_lookup_key).scalar_one()
    connection.execute(
        sa.update(privacy_keys)
        .where(privacy_keys.c.name == LOOKUP_KEY)
        .values(wrapped=keys.rotate(wrapped))
    )
