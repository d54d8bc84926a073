"""Configuration: a TOML file, then `DIBOT_<SECTION>_<KEY>` environment variables on top.

The file is `--config FILE`, else `$DIBOT_CONFIG`, else `./config.toml` if present, else the
defaults below. Every key has a default that runs locally with SQLite; `config.example.toml`
documents each one. Unknown sections or keys, and `DIBOT_*` variables that name no setting, are
errors, so a typo never passes silently; so are values no command could use (a port outside
1-65535, no workers, a database other than SQLite or PostgreSQL, a retention period below its
minimum, an encryption key that is not one). A file's values keep their TOML
type (`port = "8000"` is an error); the environment's are text, read as the key's type.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sqlalchemy.exc import ArgumentError

from storage.database import (
    DEFAULT_SQLITE_SYNCHRONOUS,
    SQLITE_SYNCHRONOUS_LEVELS,
    database_url,
)
from storage.privacy import PrivacyKeyError, parse_keys


class ConfigError(ValueError):
    """The configuration names an unknown key, or a value of the wrong type."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2


@dataclass(frozen=True)
class WebConfig:
    secret_key: str = ""
    """Signs the dashboard's session cookies and CSRF tokens (at least 32 characters). Empty:
    with SQLite, a key file made once beside the database; PostgreSQL must be given one."""
    cookie_secure: bool = True
    """Session cookies only over HTTPS; false only when [server] host is 127.0.0.1 or
    localhost (trying the dashboard locally over plain HTTP)."""
    trusted_proxies: int = 0
    """How many reverse proxies in front of dibot append to X-Forwarded-For (1 behind one
    nginx): the client's address, which login throttling counts by, is read that many hops
    from the right. 0: the header is ignored (anyone can write it)."""


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///var/dibot.db"
    sqlite_synchronous: str = DEFAULT_SQLITE_SYNCHRONOUS
    """SQLite's durability in WAL mode: "normal" (a committed turn survives the process being
    killed; a power cut may lose the last turns before it) or "full" (every commit synced to
    disk: survives a power cut too, at about a third of a turn's time). See
    `storage.database`. PostgreSQL's is its server's `synchronous_commit`."""


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str = ""
    auth_token: str = ""
    from_number: str = ""
    messaging_service_sid: str = ""
    public_url: str = ""
    """The base URL Twilio calls (e.g. https://dibot.example.gov.uk); signatures are checked
    against it, not against the URL the proxy handed us. Delivery reports are asked for at
    its /webhooks/twilio/status."""
    api_base_url: str = "https://api.twilio.com"
    """Twilio's REST API; a Twilio-compatible gateway, or a local fake in tests."""
    segments_per_second: int = 10
    """How fast the sender (the number, or the Messaging Service) may send, in SMS segments a
    second, by every worker process together (shared through the database): Twilio queues
    what comes faster. 10 is Twilio's rate for a UK long code (1 for a US one, 100 for a short
    code); through a Messaging Service, the rate of all its numbers together."""


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
    signposting: str = "For free help call {helpline}."
    """General help, always at the end of the priorities message."""
    help_device: str = ""
    """Help for a resident with no device, or held back by the cost of one: a device loan or
    recycling scheme. Empty: not said."""
    help_data: str = ""
    """Help with data and connection costs: a data bank, social tariffs. Empty: not said."""
    help_skills: str = ""
    """Help with skills: classes, a library, a digital champion. Empty: not said."""
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
class PrivacyConfig:
    encryption_key: str = ""
    """Fernet keys, comma-separated, the first encrypting (see `storage.privacy`). Empty: with
    SQLite, the key file beside the database; PostgreSQL must be given one."""
    raw_text_days: int = 30
    """Days an answer's typed text is kept (encrypted) before `dibot retention` removes it;
    0 keeps none at all. The option and score are always kept."""
    inbox_days: int = 7
    """Days inbox messages (the duplicate window) and sent outbox messages are kept."""


@dataclass(frozen=True)
class OutreachConfig:
    timezone: str = "Europe/London"
    """The council's clock: quiet hours and check-in dates are read in it."""
    quiet_hours: str = "09:00-20:00"
    """When outreach texts may go (invitations, follow-ups, reminders, check-ins); empty: any
    time. Replies to a resident's own message are never held."""
    quiet_days: str = "mon-sat"
    """The days outreach texts may go (e.g. "mon-fri", "mon,wed,sat"); empty: every day."""
    lawful_basis: str = "public_task"
    """Recorded with each enrolment: the UK GDPR basis the council relies on."""
    reminders: str = "2d,5d"
    """When to remind someone who stopped part-way, counted from their last text: at most two
    delays (e.g. "2d,5d", "36h"); empty: no reminders."""
    thread_hours: int = 72
    """A follow-up thread closes by itself this many hours after the worker's last text; the
    bot then carries on where the resident was."""
    templates: Mapping[str, str] = field(default_factory=dict)
    """Follow-up texts by name (`dibot send --template NAME`), from an `[outreach.templates]`
    table or DIBOT_OUTREACH_TEMPLATES_<NAME>: {council}, {helpline}, {worker} and each
    `--value` filled in (`outreach.followups`)."""


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    web: WebConfig = field(default_factory=WebConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    twilio: TwilioConfig = field(default_factory=TwilioConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    council: CouncilConfig = field(default_factory=CouncilConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    outreach: OutreachConfig = field(default_factory=OutreachConfig)


def _coerce(section: str, key: str, value: Any, default: Any, *, text: bool) -> Any:
    """`value` as the type of `default`; from `text` (an environment variable), parsed."""
    where = f"[{section}] {key}"
    if isinstance(default, bool):
        if text and isinstance(value, str):
            if value.lower() in {"1", "true", "yes", "on"}:
                return True
            if value.lower() in {"0", "false", "no", "off"}:
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    if isinstance(default, Mapping):  # [outreach.templates]: name -> text, merged by name
        return {**default, **_templates(where, value)}
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if text and isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
            return int(value)
        raise ConfigError(f"{where} must be a whole number, not {value!r}")
    if isinstance(value, str):
        return value
    raise ConfigError(f"{where} must be a string, not {value!r}")


TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
TEMPLATE_ENV = re.compile(r"^DIBOT_OUTREACH_TEMPLATES_([A-Z0-9_]{1,32})$")


def _templates(where: str, value: Any) -> dict[str, str]:
    """A table of follow-up templates: lowercase names, texts whose placeholders are names."""
    from outreach.followups import FollowUpError, template_placeholders

    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table of name = text")
    templates = {}
    for name, text in value.items():
        if not TEMPLATE_NAME.match(name):
            raise ConfigError(f"{where}: {name!r} is not a template name (a-z, 0-9, _)")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{where} {name} must be a text")
        try:
            template_placeholders(text)
        except FollowUpError as error:
            raise ConfigError(f"{where} {name}: {error}") from None
        templates[name] = text
    return templates


LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")
COUNCIL_TEXTS = (
    "name",
    "privacy_url",
    "helpline",
    "signposting",
    "help_device",
    "help_data",
    "help_skills",
)
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


def _apply(
    config: Config, values: Mapping[str, Mapping[str, Any]], origin: str, *, text: bool = False
) -> Config:
    """`values` (from a file, or as `text` from the environment) over `config`."""
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
            changes[key] = _coerce(section_name, key, value, getattr(section, key), text=text)
        config = replace(config, **{section_name: replace(section, **changes)})
    return config


SUPPORTED_DATABASES = "use sqlite:///… or postgresql://…"
SUPPORTED_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite", "postgresql+psycopg"})
"""SQLite (the standard library's driver) and PostgreSQL through psycopg 3 (which
`postgresql://…` and `postgres://…` mean: see `storage.database.database_url`), nothing else."""


def _validate(config: Config) -> Config:
    """Values of the right type that no command could use. The database URL is never quoted:
    it may hold a password."""
    if not 1 <= config.twilio.segments_per_second <= 10_000:
        raise ConfigError(
            "[twilio] segments_per_second must be from 1 to 10000, "
            f"not {config.twilio.segments_per_second}"
        )
    if not 1 <= config.server.port <= 65535:
        raise ConfigError(f"[server] port must be from 1 to 65535, not {config.server.port}")
    if config.server.workers < 1:
        raise ConfigError(f"[server] workers must be at least 1, not {config.server.workers}")
    try:
        drivername = database_url(config.database.url).drivername
    except (ArgumentError, ValueError):
        raise ConfigError(f"[database] url is not a database URL: {SUPPORTED_DATABASES}") from None
    if drivername not in SUPPORTED_DRIVERS:
        raise ConfigError(
            f"[database] url names {drivername!r}: dibot supports SQLite and PostgreSQL only "
            f"({SUPPORTED_DATABASES})"
        )
    if config.database.sqlite_synchronous not in SQLITE_SYNCHRONOUS_LEVELS:
        raise ConfigError(
            "[database] sqlite_synchronous must be "
            f"{' or '.join(repr(level) for level in SQLITE_SYNCHRONOUS_LEVELS)}, "
            f"not {config.database.sqlite_synchronous!r}"
        )
    _validate_outreach(config.outreach)
    _validate_web(config)
    return _validate_privacy(config)


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
MIN_SECRET_KEY_LENGTH = 32
MAX_TRUSTED_PROXIES = 5


def _validate_web(config: Config) -> None:
    """Session cookies go over plain HTTP only on this machine; a secret key long enough to
    sign them (never quoted)."""
    if not config.web.cookie_secure and config.server.host not in LOCAL_HOSTS:
        raise ConfigError(
            "[web] cookie_secure may be false only when [server] host is 127.0.0.1 or "
            f"localhost, not {config.server.host!r}"
        )
    if not 0 <= config.web.trusted_proxies <= MAX_TRUSTED_PROXIES:
        raise ConfigError(
            f"[web] trusted_proxies must be 0 to {MAX_TRUSTED_PROXIES}, "
            f"not {config.web.trusted_proxies}"
        )
    key = config.web.secret_key.strip()
    if key and len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"[web] secret_key must be at least {MIN_SECRET_KEY_LENGTH} characters "
            "(e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
        )


def _validate_outreach(outreach: OutreachConfig) -> None:
    """Quiet hours, days and zone that can be read; the value is named, never guessed."""
    from outreach.quiet_hours import QuietHoursError, parse_quiet_hours

    try:
        parse_quiet_hours(outreach.quiet_hours, outreach.quiet_days, outreach.timezone)
    except QuietHoursError as error:
        raise ConfigError(f"[outreach] {error}") from None
    if not outreach.lawful_basis.strip():
        raise ConfigError("[outreach] lawful_basis must name the basis enrolments rely on")
    if not 1 <= outreach.thread_hours <= 24 * 90:
        raise ConfigError(
            f"[outreach] thread_hours must be from 1 to {24 * 90}, not {outreach.thread_hours}"
        )
    from outreach.timing import TimingError, parse_reminders

    try:
        parse_reminders(outreach.reminders)
    except TimingError as error:
        raise ConfigError(f"[outreach] reminders: {error}") from None


def _validate_privacy(config: Config) -> Config:
    """Retention periods that mean something, and keys that are keys (never quoted)."""
    privacy = config.privacy
    if privacy.raw_text_days < 0:
        raise ConfigError(f"[privacy] raw_text_days must be 0 or more, not {privacy.raw_text_days}")
    if privacy.inbox_days < 1:
        raise ConfigError(f"[privacy] inbox_days must be at least 1, not {privacy.inbox_days}")
    if privacy.encryption_key.strip():
        try:
            parse_keys(privacy.encryption_key)
        except PrivacyKeyError as error:
            raise ConfigError(str(error)) from None
    return config


CONFIG_FILE_VARIABLE = "DIBOT_CONFIG"
ENVIRONMENT_PREFIX = "DIBOT_"


def _setting_variables() -> dict[str, tuple[str, str]]:
    """`DIBOT_<SECTION>_<KEY>` -> (section, key), for every key a file may set."""
    defaults = Config()
    return {
        f"DIBOT_{section.name}_{key.name}".upper(): (section.name, key.name)
        for section in fields(Config)
        for key in fields(getattr(defaults, section.name))
        if key.name not in ("translations", "templates")
    }


def _unknown_variable(name: str, variables: Mapping[str, tuple[str, str]]) -> ConfigError:
    """Name the variable and what it could have meant: its section's variables, or the
    sections (a misspelt section matches none)."""
    sections = [section.name for section in fields(Config)]
    for section in sections:
        if name.upper().startswith(f"{ENVIRONMENT_PREFIX}{section.upper()}_"):
            known = [variable for variable, (where, _) in variables.items() if where == section]
            if section == "council":
                known.append(f"DIBOT_COUNCIL_<LANG>_{{{','.join(COUNCIL_TEXTS).upper()}}}")
            if section == "outreach":
                known.append("DIBOT_OUTREACH_TEMPLATES_<NAME>")
            return ConfigError(
                f"environment variable {name} names no setting; [{section}] is set by "
                + ", ".join(known)
            )
    return ConfigError(
        f"environment variable {name} names no setting: {CONFIG_FILE_VARIABLE} names the "
        f"config file, and DIBOT_<SECTION>_<KEY> sets a key of {', '.join(sections)}"
    )


def _environment_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The settings `DIBOT_*` variables give, council translations as `{lang: {key: …}}`."""
    variables = _setting_variables()
    overrides: dict[str, dict[str, Any]] = {}
    for name, value in sorted(env.items()):
        if not name.upper().startswith(ENVIRONMENT_PREFIX) or name == CONFIG_FILE_VARIABLE:
            continue
        if name in variables:
            section, key = variables[name]
            overrides.setdefault(section, {})[key] = value
        elif match := COUNCIL_ENV.match(name):
            council = overrides.setdefault("council", {})
            council.setdefault(match[1].lower(), {})[match[2].lower()] = value
        elif match := TEMPLATE_ENV.match(name):
            outreach = overrides.setdefault("outreach", {})
            outreach.setdefault("templates", {})[match[1].lower()] = value
        else:
            raise _unknown_variable(name, variables)
    return overrides


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the configuration as the CLI and the web service see it."""
    env = os.environ if environ is None else environ
    overrides = _environment_overrides(env)  # a misspelt variable fails before the file is read
    config = Config()
    named = path or env.get(CONFIG_FILE_VARIABLE)
    chosen = Path(named) if named else None
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
    return _validate(_apply(config, overrides, "environment", text=True))
