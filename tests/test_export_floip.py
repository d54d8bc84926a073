"""The Flow Results package export: what a tool built on the FLOIP Flow Results specification
reads back, checked against the Frictionless Data Package profile, the specification's rules
(tests/data/floip/README.md) and answers written out by hand."""

from __future__ import annotations

import hashlib
import json
import shutil
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator, Draft202012Validator, FormatChecker

from flows.model import Flow
from impact.export_floip import write_floip_package
from impact.records import AnswerRow, AssessmentRow, Person

DATA = Path(__file__).parent / "data" / "floip"
CREATED = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
SKILL_LABELS = [
    "I have no ability",
    "I'm cautious/reluctant to do anything without help",
    "I'm willing to give it a go, but may need help",
    "I'm confident doing it for myself",
    "I could teach others",
]
INTEREST_LABELS = [
    "I'm not interested in doing this",
    "I'm unlikely to do this regularly",
    "I may or may not do this regularly",
    "I'm likely to do this regularly",
    "I'll definitely do this regularly",
]
WELSH_COHORT = "Caffi Trwsio Llŷn – Ŵyl"
WELSH_INITIATIVE = "Cymunedau Digidol Cymru"


# --- the validator: the specification's rules ------------------------------------------------

FORMATS = FormatChecker()


def rfc3339_date_time(value: object) -> bool:
    """jsonschema checks "date-time" only with an extra package; this is RFC 3339's rule."""
    if not isinstance(value, str):
        return True
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment.tzinfo is not None


FORMATS.checks("date-time", raises=ValueError)(rfc3339_date_time)


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return loaded


DATA_PACKAGE = Draft4Validator(schema("data-package.json"), format_checker=FORMATS)
FLOW_RESULTS = Draft202012Validator(
    schema("flow-results-package.schema.json"), format_checker=FORMATS
)
RESPONSE = Draft202012Validator(schema("flow-results-response.schema.json"), format_checker=FORMATS)


def where(path: Any) -> str:
    return "/".join(str(part) for part in path)


def descriptor_problems(descriptor: dict[str, Any]) -> set[str]:
    """ "location: rule" for each fault, from both schemas (`descriptor` for the root)."""
    problems = set()
    for validator, rules in ((DATA_PACKAGE, "data-package"), (FLOW_RESULTS, "flow-results")):
        for error in validator.iter_errors(descriptor):
            problems.add(f"{where(error.absolute_path) or 'descriptor'}: {rules}")
    return problems


def fits(question: dict[str, Any], response: Any) -> bool:
    """Whether a response has the form the specification gives its question's type."""
    kind = question["type"]
    choices = question.get("type_options", {}).get("choices", [])
    number = isinstance(response, int | float) and not isinstance(response, bool)
    if kind == "select_one":
        return isinstance(response, str) and response in choices
    if kind == "select_many":
        return isinstance(response, list) and all(r in choices for r in response)
    if kind == "message":
        return number and 0 <= response <= 1
    if kind == "numeric":
        return number
    if kind in ("text", "image", "video", "audio", "datetime", "date", "time"):
        return isinstance(response, str)
    return True


def row_problems(descriptor: dict[str, Any], rows: list[Any]) -> set[str]:
    """ "row N: column" for each fault in the responses (N counted from 1)."""
    questions = descriptor["resources"][0]["schema"]["questions"]
    problems = set()
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        for error in RESPONSE.iter_errors(row):
            column = error.absolute_path[0] if error.absolute_path else "length"
            problems.add(f"row {number}: {column}")
        if not isinstance(row, list) or len(row) != 7:
            continue
        row_id = str(row[1])
        if row_id in seen:
            problems.add(f"row {number}: row_id repeated")
        seen.add(row_id)
        question = questions.get(row[4])
        if question is None:
            problems.add(f"row {number}: question_id unknown")
        elif not fits(question, row[5]):
            problems.add(f"row {number}: response does not fit")
    return problems


def package_problems(directory: Path) -> set[str]:
    descriptor = json.loads((directory / "datapackage.json").read_text(encoding="utf-8"))
    resource = descriptor["resources"][0]
    rows = json.loads((directory / resource["path"]).read_text(encoding=resource.get("encoding")))
    return descriptor_problems(descriptor) | row_problems(descriptor, rows)


# --- people written by hand ------------------------------------------------------------------


def at(minute: int) -> datetime:
    return datetime(2026, 5, 4, 10, 0, tzinfo=UTC) + timedelta(minutes=minute)


def answer(question: str, option: int | None, minute: int) -> AnswerRow:
    item_id, aspect = question.split(".")
    return AnswerRow(
        question=question,
        item_id=item_id,
        aspect=aspect,
        option=option,
        score=None if option is None else option - 1,
        answered_at=at(minute),
        channel="sms",
    )


def assessment(
    assessment_id: int,
    kind: str,
    mode: str,
    answers: tuple[AnswerRow, ...],
    baseline_id: int | None = None,
) -> AssessmentRow:
    return AssessmentRow(
        id=assessment_id,
        kind=kind,
        mode=mode,
        flow_id="digital-inclusion",
        flow_version="2026.11.1",
        baseline_id=baseline_id,
        started_at=answers[0].answered_at,
        completed_at=answers[-1].answered_at,
        abandoned_at=None,
        skills_basis=None,
        assisted=False,
        answers=answers,
    )


def person(
    respondent_id: int,
    label: str,
    assessments: tuple[AssessmentRow, ...],
    cohorts: tuple[str, ...] = (),
    initiatives: tuple[str, ...] = (),
) -> Person:
    return Person(
        respondent_id=respondent_id,
        label=label,
        language="cy",
        created_at=at(-60),
        enrolled_at=at(-60),
        consented=True,
        opted_out=False,
        unreachable=False,
        cohorts=cohorts,
        initiatives=initiatives,
        assessments=assessments,
    )


def quick_baseline() -> Person:
    """A quick check: a device always, skills a major problem, getting started "may need help"
    and "definitely" keen; in a cohort whose name is Welsh."""
    return person(
        1,
        "RAAAAAAAAAAAAA",
        (
            assessment(
                11,
                "baseline",
                "quick",
                (
                    answer("BA01.access", 5, 0),
                    answer("BL03.blocker", 2, 1),
                    answer("GS.skill", 3, 2),
                    answer("GS.interest", 5, 3),
                ),
            ),
        ),
        cohorts=(WELSH_COHORT,),
        initiatives=(WELSH_INITIATIVE,),
    )


def full_checkin() -> Person:
    """A full baseline, then a check-in that re-asks it, the interest question skipped."""
    return person(
        2,
        "RBBBBBBBBBBBBB",
        (
            assessment(
                20,
                "baseline",
                "full",
                (answer("GS01.skill", 2, 10), answer("GS01.interest", 4, 11)),
            ),
            assessment(
                31,
                "checkin",
                "full",
                (answer("GS01.skill", 4, 20), answer("GS01.interest", None, 21)),
                baseline_id=20,
            ),
        ),
    )


def export(directory: Path, people: list[Person], flow: Flow) -> dict[str, Any]:
    written = write_floip_package(
        people, flow, directory, name="cyngor-2026", title="Cyngor: June 2026", created=CREATED
    )
    assert written == directory / "datapackage.json"
    descriptor: dict[str, Any] = json.loads(written.read_text(encoding="utf-8"))
    return descriptor


def responses(directory: Path) -> list[list[Any]]:
    rows: list[list[Any]] = json.loads(
        (directory / "cyngor-2026-responses.json").read_text(encoding="utf-8")
    )
    return rows


# --- the validator itself --------------------------------------------------------------------


def test_the_validator_accepts_a_package_written_as_the_specification_shows() -> None:
    assert package_problems(DATA / "examples" / "valid") == set()


def test_the_validator_reports_every_fault_of_the_broken_package() -> None:
    assert package_problems(DATA / "examples" / "broken") == {
        "name: data-package",
        "name: flow-results",
        "modified: flow-results",
        "id: flow-results",
        "resources/0/schema/fields: flow-results",
        # without session_id, the fields after it are each in the wrong place
        "resources/0/schema/fields/3/name: flow-results",
        "resources/0/schema/fields/4/name: flow-results",
        "resources/0/schema/fields/4/type: flow-results",
        "resources/0/schema/fields/5/name: flow-results",
        "resources/0/schema/fields/5/type: flow-results",
        "resources/0/schema/questions/mood/type: flow-results",
        "resources/0/schema/questions/wish/type_options: flow-results",
        "row 1: 0",
        "row 2: row_id repeated",
        "row 2: response does not fit",
        "row 3: 0",
        "row 3: question_id unknown",
        "row 4: length",
    }


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.update(profile="data-package"), "profile: flow-results"),
        (lambda d: d.pop("flow_results_specification_version"), "descriptor: flow-results"),
        (lambda d: d.update(id=str(uuid.uuid1(node=1, clock_seq=1))), "id: flow-results"),
        (lambda d: d.update(created="2026-03-02"), "created: flow-results"),
        (lambda d: d.update(created="2026-03-02"), "created: data-package"),
        (lambda d: d["resources"].append(dict(d["resources"][0])), "resources: flow-results"),
        (lambda d: d["resources"][0].update(data=[]), "resources/0: flow-results"),
        (lambda d: d["resources"][0].pop("path"), "resources/0: flow-results"),
        (lambda d: d["resources"][0].update(name="Responses"), "resources/0/name: data-package"),
    ],
)
def test_the_validator_rejects_a_descriptor_that_breaks_one_rule(change: Any, problem: str) -> None:
    descriptor = json.loads((DATA / "examples" / "valid" / "datapackage.json").read_text())
    assert descriptor_problems(descriptor) == set()
    change(descriptor)
    assert problem in descriptor_problems(descriptor)


# --- the export ------------------------------------------------------------------------------


def test_every_question_is_a_select_one_with_its_scale_labels_as_choices(
    tmp_path: Path, flow: Flow
) -> None:
    descriptor = export(tmp_path, [], flow)
    questions = descriptor["resources"][0]["schema"]["questions"]
    # 3 basics + 5 blockers + 7 headings x 2 (quick check) + 48 items x 2 (full)
    assert len(questions) == 118
    assert {question["type"] for question in questions.values()} == {"select_one"}
    assert questions["GS.skill"] == {
        "type": "select_one",
        "label": "How well can you switch on, log in, use apps and Wi-Fi?",
        "type_options": {"choices": SKILL_LABELS},
    }
    assert questions["TR04.skill"]["label"] == "How well can you use online or app banking?"
    assert questions["TR04.skill"]["semantic_labels"] == ["EDS::Transacting"]
    assert questions["GS01.interest"]["type_options"]["choices"] == INTEREST_LABELS
    assert questions["BA01.access"]["type_options"]["choices"][0] == "I do not have this"
    assert questions["BL05.blocker"]["type_options"]["choices"][4] == (
        "This causes me no problems in using the internet"
    )


def test_the_descriptor_is_a_valid_flow_results_package(tmp_path: Path, flow: Flow) -> None:
    descriptor = export(tmp_path, [quick_baseline(), full_checkin()], flow)
    assert package_problems(tmp_path) == set()
    assert descriptor["profile"] == "flow-results-package"
    assert descriptor["flow_results_specification_version"] == "1.1.0"
    assert descriptor["name"] == "cyngor-2026"
    assert descriptor["title"] == "Cyngor: June 2026"
    assert descriptor["created"] == descriptor["modified"] == "2026-06-01T09:30:00+00:00"
    assert uuid.UUID(descriptor["id"]).version == 4
    resource = descriptor["resources"][0]
    assert resource["path"] == "cyngor-2026-responses.json"
    assert resource["mediatype"] == "application/json"
    data = (tmp_path / resource["path"]).read_bytes()
    assert resource["bytes"] == len(data)
    assert resource["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "cyngor-2026-responses.json",
        "datapackage.json",
    ]


def test_the_package_id_is_the_same_for_the_same_name_and_time(tmp_path: Path, flow: Flow) -> None:
    first = export(tmp_path / "a", [quick_baseline()], flow)["id"]
    again = export(tmp_path / "b", [], flow)["id"]
    later = write_floip_package(
        [], flow, tmp_path / "c", name="cyngor-2026", title="", created=CREATED + timedelta(days=1)
    )
    assert first == again
    assert json.loads(later.read_text())["id"] != first


def test_one_row_per_answer_and_skipped_answers_have_none(tmp_path: Path, flow: Flow) -> None:
    export(tmp_path, [quick_baseline(), full_checkin()], flow)
    welsh = {"cohorts": [WELSH_COHORT], "initiatives": [WELSH_INITIATIVE]}
    assert responses(tmp_path) == [
        [
            "2026-05-04T10:00:00+00:00",
            "11.BA01.access",
            "RAAAAAAAAAAAAA",
            "11",
            "BA01.access",
            "I always have access to this",
            {"kind": "baseline", "mode": "quick", "score": 4, **welsh},
        ],
        [
            "2026-05-04T10:01:00+00:00",
            "11.BL03.blocker",
            "RAAAAAAAAAAAAA",
            "11",
            "BL03.blocker",
            "This causes me major problems in using the internet",
            {"kind": "baseline", "mode": "quick", "score": 1, **welsh},
        ],
        [
            "2026-05-04T10:02:00+00:00",
            "11.GS.skill",
            "RAAAAAAAAAAAAA",
            "11",
            "GS.skill",
            "I'm willing to give it a go, but may need help",
            {"kind": "baseline", "mode": "quick", "score": 2, **welsh},
        ],
        [
            "2026-05-04T10:03:00+00:00",
            "11.GS.interest",
            "RAAAAAAAAAAAAA",
            "11",
            "GS.interest",
            "I'll definitely do this regularly",
            {"kind": "baseline", "mode": "quick", "score": 4, **welsh},
        ],
        [
            "2026-05-04T10:10:00+00:00",
            "20.GS01.skill",
            "RBBBBBBBBBBBBB",
            "20",
            "GS01.skill",
            "I'm cautious/reluctant to do anything without help",
            {"kind": "baseline", "mode": "full", "score": 1},
        ],
        [
            "2026-05-04T10:11:00+00:00",
            "20.GS01.interest",
            "RBBBBBBBBBBBBB",
            "20",
            "GS01.interest",
            "I'm likely to do this regularly",
            {"kind": "baseline", "mode": "full", "score": 3},
        ],
        [
            "2026-05-04T10:20:00+00:00",
            "31.GS01.skill",
            "RBBBBBBBBBBBBB",
            "31",
            "GS01.skill",
            "I'm confident doing it for myself",
            {"kind": "checkin", "mode": "full", "score": 3, "baseline_session": "20"},
        ],
    ]


def test_welsh_text_is_written_as_utf8_characters(tmp_path: Path, flow: Flow) -> None:
    export(tmp_path, [quick_baseline()], flow)
    text = (tmp_path / "cyngor-2026-responses.json").read_bytes()
    assert "Llŷn – Ŵyl".encode() in text
    assert b"\\u" not in text


def test_it_reads_back_as_the_declared_fields(tmp_path: Path, flow: Flow) -> None:
    """A Data Package reader pairs each row's values with the schema's fields, in order."""
    descriptor = export(tmp_path, [quick_baseline(), full_checkin()], flow)
    fields = descriptor["resources"][0]["schema"]["fields"]
    assert [(f["name"], f["type"]) for f in fields] == [
        ("timestamp", "datetime"),
        ("row_id", "string"),
        ("contact_id", "string"),
        ("session_id", "string"),
        ("question_id", "string"),
        ("response", "any"),
        ("response_metadata", "object"),
    ]
    records = [
        dict(zip([f["name"] for f in fields], row, strict=True)) for row in responses(tmp_path)
    ]
    last = records[-1]
    assert datetime.fromisoformat(last["timestamp"]) == datetime(2026, 5, 4, 10, 20, tzinfo=UTC)
    assert (last["contact_id"], last["session_id"], last["question_id"]) == (
        "RBBBBBBBBBBBBB",
        "31",
        "GS01.skill",
    )
    for record in records:
        assert all(isinstance(record[name], str) for name in ("row_id", "contact_id"))
        assert isinstance(record["session_id"], str)
        assert isinstance(record["response_metadata"], dict)
    assert len({record["row_id"] for record in records}) == len(records) == 7


def test_no_database_id_of_a_person_is_written(tmp_path: Path, flow: Flow) -> None:
    people = [quick_baseline(), full_checkin()]
    export(tmp_path, people, flow)
    assert {row[2] for row in responses(tmp_path)} == {"RAAAAAAAAAAAAA", "RBBBBBBBBBBBBB"}


def test_progress_is_told_each_person_written(tmp_path: Path, flow: Flow) -> None:
    told: list[int] = []
    write_floip_package(
        [quick_baseline(), full_checkin()],
        flow,
        tmp_path,
        name="cyngor-2026",
        title="",
        created=CREATED,
        progress=told.append,
    )
    assert told == [1, 2]


@pytest.mark.parametrize("name", ["Cyngor 2026", "cyngor/2026", "", "cyngor_ŵyl"])
def test_a_name_the_specification_forbids_is_refused(tmp_path: Path, flow: Flow, name: str) -> None:
    with pytest.raises(ValueError, match="package name"):
        write_floip_package([], flow, tmp_path, name=name, title="", created=CREATED)
    assert list(tmp_path.iterdir()) == []


def test_a_creation_time_without_a_timezone_is_refused(tmp_path: Path, flow: Flow) -> None:
    with pytest.raises(ValueError, match="naive"):
        write_floip_package(
            [], flow, tmp_path, name="cyngor-2026", title="", created=datetime(2026, 6, 1)
        )


def test_an_answer_the_flow_does_not_know_leaves_no_package(tmp_path: Path, flow: Flow) -> None:
    stranger = person(
        3, "RCCCCCCCCCCCCC", (assessment(40, "baseline", "full", (answer("XX01.skill", 2, 0),)),)
    )
    export(tmp_path, [quick_baseline()], flow)
    with pytest.raises(KeyError, match=r"XX01\.skill"):
        write_floip_package(
            [quick_baseline(), stranger],
            flow,
            tmp_path,
            name="cyngor-2026",
            title="",
            created=CREATED,
        )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cyngor-2026-responses.json"]


# --- streaming -------------------------------------------------------------------------------

PEOPLE = 2_000
ANSWERS_EACH = 100


def many_people(flow: Flow) -> Iterator[Person]:
    """200,000 answers, each its own value, made one person at a time as the export asks."""
    keys = list(flow.questions)[:ANSWERS_EACH]
    times = [at(index) for index in range(ANSWERS_EACH)]
    for number in range(PEOPLE):
        answers = tuple(
            AnswerRow(
                question=key,
                item_id=key.split(".")[0],
                aspect=key.split(".")[1],
                option=(number + index) % 5 + 1,
                score=(number + index) % 5,
                answered_at=times[index],
                channel="sms",
            )
            for index, key in enumerate(keys)
        )
        yield person(
            number,
            f"R{number:013d}",
            (assessment(number + 1, "baseline", "full", answers),),
            cohorts=(WELSH_COHORT,),
            initiatives=(WELSH_INITIATIVE,),
        )


def test_memory_stays_flat_over_200000_answers(tmp_path: Path, flow: Flow) -> None:
    tracemalloc.start()
    try:
        write_floip_package(
            many_people(flow), flow, tmp_path, name="cyngor-2026", title="", created=CREATED
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Holding these people at once takes about 40 MB; the export's peak is about 0.5 MB.
    assert peak < 20 * 1024 * 1024
    with (tmp_path / "cyngor-2026-responses.json").open(encoding="utf-8") as lines:
        assert sum(1 for _ in lines) == PEOPLE * ANSWERS_EACH + 2  # and the two brackets
    shutil.rmtree(tmp_path)
