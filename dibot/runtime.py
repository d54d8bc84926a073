"""Build the flow, the database engine and the turn handler from configuration.

The flow is plain data: it is loaded and validated once per process, when the runtime is made
(before gunicorn forks, so the workers share it). The engine and the handler are built on first
use, which in `dibot serve` is inside a worker, never in the parent that forks them. Council
texts given for a language the flow does not offer are a configuration error, not ignored.
"""

from __future__ import annotations

from functools import cached_property

from sqlalchemy import Engine

from dibot.config import Config, ConfigError
from dibot.turns import TurnHandler
from flows.loader import load_flow
from flows.model import Flow
from storage.database import make_engine


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
        return make_engine(self.config.database.url, hide_parameters=True)

    @cached_property
    def handler(self) -> TurnHandler:
        if self._given_handler is not None:
            return self._given_handler
        return TurnHandler(self.engine, self.flow)
