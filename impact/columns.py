"""The columns every tabular export writes, as values: one definition read by the CSV and the
XLSX writers, so a column means the same thing in both.

The rule it keeps: a row is built from one `Person` at a time and never from more, so writers
that stream people keep memory flat. A person is named only by `Person.label` (a pseudonym
unless the caller asked for URNs); `respondent_id` is never in a row. Cells are typed values
(text, whole numbers, fractions, UTC datetimes, None for empty); how each type is written (and
how text that a spreadsheet would take for a formula is defused) is the writer's business.
Texts are in English (the staff language).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from flows.model import Flow, Texts
from impact.records import AssessmentRow, Person
from scoring.profile import profile

Cell = str | int | float | datetime | None
"""A cell: None is an empty cell; datetimes are timezone-aware (UTC)."""
Row = tuple[Cell, ...]
Progress = Callable[[int], None]
"""Told the number of people written so far, after each person (for a tqdm bar:
`lambda done: bar.update(done - bar.n)`)."""

STAFF_LANGUAGE = "en"
SKIPPED = "Skipped"
"""The option label of a question the respondent skipped."""
LIST_SEPARATOR = ";"
FORMULA_STARTS = frozenset("=+-@\t\r")
"""First characters that make a spreadsheet read a text cell as a formula (OWASP's CSV
injection list)."""
SHARE_PLACES = 3


def formula_like(text: str) -> bool:
    """True for text a spreadsheet would evaluate (cohort names are typed by staff)."""
    return text[:1] in FORMULA_STARTS


@dataclass(frozen=True)
class Column:
    name: str
    width: int
    """Display width in characters, for spreadsheets."""


@dataclass(frozen=True)
class Written:
    """What an export wrote."""

    people: int
    assessments: int
    answers: int


def status(assessment: AssessmentRow) -> str:
    if assessment.completed_at is not None:
        return "completed"
    if assessment.abandoned_at is not None:
        return "abandoned"
    return "in progress"


def _joined(names: tuple[str, ...]) -> str | None:
    return LIST_SEPARATOR.join(names) or None


def _english(texts: Texts) -> str:
    return texts.get(STAFF_LANGUAGE, "")


@dataclass(frozen=True)
class _QuestionFacts:
    item_id: str
    item_title: str | None
    section: str | None
    heading: str | None


class LongView:
    """One row per answer: who, which assessment, which question, the option and its score.
    A skipped question has an empty option and score, and the label "Skipped"."""

    columns = (
        Column("respondent", 16),
        Column("assessment_id", 13),
        Column("kind", 9),
        Column("mode", 6),
        Column("flow_version", 12),
        Column("started_at", 19),
        Column("completed_at", 19),
        Column("question", 14),
        Column("item_id", 8),
        Column("item_title", 40),
        Column("section", 9),
        Column("heading", 8),
        Column("aspect", 8),
        Column("option", 7),
        Column("option_label", 40),
        Column("score", 6),
        Column("answered_at", 19),
        Column("channel", 9),
        Column("cohorts", 24),
        Column("initiatives", 24),
    )

    def __init__(self, flow: Flow) -> None:
        titles = {item.id: _english(item.title) for item in flow.items}
        titles.update({heading.id: _english(heading.title) for heading in flow.headings})
        self._questions = {
            key: _QuestionFacts(
                question.item,
                titles.get(question.item),
                question.section,
                question.heading,
            )
            for key, question in flow.questions.items()
        }
        self._labels: dict[tuple[str, int], str] = {
            (scale.id, option.number): _english(option.label)
            for scale in flow.scales.values()
            for option in scale.options
        }

    def rows(self, person: Person) -> Iterator[Row]:
        cohorts = _joined(person.cohorts)
        initiatives = _joined(person.initiatives)
        for assessment in person.assessments:
            for answer in assessment.answers:
                # An answer to a question this flow no longer has keeps what the answer says.
                facts = self._questions.get(answer.question) or _QuestionFacts(
                    answer.item_id, None, None, None
                )
                label: str | None = SKIPPED
                if answer.option is not None:
                    label = self._labels.get((answer.aspect, answer.option))
                yield (
                    person.label,
                    assessment.id,
                    assessment.kind,
                    assessment.mode,
                    assessment.flow_version,
                    assessment.started_at,
                    assessment.completed_at,
                    answer.question,
                    facts.item_id,
                    facts.item_title,
                    facts.section,
                    facts.heading,
                    answer.aspect,
                    answer.option,
                    label,
                    answer.score if answer.option is not None else None,
                    answer.answered_at,
                    answer.channel,
                    cohorts,
                    initiatives,
                )


class WideView:
    """One row per assessment: its facts, then the score of every question of the flow (every
    mode's, in flow order; empty when not asked or skipped), then each heading's skill and
    interest as a share of the maximum (0..1, 3 places), the basics index, the missing basics
    and the barriers (item ids), all as `scoring.profile` gives them."""

    def __init__(self, flow: Flow) -> None:
        self._flow = flow
        self._keys = tuple(flow.questions)
        self._numbers = {
            key: frozenset(option.number for option in flow.scale_of(question).options)
            for key, question in flow.questions.items()
        }
        self._headings = tuple(heading.id for heading in flow.headings)
        self.columns: tuple[Column, ...] = (
            Column("respondent", 16),
            Column("assessment_id", 13),
            Column("kind", 9),
            Column("mode", 6),
            Column("baseline_id", 11),
            Column("language", 9),
            Column("cohorts", 24),
            Column("initiatives", 24),
            Column("started_at", 19),
            Column("completed_at", 19),
            Column("status", 11),
            Column("assisted", 9),
            Column("skills_basis", 12),
            *(Column(key, max(len(key) + 2, 8)) for key in self._keys),
            *(
                Column(f"{heading}.{aspect}_share", 17)
                for heading in self._headings
                for aspect in ("skill", "interest")
            ),
            Column("basics_index", 12),
            Column("missing_basics", 16),
            Column("barriers", 16),
        )

    def rows(self, person: Person) -> Iterator[Row]:
        cohorts = _joined(person.cohorts)
        initiatives = _joined(person.initiatives)
        for assessment in person.assessments:
            scores = {
                answer.question: answer.score
                for answer in assessment.answers
                if answer.option is not None
            }
            # Only what this flow can score: an answer from an older flow version is left out.
            found = profile(
                self._flow,
                {
                    key: number
                    for key, number in assessment.options().items()
                    if number in self._numbers.get(key, ())
                },
            )
            shares: list[Cell] = []
            for heading in found.headings:
                shares.append(_rounded(heading.skill))
                shares.append(_rounded(heading.interest))
            yield (
                person.label,
                assessment.id,
                assessment.kind,
                assessment.mode,
                assessment.baseline_id,
                person.language,
                cohorts,
                initiatives,
                assessment.started_at,
                assessment.completed_at,
                status(assessment),
                "yes" if assessment.assisted else "no",
                assessment.skills_basis,
                *(scores.get(key) for key in self._keys),
                *shares,
                _rounded(found.basics_index),
                _joined(found.missing_basics),
                _joined(found.barriers),
            )


def _rounded(share: float | None) -> float | None:
    return None if share is None else round(share, SHARE_PLACES)


ITEM_COLUMNS = (
    Column("id", 6),
    Column("level", 8),
    Column("section", 9),
    Column("heading", 8),
    Column("title", 50),
    Column("short", 30),
    Column("eds_area", 22),
    Column("outcome", 26),
)


def item_rows(flow: Flow) -> Iterator[Row]:
    """Everything an answer's item_id can name, in flow order: basics, blockers, then each
    heading (what a quick check asks about) followed by its items."""
    for item in flow.items:
        if item.section != "skills":
            yield (item.id, "item", item.section, None, *_titles(item.title, item.short))
    for heading in flow.headings:
        yield (heading.id, "heading", "skills", heading.id, *_titles(heading.title, heading.short))
        for item in flow.items:
            if item.heading == heading.id:
                yield (
                    item.id,
                    "item",
                    item.section,
                    heading.id,
                    *_titles(item.title, item.short),
                    item.eds,
                    item.outcome,
                )


def _titles(title: Texts, short: Texts) -> tuple[str, str]:
    return _english(title), _english(short)


SCALE_COLUMNS = (
    Column("scale", 9),
    Column("option", 7),
    Column("score", 6),
    Column("label", 50),
)


def scale_rows(flow: Flow) -> Iterator[Row]:
    for scale in flow.scales.values():
        for option in scale.options:
            yield (scale.id, option.number, option.score, _english(option.label))
