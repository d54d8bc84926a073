"""Messages in and out of the engine are plain frozen values, the same for every channel.

A channel turns what its provider sent into an `Inbound`, and renders each `Outbound` for its
medium: the text as it stands for SMS, the text plus `buttons` as an inline keyboard for
Telegram. The engine never knows which provider carries the words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from bot.state import State

EventKind = Literal[
    "answered",  # question, option number, score: an answer stored (or replaced via BACK)
    "skipped",  # question: the respondent skipped it
    "cleared",  # question: an answer withdrawn by BACK, to be asked again
    "skills_basis_chosen",  # basis: skills skipped ("not_asked") or answered "as_if"
    "assessment_started",  # mode: a new assessment began (quick or full)
    "assessment_completed",  # mode
    "assessment_abandoned",  # the respondent restarted and dropped the unfinished one
    "consented",
    "declined",
    "opted_out",
    "opted_in",
    "language_changed",
]


MAX_TEXT_CHARS = 1600
"""The longest text a turn reads (Twilio's longest body): no answer or command is longer, and
a bound here bounds the work and memory of every turn whatever a provider delivers."""
UNREADABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
"""Control characters (NUL among them: PostgreSQL cannot store it) and lone surrogates (which
no UTF-8 database or log can write), dropped from what a respondent sent."""


def clean_text(text: str) -> str:
    """What a respondent sent, as every channel hands it to the engine: unreadable characters
    dropped, at most MAX_TEXT_CHARS long. Line breaks and tabs stay."""
    return UNREADABLE.sub("", text[: MAX_TEXT_CHARS * 2])[:MAX_TEXT_CHARS]


@dataclass(frozen=True)
class Inbound:
    """One message from a respondent.

    `text` is what they typed ("" when there was none: media only, a sticker). `button` is the
    payload of a tapped button (Telegram callback data), which names the question it answers,
    so a stale tap can be told from a fresh one.
    """

    text: str
    button: str | None = None
    has_media: bool = False
    edited: bool = False
    """An edit of an earlier message (Telegram): never an answer, since it may be to an
    earlier question; the respondent is told how to change an answer instead."""


@dataclass(frozen=True)
class Button:
    """A choice rendered as a tappable button where the medium has them."""

    label: str
    payload: str


@dataclass(frozen=True)
class Outbound:
    """One message to the respondent: the full SMS text, and optional buttons."""

    text: str
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class Event:
    """Something the shell must record: answers, consent, opt-out, completion.

    `question` is a question key such as "GS01.skill" or "BA01.access"; `option` the number the
    respondent chose (1-based, as shown) and `score` that option's score from the flow data.
    `raw` is what they typed, kept with the answer.
    """

    kind: EventKind
    question: str | None = None
    option: int | None = None
    score: int | None = None
    raw: str | None = None
    mode: str | None = None
    basis: str | None = None
    """For skills_basis_chosen: "not_asked" or "as_if" (flows.model.SKILLS_BASES), or None
    when BACK withdrew the choice."""


@dataclass(frozen=True)
class Turn:
    """The result of one step: the new state, what to send, and what to record."""

    state: State
    outbound: tuple[Outbound, ...] = ()
    events: tuple[Event, ...] = field(default=())
