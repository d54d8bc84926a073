"""Build the flow, the database engine and the turn handler from configuration.

The flow is plain data: it is loaded and validated once per process, when the runtime is made
(before gunicorn forks, so the workers share it). The engine and the handler are built on first
use, which in `dibot serve` is inside a worker, never in the parent that forks them. Council
texts given for a language the flow does not offer are a configuration error, not ignored.
The engine carries the database's encryption keys (`[privacy] encryption_key`, else the SQLite
key file beside the database), so whatever uses it can read the URNs it holds.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from dibot.config import Config, ConfigError
from dibot.turns import TurnHandler
from flows.loader import load_flow
from flows.model import Flow
from storage.database import make_engine
from storage.privacy import (
    KEY_VARIABLE,
    Keys,
    Privacy,
    database_keys,
    keys_option,
    open_privacy,
)


def council_parameters(config: Config) -> dict[str, str]:
    """The values the flow's texts fill in for {council}, {privacy_url}, {helpline}…, and
    "{key}.{language}" for the ones the council gave in another language."""
    council = config.council
    parameters = {
        "council": council.name,
        "privacy_url": council.privacy_url,
        "helpline": council.helpline,
        "signposting": council.signposting,
        "help_device": council.help_device,
        "help_data": council.help_data,
        "help_skills": council.help_skills,
    }
    for language, texts in council.translations.items():
        for key, value in texts.items():
            parameters[f"{'council' if key == 'name' else key}.{language}"] = value
    return parameters


def load_configured_flow(config: Config) -> Flow:
    """The configured flow directory (the shipped questionnaire when empty), validated, and
    offering every language the council gave texts in."""
    flow = load_flow(
        config.flow.path or None,
        council=council_parameters(config),
        languages=config.flow.language_list(),
    )
    unoffered = sorted(set(config.council.translations) - set(flow.languages))
    if unoffered:
        language = unoffered[0]
        hint = (
            f"; flow.languages is {config.flow.languages!r}" if config.flow.language_list() else ""
        )
        raise ConfigError(
            f"[council.{language}] (or DIBOT_COUNCIL_{language.upper()}_*) gives texts in "
            f"{language!r}, which the flow does not offer (it offers {', '.join(flow.languages)})"
            + hint
        )
    return flow


def configured_keys(config: Config, *, create: bool = False) -> Keys:
    """The database's keys as configured (PrivacyKeyError: none, or not keys). A `Config`
    made in code (as tests make them) without a key falls back on DIBOT_PRIVACY_ENCRYPTION_KEY,
    as `load_config` would have read it."""
    given = config.privacy.encryption_key or os.environ.get(KEY_VARIABLE, "")
    return database_keys(config.database.url, given, create=create)


def command_engine(config: Config, **options: Any) -> Engine:
    """An engine for one command on the configured database, with its configured durability
    (`[database] sqlite_synchronous`) and statement parameters (phone numbers, message bodies)
    kept out of errors. `options` go to `make_engine` (a pool class, execution options)."""
    return make_engine(
        config.database.url,
        sqlite_synchronous=config.database.sqlite_synchronous,
        hide_parameters=True,
        **options,
    )


def check_privacy(config: Config) -> Privacy:
    """Open the database's lookup key with the configured keys: PrivacyKeyError when they are
    missing or wrong, before a service starts taking turns it could not store."""
    engine = command_engine(
        config, poolclass=sa.NullPool, execution_options=keys_option(configured_keys(config))
    )
    try:
        return open_privacy(engine)
    finally:
        engine.dispose()


class Runtime:
    """What a process needs to take turns: the flow now, the engine and handler when first used."""

    def __init__(
        self, config: Config, *, flow: Flow | None = None, handler: TurnHandler | None = None
    ) -> None:
        self.config = config
        self.flow = flow if flow is not None else load_configured_flow(config)
        self._given_handler = handler

    @cached_property
    def engine(self) -> Engine:
        # Statement parameters hold phone numbers and message bodies: keep them out of errors.
        return command_engine(self.config, execution_options=keys_option(lambda: self.keys))

    @cached_property
    def keys(self) -> Keys:
        """The database's keys, read when first needed (the health check needs none)."""
        return configured_keys(self.config)

    @cached_property
    def handler(self) -> TurnHandler:
        if self._given_handler is not None:
            return self._given_handler
        keep = self.config.privacy.raw_text_days > 0
        return TurnHandler(self.engine, self.flow, keep_raw_text=keep)
