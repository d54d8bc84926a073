"""The Flow Results package export (FLOIP Flow Results specification 1.1.0): a Frictionless
Data Package whose one resource holds every answer as a response row, for tools built on that
standard.

The rule it keeps: responses are written one person at a time, straight to the file, so memory
stays flat however many people are exported; the descriptor (`datapackage.json`) is written
last, so a package with a descriptor is complete (a failed export leaves no descriptor). A
person is named only by `Person.label`; `respondent_id` is never written.

How the questionnaire maps onto the specification:
- every question of the flow (basics, blockers, quick-check headings, items) is a `select_one`
  question labelled with its English wording;
- the specification's choices are strings and a response must be one of them, so the choices
  are the English option labels of the question's scale in option order, and the response is
  the chosen label; the option's score (0..4, what dibot's scoring uses) is in each row's
  metadata as `score`, beside the assessment's `kind` and `mode`, a check-in's
  `baseline_session`, and the person's `cohorts` and `initiatives` (for grouping);
- a skipped answer is not a response: a `select_one` response must be one of the choices, so
  skipped answers are left out;
- the responses are a JSON file of row arrays, the only data format the specification defines
  (it streams: one row per line between the brackets).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from flows.model import Flow, Question
from impact.records import AssessmentRow, Person

SPECIFICATION_VERSION = "1.1.0"
PROFILE = "flow-results-package"
LANGUAGE = "en"
LANGUAGE_ISO_639_3 = "eng"
NAME_PATTERN = re.compile(r"^[a-z0-9._-]+$")
"""The specification's package name: lower case letters, digits, ".", "_" and "-"."""
ID_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4f57-9a43-1b2f3f7f8e01")
"""Mixed with the name and creation time into the package id (any fixed value would do)."""
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("timestamp", "Timestamp", "datetime"),
    ("row_id", "Row ID", "string"),
    ("contact_id", "Contact ID", "string"),
    ("session_id", "Session ID", "string"),
    ("question_id", "Question ID", "string"),
    ("response", "Response", "any"),
    ("response_metadata", "Response Metadata", "object"),
)
"""The seven columns of every Flow Results resource, in order (name, title, type)."""
DESCRIPTOR = "datapackage.json"

Progress = Callable[[int], None]
"""Told the number of people written so far, after each person."""


def package_id(name: str, created: datetime) -> str:
    """The package id: the specification asks for a version 4 UUID; this one is made from the
    name and creation time rather than at random, so exporting again gives the same id."""
    digest = hashlib.sha256(f"{ID_NAMESPACE}\n{name}\n{rfc3339(created)}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def rfc3339(moment: datetime) -> str:
    """RFC 3339 date-time with a numeric offset ("+00:00" for UTC, never "Z", as the
    specification asks)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a timezone-aware time")
    return moment.isoformat()


def question_descriptor(flow: Flow, question: Question) -> dict[str, Any]:
    scale = flow.scale_of(question)
    described: dict[str, Any] = {
        "type": "select_one",
        "label": question.text[LANGUAGE],
        "type_options": {"choices": [option.label[LANGUAGE] for option in scale.options]},
    }
    if question.section == "skills" and question.item != question.heading:
        eds = flow.item(question.item).eds
        if eds:
            # A standard taxonomy over the results: the Essential Digital Skills area.
            described["semantic_labels"] = [f"EDS::{eds}"]
    return described


def questions_descriptor(flow: Flow) -> dict[str, dict[str, Any]]:
    return {key: question_descriptor(flow, question) for key, question in flow.questions.items()}


def descriptor(
    flow: Flow,
    *,
    name: str,
    title: str,
    created: datetime,
    responses_path: str,
    responses_bytes: int,
    responses_sha256: str,
) -> dict[str, Any]:
    """The package descriptor (`datapackage.json`)."""
    created_text = rfc3339(created)
    return {
        "profile": PROFILE,
        "name": name,
        "flow_results_specification_version": SPECIFICATION_VERSION,
        "created": created_text,
        "modified": created_text,
        "id": package_id(name, created),
        "title": title,
        "description": (
            f"Answers to the {flow.id} questionnaire, version {flow.version}. Each response is "
            "the English label of the option chosen; its score (0 to 4, higher is better) is "
            "response_metadata.score. Skipped questions have no row. contact_id names a "
            "person, session_id one assessment (a baseline or a check-in, "
            "response_metadata.kind; a check-in's baseline is "
            "response_metadata.baseline_session). response_metadata.cohorts and "
            ".initiatives name the person's cohorts and their initiatives."
        ),
        "resources": [
            {
                "name": f"{name}-responses",
                "profile": "data-resource",
                "path": responses_path,
                "access_method": "file",
                "format": "json",
                "mediatype": "application/json",
                "encoding": "utf-8",
                "bytes": responses_bytes,
                "hash": f"sha256:{responses_sha256}",
                "schema": {
                    "language": LANGUAGE_ISO_639_3,
                    "fields": [
                        {"name": field, "title": field_title, "type": field_type}
                        for field, field_title, field_type in FIELDS
                    ],
                    "questions": questions_descriptor(flow),
                },
            }
        ],
    }


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class ResponseLines:
    """Response rows as lines of JSON text. Everything a row repeats (a question's chosen
    label, a person's id, an assessment's metadata) is encoded once, so a row costs a few
    joins: the export's time goes into the people it reads, not into encoding."""

    def __init__(self, flow: Flow) -> None:
        self._chosen: dict[tuple[str, int], tuple[str, str, int]] = {
            (key, option.number): (_json(key), _json(option.label[LANGUAGE]), option.score)
            for key, question in flow.questions.items()
            for option in flow.scale_of(question).options
        }

    def __call__(self, person: Person) -> Iterator[str]:
        """One person's rows, in assessment then question-key order; skipped answers have
        none. A KeyError names an answer the flow cannot describe."""
        contact = _json(person.label)
        for assessment in person.assessments:
            session = _json(str(assessment.id))
            head, tail = _metadata_around_score(person, assessment)
            for answer in assessment.answers:
                if answer.option is None:
                    continue
                try:
                    question, label, score = self._chosen[answer.question, answer.option]
                except KeyError:
                    raise KeyError(
                        f"answer {answer.question}={answer.option} is not in the flow"
                    ) from None
                # Two JSON strings' insides joined by "." are a JSON string: "31.GS01.skill".
                row_id = f"{session[:-1]}.{question[1:]}"
                # An RFC 3339 time has nothing JSON escapes.
                timestamp = rfc3339(answer.answered_at)
                yield (
                    f'["{timestamp}",{row_id},{contact},{session},{question},{label},'
                    f"{head}{score}{tail}]"
                )


def _metadata_around_score(person: Person, assessment: AssessmentRow) -> tuple[str, str]:
    """A row's metadata as JSON text before and after its score."""
    metadata: dict[str, Any] = {"kind": assessment.kind, "mode": assessment.mode, "score": 0}
    if assessment.baseline_id is not None:
        metadata["baseline_session"] = str(assessment.baseline_id)
    if person.cohorts:
        metadata["cohorts"] = list(person.cohorts)
    if person.initiatives:
        metadata["initiatives"] = list(person.initiatives)
    head, tail = _json(metadata).split('"score":0', 1)
    return head + '"score":', tail


def write_floip_package(
    people: Iterable[Person],
    flow: Flow,
    out_dir: Path,
    *,
    name: str,
    title: str,
    created: datetime,
    progress: Progress | None = None,
) -> Path:
    """Write a Flow Results package into `out_dir` (created if missing): `datapackage.json`
    and `<name>-responses.json`. Returns the descriptor's path.

    Raises ValueError for a name the specification does not allow or a naive `created`, and
    KeyError for an answer to a question or option the flow does not have (the flow is the
    contract the package describes); then no descriptor is written.
    """
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"package name {name!r}: use lower-case letters, digits, '.', '_' and '-' only"
        )
    rfc3339(created)
    out_dir.mkdir(parents=True, exist_ok=True)
    responses_name = f"{name}-responses.json"
    responses = out_dir / responses_name
    partial = out_dir / f".{responses_name}.partial"
    described = out_dir / DESCRIPTOR
    described.unlink(missing_ok=True)
    lines_of = ResponseLines(flow)
    hasher = hashlib.sha256()
    size = 0

    def emit(stream: IO[bytes], text: str) -> None:
        nonlocal size
        data = text.encode("utf-8")
        hasher.update(data)
        size += len(data)
        stream.write(data)

    try:
        with partial.open("wb") as stream:
            emit(stream, "[")
            separator = "\n"
            for written, person in enumerate(people, start=1):
                lines = list(lines_of(person))
                if lines:
                    emit(stream, separator + ",\n".join(lines))
                    separator = ",\n"
                if progress is not None:
                    progress(written)
            emit(stream, "\n]\n")
        os.replace(partial, responses)
    finally:
        partial.unlink(missing_ok=True)
    package = descriptor(
        flow,
        name=name,
        title=title,
        created=created,
        responses_path=responses_name,
        responses_bytes=size,
        responses_sha256=hasher.hexdigest(),
    )
    described.write_text(json.dumps(package, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return described
