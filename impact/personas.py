"""Personas: baselines in the questionnaire's own item ids, read from a TOML data file, checked
against the flow, and stored by slug.

The rule it keeps: nothing is stored unless the whole file is right. `read_personas` checks
every persona against the flow (each answer a question the persona's mode asks, each option on
its scale, no slug twice, every text there) and fails on the first fault with one line naming
the file, the persona and the key. `store_personas` writes in the caller's transaction (it never
commits), so a load is all or nothing; a slug already stored is updated to what the file says
(its cohort too), keeping who made it and when. The file's format:

    [meta]
    source = "where these personas come from"     # each persona may give its own instead
    [[personas]]
    slug = "no-device-no-interest"                # lower-case words joined by hyphens
    name = "…"
    description = "…"
    mode = "quick"                                # a mode of the flow: "quick" or "full"
    cohort = "Device loans 2027"                  # optional: the cohort it is the baseline of
    [personas.answers]
    "BA01.access" = 1                             # question key = option number, as answered
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from flows.model import Flow, Question
from storage.models import Cohort, Persona, table

ILLUSTRATIVE_PERSONAS = Path(__file__).resolve().parent / "data" / "personas.toml"
"""The set dibot ships: its own illustrative personas (LOTI's are not public)."""

SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
SLUG_LENGTH = 64
NAME_LENGTH = 100
BY_LENGTH = 100
TOP_LEVEL_KEYS = ("meta", "personas")
META_KEYS = ("source",)
PERSONA_KEYS = ("slug", "name", "description", "mode", "cohort", "source", "answers")

personas = table(Persona)
cohorts = table(Cohort)


class PersonaError(ValueError):
    """A persona (or a file of them) that cannot be used: one line, naming where."""


@dataclass(frozen=True)
class PersonaSpec:
    slug: str
    name: str
    description: str
    mode: str
    answers: Mapping[str, int]
    """Question key -> option number, as a respondent's answers."""
    source: str
    cohort: str | None = None
    """The name of the cohort it is the expected baseline of, if any."""


@dataclass(frozen=True)
class StoredPersona:
    id: int
    slug: str
    name: str
    description: str
    mode: str
    answers: Mapping[str, int]
    source: str
    cohort_id: int | None
    cohort: str | None
    """The cohort's name."""
    created_by: str
    created_at: datetime
    updated_at: datetime


# --- reading a file --------------------------------------------------------------------------


def read_personas(path: str | Path, flow: Flow) -> list[PersonaSpec]:
    """Every persona in the file, checked against `flow`; PersonaError on the first fault."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise PersonaError(f"{path}: cannot read it: {reason}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PersonaError(f"{path}: not valid TOML: {error}") from None
    try:
        return _specs(document, flow)
    except PersonaError as error:
        raise PersonaError(f"{path}: {error}") from None


def _specs(document: Mapping[str, Any], flow: Flow) -> list[PersonaSpec]:
    _only_keys(document, TOP_LEVEL_KEYS, "the file")
    meta = document.get("meta", {})
    if not isinstance(meta, dict):
        raise PersonaError("[meta] must be a table")
    _only_keys(meta, META_KEYS, "[meta]")
    default_source = meta.get("source")
    tables = document.get("personas")
    if not isinstance(tables, list) or not tables:
        raise PersonaError("no personas: add a [[personas]] table for each")
    specs: list[PersonaSpec] = []
    where_seen: dict[str, int] = {}
    for position, entry in enumerate(tables, start=1):
        spec = _spec(entry, position, default_source, flow)
        if spec.slug in where_seen:
            raise PersonaError(
                f"persona {spec.slug!r}: duplicate slug (persona #{where_seen[spec.slug]} "
                f"has it too; this is persona #{position})"
            )
        where_seen[spec.slug] = position
        specs.append(spec)
    return specs


def _spec(entry: Any, position: int, default_source: Any, flow: Flow) -> PersonaSpec:
    if not isinstance(entry, dict):
        raise PersonaError(f"persona #{position}: must be a [[personas]] table")
    slug = entry.get("slug")
    label = f"persona {slug!r}" if isinstance(slug, str) and slug else f"persona #{position}"
    try:
        _only_keys(entry, PERSONA_KEYS, "a persona")
        source = entry.get("source", default_source)
        answers = entry.get("answers")
        if not isinstance(answers, dict):
            raise PersonaError("no answers: add a [personas.answers] table")
        cohort = entry.get("cohort")
        if cohort is not None and not (isinstance(cohort, str) and cohort.strip()):
            raise PersonaError("cohort: must be a cohort's name")
        spec = PersonaSpec(
            slug=_text(entry, "slug"),
            name=_text(entry, "name"),
            description=_text(entry, "description"),
            mode=_text(entry, "mode"),
            answers=dict(answers),
            source=_text({"source": source}, "source", hint=" (here or in [meta])"),
            cohort=cohort,
        )
        check_persona(flow, spec)
    except PersonaError as error:
        raise PersonaError(f"{label}: {error}") from None
    return spec


def _text(entry: Mapping[str, Any], key: str, hint: str = "") -> str:
    value = entry.get(key)
    if value is None:
        raise PersonaError(f"no {key}{hint}")
    if not isinstance(value, str) or not value.strip():
        raise PersonaError(f"{key}: must be a non-empty text")
    return value.strip()


def _only_keys(table_: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in table_:
        if key not in allowed:
            raise PersonaError(
                f"unknown key {key!r} in {where} (it may have: {', '.join(allowed)})"
            )


# --- checking one persona --------------------------------------------------------------------


def check_persona(flow: Flow, spec: PersonaSpec) -> None:
    """PersonaError (without the persona's name: the caller adds it) for anything `spec` has
    that a respondent in its mode could not: the dashboard checks with this too."""
    if not SLUG.fullmatch(spec.slug) or len(spec.slug) > SLUG_LENGTH:
        raise PersonaError(
            f"slug {spec.slug!r}: use lower-case letters and digits in words joined by hyphens "
            f"(at most {SLUG_LENGTH} characters)"
        )
    if len(spec.name) > NAME_LENGTH:
        raise PersonaError(f"name: at most {NAME_LENGTH} characters")
    mode = flow.modes.get(spec.mode)
    if mode is None:
        raise PersonaError(f"mode {spec.mode!r}: the flow's modes are {', '.join(flow.modes)}")
    if not spec.answers:
        raise PersonaError("no answers")
    asked = {step.key for step in mode.steps if isinstance(step, Question)}
    for key, number in spec.answers.items():
        question = flow.questions.get(key)
        if question is None and isinstance(number, Mapping):
            inner = next(iter(number), "aspect")
            raise PersonaError(
                f"answer {key!r}: write the question key in quotes, "
                f'"{key}.{inner}" = {number.get(inner, 1)!r} '
                f"(unquoted, TOML reads {key}.{inner} as a table)"
            )
        if question is None:
            raise PersonaError(f"answer {key!r}: no such question in flow {flow.id}")
        if key not in asked:
            raise PersonaError(f"answer {key!r}: not asked in {spec.mode} mode")
        scale = flow.scale_of(question)
        numbers = [option.number for option in scale.options]
        if type(number) is not int or number not in numbers:
            raise PersonaError(
                f"answer {key!r}: {number!r} is not an option of the {scale.id} scale "
                f"({min(numbers)} to {max(numbers)})"
            )
    _check_interest_asked(flow, spec)


def _check_interest_asked(flow: Flow, spec: PersonaSpec) -> None:
    """Where a mode asks interest only after a low skill, a confident skill has none."""
    limit = flow.modes[spec.mode].interest_if_skill_at_most
    if limit is None:
        return
    skill_scale = flow.scales["skill"]
    for key in spec.answers:
        unit, _, aspect = key.rpartition(".")
        skill = spec.answers.get(f"{unit}.skill")
        if aspect == "interest" and skill is not None and skill_scale.option(skill).score > limit:
            raise PersonaError(
                f"answer {key!r}: not asked in {spec.mode} mode when {unit}.skill is {skill} "
                f"(interest is asked only where the skill scores at most {limit})"
            )


# --- storing ---------------------------------------------------------------------------------


def store_personas(
    conn: sa.Connection, specs: Iterable[PersonaSpec], by: str, *, now: datetime | None = None
) -> tuple[int, int]:
    """Store each spec (checked already: `read_personas`) in the caller's transaction, each
    linked to its cohort by name; (how many new, how many updated). PersonaError, naming the
    persona, for a cohort that does not exist."""
    at = now or datetime.now(UTC)
    new = updated = 0
    for spec in specs:
        cohort_id = None
        if spec.cohort is not None:
            cohort_id = _cohort_id(conn, spec.cohort)
            if cohort_id is None:
                raise PersonaError(f"persona {spec.slug!r}: no cohort named {spec.cohort!r}")
        if _upsert(conn, spec, cohort_id, by, at):
            new += 1
        else:
            updated += 1
    return new, updated


def save_persona(
    conn: sa.Connection,
    flow: Flow,
    spec: PersonaSpec,
    *,
    by: str,
    cohort_id: int | None = None,
    now: datetime | None = None,
) -> StoredPersona:
    """Check `spec` against the flow and store it (new, or updating its slug), for the cohort
    `cohort_id` if given, else the cohort `spec.cohort` names; PersonaError if it cannot be."""
    try:
        check_persona(flow, spec)
    except PersonaError as error:
        raise PersonaError(f"persona {spec.slug!r}: {error}") from None
    if cohort_id is None and spec.cohort is not None:
        cohort_id = _cohort_id(conn, spec.cohort)
        if cohort_id is None:
            raise PersonaError(f"persona {spec.slug!r}: no cohort named {spec.cohort!r}")
    _upsert(conn, spec, cohort_id, by, now or datetime.now(UTC))
    stored = _select(conn, personas.c.slug == spec.slug)
    return stored[0]


def _upsert(
    conn: sa.Connection, spec: PersonaSpec, cohort_id: int | None, by: str, at: datetime
) -> bool:
    """True when the slug was new."""
    values = {
        "name": spec.name,
        "description": spec.description,
        "mode": spec.mode,
        "answers": dict(spec.answers),
        "source": spec.source,
        "cohort_id": cohort_id,
        "updated_at": at,
    }
    existing = conn.execute(
        sa.select(personas.c.id).where(personas.c.slug == spec.slug)
    ).scalar_one_or_none()
    if existing is not None:
        conn.execute(personas.update().where(personas.c.id == existing).values(**values))
        return False
    conn.execute(
        personas.insert().values(slug=spec.slug, created_by=by[:BY_LENGTH], created_at=at, **values)
    )
    return True


def _cohort_id(conn: sa.Connection, name: str) -> int | None:
    found = conn.execute(sa.select(cohorts.c.id).where(cohorts.c.name == name)).scalar()
    return None if found is None else int(found)


# --- reading what is stored ------------------------------------------------------------------


def all_personas(conn: sa.Connection) -> list[StoredPersona]:
    """Every stored persona, in the order first stored."""
    return _select(conn)


def persona_for_cohort(conn: sa.Connection, cohort_id: int) -> StoredPersona | None:
    """The persona that is this cohort's expected baseline (the latest updated, if several)."""
    found = _select(conn, personas.c.cohort_id == cohort_id, latest_first=True)
    return found[0] if found else None


def _select(
    conn: sa.Connection, *where: sa.ColumnElement[bool], latest_first: bool = False
) -> list[StoredPersona]:
    order = (personas.c.updated_at.desc(), personas.c.id.desc()) if latest_first else ()
    rows = conn.execute(
        sa.select(personas, cohorts.c.name.label("cohort_name"))
        .join_from(personas, cohorts, personas.c.cohort_id == cohorts.c.id, isouter=True)
        .where(*where)
        .order_by(*order, personas.c.id)
    ).all()
    return [
        StoredPersona(
            id=row.id,
            slug=row.slug,
            name=row.name,
            description=row.description,
            mode=row.mode,
            answers={str(key): int(value) for key, value in row.answers.items()},
            source=row.source,
            cohort_id=row.cohort_id,
            cohort=row.cohort_name,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
