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
from datetime import datetime

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
    """In question-key order."""

    def options(self) -> dict[str, int]:
        """Question key -> option number, skipped questions left out: what `scoring` takes."""
        return {a.question: a.option for a in self.answers if a.option is not None}


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
