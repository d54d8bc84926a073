"""A respondent's conversation state: one frozen value that round-trips through JSON.

The state says where the respondent is (`stage`, and `question`: the key of the question or
topic break they are being asked), what they have answered so far and in what order, and
nothing that can be worked out again from the flow. `to_json()` and `from_json()` are exact
inverses: the storage keeps the JSON and nothing else about the conversation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, cast, get_args

Stage = Literal[
    "new",  # nothing sent yet
    "language",  # choosing a language (only when the flow has more than one)
    "consent",  # privacy notice shown, waiting for agree / no thanks
    "mode",  # choosing quick check or full assessment
    "asking",  # waiting for an answer to `question`
    "paused",  # the respondent said LATER; `question` is where they resume
    "resume",  # back after a long gap: carry on or start again?
    "restart",  # RESTART said: confirm before clearing answers
    "checkin",  # invited to a check-in months after their baseline: start, or not now
    "done",  # finished; the priorities message was sent
    "declined",  # said no at consent
]
STAGES: tuple[str, ...] = get_args(Stage)

STATE_SCHEMA = 1
KINDS = ("baseline", "checkin")


class StateError(ValueError):
    """A saved state that cannot be read; the message names the problem, never the content."""


@dataclass(frozen=True)
class State:
    stage: Stage = "new"
    language: str = "en"
    language_chosen: bool = False
    """The respondent (or their channel, e.g. Telegram's language setting) chose `language`;
    until then a flow with several languages asks first."""
    mode: str | None = None
    question: str | None = None
    answers: Mapping[str, int] = field(default_factory=dict)
    """Question key -> the option number chosen (1-based, as shown)."""
    skipped: tuple[str, ...] = ()
    topics_skipped: tuple[str, ...] = ()
    """Heading ids the respondent chose to skip at a topic break (full assessment)."""
    history: tuple[str, ...] = ()
    """Keys answered, skipped or passed (topic breaks), oldest first: what BACK undoes."""
    misses: int = 0
    """Replies in a row that matched no choice for the current prompt."""
    resting: bool = False
    """LATER was said at a numbered prompt (consent, mode…): whatever they send next that is
    not a choice shows the prompt again with a welcome, not a re-ask."""
    unanswered: int = 0
    """Messages in a row that answered nothing (nonsense, media, stale taps, texts after the
    end), across questions: past a few the engine falls silent, so an auto-reply never loops."""
    kind: str = "baseline"
    """"baseline", or "checkin": a re-assessment months later that asks only `only`."""
    only: tuple[str, ...] = ()
    """The question keys a check-in asks (those answered at its baseline); () asks them all."""
    baseline: Mapping[str, int] = field(default_factory=dict)
    """A check-in's baseline answers (question key -> option), to say what changed."""
    since: Mapping[str, str] = field(default_factory=dict)
    """When the baseline was, per language ("March 2027", "Mawrth 2027"), as the shell wrote it."""
    baseline_id: int | None = None
    """The stored assessment a check-in follows (the shell's id, carried for its records)."""
    skills_basis: str | None = None
    """How the skills are answered by a respondent offered the skills choice (no device or no
    connection): "not_asked" (skipped, recorded as not asked) or "as_if" (as if they had one);
    None when the choice was not offered or not yet made."""
    batch: bool = False
    """The respondent chose several answers a text: a run of questions on one scale is asked
    in one message (absent from states saved before it existed: one at a time)."""
    opted_out: bool = False
    lost_place: bool = False
    """The saved state could not be read and was set aside: the conversation starts again,
    and the first thing said is sorry for that."""
    last_seen: str | None = None
    """ISO-8601 time of the respondent's previous message, from `now` (never the clock)."""

    def evolve(self, **changes: Any) -> State:
        """This state with `changes`. As `dataclasses.replace`, an unknown field is a
        TypeError; unlike it, nothing is rebuilt through `__init__` (the engine evolves the
        state several times a turn, and every field is a value already checked)."""
        unknown = changes.keys() - _FIELD_NAMES
        if unknown:
            raise TypeError(f"State has no field {', '.join(sorted(unknown))}")
        evolved = object.__new__(State)
        values = evolved.__dict__
        values.update(self.__dict__)
        values.update(changes)
        return evolved

    def to_json(self) -> str:
        data: dict[str, Any] = dict(self.__dict__)
        data["answers"] = dict(self.answers)
        data["baseline"] = dict(self.baseline)
        data["since"] = dict(self.since)
        data["schema"] = STATE_SCHEMA
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> State:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise StateError("conversation state must be a JSON object")
        schema = data.pop("schema", None)
        if schema != STATE_SCHEMA:
            raise StateError(f"conversation state schema is not {STATE_SCHEMA}")
        if data.get("stage") not in STAGES:
            raise StateError("unknown conversation stage")
        unknown = set(data) - set(FIELD_TYPES)
        if unknown:
            raise StateError("conversation state has fields this dibot does not know")
        for name, value in data.items():
            if not FIELD_TYPES[name](value):
                raise StateError(f"conversation state field {name} has the wrong type")
        for name in ("skipped", "topics_skipped", "history", "only"):
            data[name] = tuple(cast(list[str], data.get(name, [])))
        last_seen = data.get("last_seen")
        if last_seen is not None:
            try:
                datetime.fromisoformat(last_seen)
            except ValueError:
                raise StateError("last_seen must be an ISO-8601 time") from None
        return cls(**data)


def _text(value: object) -> bool:
    return isinstance(value, str)


def _optional_text(value: object) -> bool:
    return value is None or isinstance(value, str)


def _flag(value: object) -> bool:
    return isinstance(value, bool)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _keys(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(key, str) for key in value)


def _labels(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(key, str) and isinstance(label, str) for key, label in value.items()
    )


def _answers(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(key, str) and isinstance(number, int) and not isinstance(number, bool)
        for key, number in value.items()
    )


FIELD_TYPES: dict[str, Callable[[object], bool]] = {
    "stage": lambda value: value in STAGES,
    "language": _text,
    "language_chosen": _flag,
    "mode": _optional_text,
    "question": _optional_text,
    "answers": _answers,
    "skipped": _keys,
    "topics_skipped": _keys,
    "history": _keys,
    "misses": _count,
    "resting": _flag,
    "unanswered": _count,
    "kind": lambda value: value in KINDS,
    "only": _keys,
    "baseline": _answers,
    "since": _labels,
    "baseline_id": lambda value: value is None or _count(value),
    "skills_basis": _optional_text,
    "batch": _flag,
    "opted_out": _flag,
    "lost_place": _flag,
    "last_seen": _optional_text,
}
"""What each saved field may hold: a state that passes is one the engine can step."""

_FIELD_NAMES = frozenset(f.name for f in fields(State))
