"""What reports and exports read: people, their assessments and answers, streamed in id order
in batches, so memory stays flat however many rows the database holds.

The rule it keeps: a person is named by a pseudonym (`Pseudonyms`, a keyed hash of their id
under a key derived from the database's lookup key: the same person has the same pseudonym in
every export of one database, and nobody without the database's keys can reverse it or make
one), unless the caller asks for them to be identified; only then is a URN decrypted. What is
read is only what `Selection` allows: a team's people, a cohort's members, or both.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from storage.models import (
    Answer,
    Assessment,
    Cohort,
    CohortMember,
    Enrolment,
    Respondent,
    table,
)
from storage.privacy import Privacy, keys_of, load_privacy

respondents = table(Respondent)
assessments = table(Assessment)
answers = table(Answer)
cohorts = table(Cohort)
members = table(CohortMember)
enrolments = table(Enrolment)

BATCH = 500
"""People read per query: large enough to keep queries few, small enough to keep memory flat."""
PSEUDONYM_CONTEXT = b"dibot export pseudonym v1"


@dataclass(frozen=True)
class Selection:
    """Whose data: `team_id` None for every team (an admin, the command line); `cohort_id` None
    for everyone the team may see."""

    team_id: int | None = None
    cohort_id: int | None = None


@dataclass(frozen=True, slots=True)
class AnswerRow:
    question: str
    """The question key, e.g. "GS01.skill", "GS.interest" (a quick check), "BA01.access"."""
    item_id: str
    aspect: str
    option: int | None
    """The option number chosen, or None: skipped."""
    score: int | None
    answered_at: datetime
    channel: str


@dataclass(frozen=True, slots=True)
class AssessmentRow:
    id: int
    kind: str
    """"baseline" or "checkin"."""
    mode: str
    """"quick" or "full"."""
    flow_id: str
    flow_version: str
    baseline_id: int | None
    """The baseline a check-in follows."""
    started_at: datetime
    completed_at: datetime | None
    abandoned_at: datetime | None
    skills_basis: str | None
    assisted: bool
    """Filled in by a member of staff with the resident (who is not exported)."""
    answers: tuple[AnswerRow, ...]
    """In question-key order; () when read without them (`iter_people(answers=False)`), which
    keeps only `chosen` and `answered`."""
    chosen: Mapping[str, int] | None = None
    """Question key -> option number, when read without the answers themselves."""
    answered: int | None = None
    """Answers and skips held, when read without the answers themselves."""

    def options(self) -> dict[str, int]:
        """Question key -> option number, skipped questions left out: what `scoring` takes."""
        if self.chosen is not None:
            return dict(self.chosen)
        return {a.question: a.option for a in self.answers if a.option is not None}

    def answer_count(self) -> int:
        """Answers and skips held (a started assessment has one)."""
        return self.answered if self.answered is not None else len(self.answers)


@dataclass(frozen=True, slots=True)
class Person:
    respondent_id: int
    """The database's id: for joins inside dibot, never written to an export."""
    label: str
    """The pseudonym, or the URN when the caller asked for people to be identified."""
    language: str
    created_at: datetime
    enrolled_at: datetime | None
    """The first enrolment by staff; None for someone who texted in by themselves."""
    consented: bool
    opted_out: bool
    unreachable: bool
    cohorts: tuple[str, ...]
    """Names of the cohorts they are in (within the selection's team), in name order."""
    initiatives: tuple[str, ...]
    """Those cohorts' initiatives, without repeats, in name order."""
    assessments: tuple[AssessmentRow, ...]
    """In the order they were started (by id)."""


class Pseudonyms:
    """Stable, unguessable names for people in exports: "R" and 13 base32 characters."""

    def __init__(self, privacy: Privacy) -> None:
        self._key = hmac.digest(privacy.lookup_key, PSEUDONYM_CONTEXT, "sha256")

    def __call__(self, respondent_id: int) -> str:
        digest = hmac.digest(self._key, str(respondent_id).encode("ascii"), "sha256")
        return "R" + base64.b32encode(digest[:8]).decode("ascii").rstrip("=")


def iter_people(
    conn: sa.Connection,
    selection: Selection,
    *,
    identified: bool = False,
    batch: int = BATCH,
    answers: bool = True,
) -> Iterator[Person]:
    """Everyone `selection` allows, in id order, with their cohorts and assessments (answers
    included), read `batch` people at a time. With `identified`, `Person.label` is the URN
    (decrypted); otherwise it is the pseudonym. Without `answers`, each assessment holds only
    the options chosen and how many answers it has (`AssessmentRow.chosen`, `answered`): what a
    report scores, read as one row an assessment rather than one an answer."""
    privacy = load_privacy(conn, keys_of(conn))
    pseudonym = Pseudonyms(privacy)
    last = 0
    while True:
        found = conn.execute(
            _people_query(selection).where(respondents.c.id > last).limit(batch)
        ).all()
        if not found:
            return
        ids = [row.id for row in found]
        last = ids[-1]
        groups = _cohorts_of(conn, ids, selection)
        enrolled = _first_enrolments(conn, ids)
        taken = _assessments_of(conn, ids, with_answers=answers)
        for row in found:
            names = groups.get(row.id, ())
            yield Person(
                respondent_id=row.id,
                label=privacy.decrypt(row.urn_cipher) if identified else pseudonym(row.id),
                language=row.language,
                created_at=row.created_at,
                enrolled_at=enrolled.get(row.id),
                consented=row.consented_at is not None,
                opted_out=row.opted_out,
                unreachable=row.unreachable,
                cohorts=tuple(name for name, _ in names),
                initiatives=tuple(dict.fromkeys(i for _, i in names if i)),
                assessments=taken.get(row.id, ()),
            )
        if len(found) < batch:
            return


def count_people(conn: sa.Connection, selection: Selection) -> int:
    """How many people `selection` allows (one COUNT), e.g. for a progress bar's total."""
    query = sa.select(sa.func.count()).select_from(respondents)
    return int(conn.execute(_selected(query, selection)).scalar_one())


def _people_query(selection: Selection) -> sa.Select[Any]:
    query = sa.select(
        respondents.c.id,
        respondents.c.urn_cipher,
        respondents.c.language,
        respondents.c.created_at,
        respondents.c.consented_at,
        respondents.c.opted_out,
        respondents.c.unreachable,
    ).order_by(respondents.c.id)
    return _selected(query, selection)


def _selected(query: sa.Select[Any], selection: Selection) -> sa.Select[Any]:
    """`query` over respondents, narrowed to the people `selection` allows."""
    if selection.team_id is not None:
        query = query.where(respondents.c.team_id == selection.team_id)
    if selection.cohort_id is not None:
        query = query.where(
            sa.exists().where(
                members.c.respondent_id == respondents.c.id,
                members.c.cohort_id == selection.cohort_id,
            )
        )
    return query


def _cohorts_of(
    conn: sa.Connection, ids: Sequence[int], selection: Selection
) -> Mapping[int, tuple[tuple[str, str | None], ...]]:
    query = (
        sa.select(members.c.respondent_id, cohorts.c.name, cohorts.c.initiative)
        .join(cohorts, cohorts.c.id == members.c.cohort_id)
        .where(members.c.respondent_id.in_(ids))
        .order_by(members.c.respondent_id, cohorts.c.name)
    )
    if selection.team_id is not None:
        query = query.where(cohorts.c.team_id == selection.team_id)
    found: dict[int, list[tuple[str, str | None]]] = {}
    for row in conn.execute(query):
        found.setdefault(row.respondent_id, []).append((row.name, row.initiative))
    return {key: tuple(value) for key, value in found.items()}


def _first_enrolments(conn: sa.Connection, ids: Sequence[int]) -> Mapping[int, datetime]:
    first = sa.func.min(enrolments.c.enrolled_at)
    rows = conn.execute(
        sa.select(enrolments.c.respondent_id, first.label("at"))
        .where(enrolments.c.respondent_id.in_(ids))
        .group_by(enrolments.c.respondent_id)
    )
    return {row.respondent_id: _utc(row.at) for row in rows}


def _assessments_of(
    conn: sa.Connection, ids: Sequence[int], *, with_answers: bool = True
) -> Mapping[int, tuple[AssessmentRow, ...]]:
    rows = conn.execute(
        sa.select(assessments)
        .where(assessments.c.respondent_id.in_(ids))
        .order_by(assessments.c.id)
    ).all()
    if not rows:
        return {}
    assessment_ids = [row.id for row in rows]
    if not with_answers:
        return _grouped(rows, {}, _chosen_of(conn, assessment_ids))
    return _grouped(rows, _answers_of(conn, assessment_ids), None)


def _grouped(
    rows: Sequence[Any],
    given: Mapping[int, tuple[AnswerRow, ...]],
    chosen: Mapping[int, tuple[dict[str, int], int]] | None,
) -> Mapping[int, tuple[AssessmentRow, ...]]:
    """Each respondent's assessments, with their answers (`given`), or with only their options
    (`chosen`, when it is given)."""
    found: dict[int, list[AssessmentRow]] = {}
    nothing: tuple[dict[str, int], int] = ({}, 0)
    for row in rows:
        options, answered = (None, None) if chosen is None else chosen.get(row.id, nothing)
        found.setdefault(row.respondent_id, []).append(
            AssessmentRow(
                id=row.id,
                kind=row.kind,
                mode=row.mode,
                flow_id=row.flow_id,
                flow_version=row.flow_version,
                baseline_id=row.baseline_id,
                started_at=row.started_at,
                completed_at=row.completed_at,
                abandoned_at=row.abandoned_at,
                skills_basis=row.skills_basis,
                assisted=row.assisted_by is not None,
                answers=given.get(row.id, ()),
                chosen=options,
                answered=answered,
            )
        )
    return {key: tuple(value) for key, value in found.items()}


SEPARATOR = "\x1f"
"""ASCII unit separator: never in a question key or an option number."""


def _chosen_of(
    conn: sa.Connection, assessment_ids: Sequence[int]
) -> Mapping[int, tuple[dict[str, int], int]]:
    """Assessment id -> (question key -> option chosen, answers and skips held). The database
    joins each assessment's chosen options into one string ("GS01.skill<US>3<US>GS02.skill
    <US>4"), so a report reads one row an assessment: a cohort's 118,000 answer rows cost most
    of its report's time when each came back as a row."""
    chosen = answers.c.option.is_not(None)
    pairs = answers.c.question + SEPARATOR + sa.cast(answers.c.option, sa.String())
    rows = conn.execute(
        sa.select(
            answers.c.assessment_id,
            sa.func.aggregate_strings(pairs, SEPARATOR).filter(chosen),
            sa.func.count(),
        )
        .where(answers.c.assessment_id.in_(assessment_ids))
        .group_by(answers.c.assessment_id)
    ).all()
    found: dict[int, tuple[dict[str, int], int]] = {}
    for assessment_id, joined, answered in rows:
        # "key, option, key, option…": one iterator read in pairs.
        keys_and_options = iter(joined.split(SEPARATOR) if joined else ())
        options = dict(zip(keys_and_options, map(int, keys_and_options), strict=False))
        found[assessment_id] = (options, answered)
    return found


def _answers_of(
    conn: sa.Connection, assessment_ids: Sequence[int]
) -> Mapping[int, tuple[AnswerRow, ...]]:
    # Millions of rows go through here: fetched whole per batch (not row by row), unpacked as
    # tuples, and the time read by `_utc` rather than the column type's slower processor.
    rows = conn.execute(
        sa.select(
            answers.c.assessment_id,
            answers.c.question,
            answers.c.item_id,
            answers.c.aspect,
            answers.c.option,
            answers.c.score,
            sa.type_coerce(answers.c.answered_at, sa.String()),
            answers.c.channel,
        )
        .where(answers.c.assessment_id.in_(assessment_ids))
        .order_by(answers.c.assessment_id, answers.c.question)
    ).all()
    found: dict[int, list[AnswerRow]] = {}
    for assessment_id, question, item_id, aspect, option, score, at, channel in rows:
        given = found.get(assessment_id)
        if given is None:
            given = found[assessment_id] = []
        given.append(AnswerRow(question, item_id, aspect, option, score, _utc(at), channel))
    return {key: tuple(value) for key, value in found.items()}


def _utc(moment: datetime | str) -> datetime:
    """A UTC column's value read without its type: SQLite gives text, PostgreSQL a time."""
    if isinstance(moment, str):
        return datetime.fromisoformat(moment).replace(tzinfo=UTC)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
