"""The key that signs the dashboard's session cookies and CSRF tokens.

The rule it keeps: `[web] secret_key` when given; else, for an SQLite database, a private file
beside it (`<database>.secret`, 0600) made once and read ever after, as `storage.privacy` does
for the encryption key; PostgreSQL must be given one. The key is never printed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from dibot.config import MIN_SECRET_KEY_LENGTH, Config, ConfigError
from storage.database import PRIVATE_DIRECTORY, PRIVATE_FILE, database_url, sqlite_file

SECRET_FILE_SUFFIX = ".secret"  # noqa: S105 (a file name)
SECRET_VARIABLE = "DIBOT_WEB_SECRET_KEY"  # noqa: S105 (a variable's name)


def secret_file(url: str) -> Path | None:
    """The secret key file beside an SQLite database file (None for PostgreSQL or in-memory)."""
    path = sqlite_file(url)
    return None if path is None else path.with_name(path.name + SECRET_FILE_SUFFIX)


def configured_secret_key(config: Config) -> str:
    """The dashboard's secret key (ConfigError: PostgreSQL without one, or a bad key file)."""
    given = config.web.secret_key.strip()
    if given:
        return given
    path = secret_file(config.database.url)
    if path is None:
        if database_url(config.database.url).get_backend_name() == "sqlite":
            return _process_key()  # an in-memory database lives no longer than this process
        raise ConfigError(
            f"[web] secret_key must be set for PostgreSQL ({SECRET_VARIABLE}, at least "
            f"{MIN_SECRET_KEY_LENGTH} characters): it signs the dashboard's sessions"
        )
    if not path.exists():
        _create_secret_file(path)
    key = path.read_text(encoding="ascii").strip()
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"secret key file {path} holds no usable key: remove it to have a new one made"
        )
    return key


_PROCESS_KEY: list[str] = []


def _process_key() -> str:
    if not _PROCESS_KEY:
        _PROCESS_KEY.append(secrets.token_urlsafe(48))
    return _PROCESS_KEY[0]


def _create_secret_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:  # another process made it first: theirs is the key
        return
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
