"""Configuration: a TOML file, then `DIBOT_<SECTION>_<KEY>` environment variables on top.

The file is `--config FILE`, else `$DIBOT_CONFIG`, else `./config.toml` if present, else the
defaults below. Every key has a default that runs locally with SQLite; `config.example.toml`
documents each one. Unknown sections or keys are errors, so a typo never passes silently.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The configuration names an unknown key, or a value of the wrong type."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///var/dibot.db"


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str = ""
    auth_token: str = ""
    from_number: str = ""
    messaging_service_sid: str = ""
    public_url: str = ""
    """The base URL Twilio calls (e.g. https://dibot.example.gov.uk); signatures are checked
    against it, not against the URL the proxy handed us."""


@dataclass(frozen=True)
class TelegramConfig:
    bot_token: str = ""
    webhook_secret: str = ""
    api_base_url: str = "https://api.telegram.org/bot"


@dataclass(frozen=True)
class CouncilConfig:
    name: str = "Your council"
    privacy_url: str = "example.gov.uk/privacy"
    helpline: str = "0300 000 0000"
    signposting: str = "For free help call 0300 000 0000."
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Language code -> these same keys in that language, from a `[council.cy]` table (or
    DIBOT_COUNCIL_CY_SIGNPOSTING…); a key not given there falls back to the one above."""


@dataclass(frozen=True)
class FlowConfig:
    path: str = ""
    """A flow directory; empty means the questionnaire shipped with dibot."""
    languages: str = ""
    """Languages to offer, comma-separated (e.g. "en" or "en,cy"); empty offers every language
    the flow has a catalog for. English, the flow's source, is always offered."""

    def language_list(self) -> list[str] | None:
        chosen = [code.strip() for code in self.languages.split(",") if code.strip()]
        return chosen or None


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    twilio: TwilioConfig = field(default_factory=TwilioConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    council: CouncilConfig = field(default_factory=CouncilConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)


def _coerce(section: str, key: str, value: Any, default: Any) -> Any:
    where = f"[{section}] {key}"
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in {"1", "true", "yes", "on"}:
                return True
            if value.lower() in {"0", "false", "no", "off"}:
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
            return int(value)
        raise ConfigError(f"{where} must be a whole number, not {value!r}")
    if isinstance(value, str):
        return value
    raise ConfigError(f"{where} must be a string, not {value!r}")


LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")
COUNCIL_TEXTS = ("name", "privacy_url", "helpline", "signposting")
COUNCIL_ENV = re.compile(r"^DIBOT_COUNCIL_([A-Z]{2,3})_(" + "|".join(COUNCIL_TEXTS).upper() + ")$")


def _council_translations(
    council: CouncilConfig, values: Mapping[str, Any], origin: str
) -> CouncilConfig:
    """Merge `[council.<lang>]` tables into the council's translations."""
    merged = {language: dict(texts) for language, texts in council.translations.items()}
    for language, texts in values.items():
        if not LANGUAGE_CODE.match(language) or not isinstance(texts, Mapping):
            raise ConfigError(f"{origin}: [council.{language}] must be a language's table")
        for key, value in texts.items():
            if key not in COUNCIL_TEXTS:
                raise ConfigError(f"{origin}: unknown key {key!r} in [council.{language}]")
            if not isinstance(value, str):
                raise ConfigError(f"{origin}: [council.{language}] {key} must be a string")
            merged.setdefault(language, {})[key] = value
    return replace(council, translations=merged)


def _apply(config: Config, values: Mapping[str, Mapping[str, Any]], origin: str) -> Config:
    sections = {f.name: f for f in fields(Config)}
    for section_name, section_values in values.items():
        if section_name not in sections:
            raise ConfigError(f"{origin}: unknown section [{section_name}]")
        if not isinstance(section_values, Mapping):
            raise ConfigError(f"{origin}: [{section_name}] must be a table")
        section = getattr(config, section_name)
        if isinstance(section, CouncilConfig):
            tables = {k: v for k, v in section_values.items() if isinstance(v, Mapping)}
            section = _council_translations(section, tables, origin)
            section_values = {k: v for k, v in section_values.items() if k not in tables}
        known = {f.name for f in fields(section)} - {"translations"}
        changes = {}
        for key, value in section_values.items():
            if key not in known:
                raise ConfigError(f"{origin}: unknown key {key!r} in [{section_name}]")
            changes[key] = _coerce(section_name, key, value, getattr(section, key))
        config = replace(config, **{section_name: replace(section, **changes)})
    return config


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the configuration as the CLI and the web service see it."""
    env = os.environ if environ is None else environ
    config = Config()
    chosen = Path(path) if path else Path(env["DIBOT_CONFIG"]) if env.get("DIBOT_CONFIG") else None
    if chosen is None and Path("config.toml").is_file():
        chosen = Path("config.toml")
    if chosen is not None:
        try:
            with chosen.open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"config file {chosen} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config file {chosen} is not valid TOML: {error}") from None
        config = _apply(config, data, str(chosen))
    overrides: dict[str, dict[str, str]] = {}
    for section in fields(Config):
        for key in fields(getattr(config, section.name)):
            name = f"DIBOT_{section.name}_{key.name}".upper()
            if name in env:
                overrides.setdefault(section.name, {})[key.name] = env[name]
    council: dict[str, Any] = overrides.setdefault("council", {})
    for name, value in env.items():
        if match := COUNCIL_ENV.match(name):
            council.setdefault(match[1].lower(), {})[match[2].lower()] = value
    return _apply(config, overrides, "environment")
