"""The CSV exports, read back with the csv module: one row per answer (long) and one per
assessment (wide), Welsh text that Excel can read (a BOM), cohort names that cannot run as
formulas, and memory that stays flat however many answers stream through."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from flows.model import Flow
from impact.columns import Written
from impact.export_csv import csv_cell, write_csvs, write_long_csv, write_wide_csv
from impact.records import AnswerRow, AssessmentRow, Person

HYPERLINK = '=HYPERLINK("http://example.invalid","click")'
WELSH_COHORT = "Gŵyl Llanrwst"
BASELINE_START = datetime(2026, 3, 1, 9, 15, tzinfo=UTC)
CHECKIN_START = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
BRITISH_SUMMER = timezone(timedelta(hours=1))


def answer(
    question: str, option: int | None, score: int | None, at: datetime, channel: str = "sms"
) -> AnswerRow:
    item_id, aspect = question.split(".")
    return AnswerRow(question, item_id, aspect, option, score, at, channel)


def minutes(start: datetime, count: int) -> datetime:
    return start + timedelta(minutes=count)


def quick_baseline() -> AssessmentRow:
    """Missing a connection (BA02 "I do not have this"), cost a barrier (BL01 "major
    problems"), Getting started low skill and keen, Transacting's interest skipped."""
    return AssessmentRow(
        id=11,
        kind="baseline",
        mode="quick",
        flow_id="digital-inclusion",
        flow_version="2026.11.1",
        baseline_id=None,
        started_at=BASELINE_START,
        completed_at=minutes(BASELINE_START, 20),
        abandoned_at=None,
        skills_basis=None,
        assisted=False,
        answers=(
            answer("BA01.access", 5, 4, minutes(BASELINE_START, 1)),
            answer("BA02.access", 1, 0, minutes(BASELINE_START, 2)),
            answer("BA03.access", 4, 3, minutes(BASELINE_START, 3)),
            answer("BL01.blocker", 2, 1, minutes(BASELINE_START, 4)),
            answer("GS.skill", 2, 1, minutes(BASELINE_START, 5)),
            answer("GS.interest", 5, 4, minutes(BASELINE_START, 6)),
            answer("TR.skill", 3, 2, minutes(BASELINE_START, 7)),
            answer("TR.interest", None, None, minutes(BASELINE_START, 8)),
        ),
    )


def full_checkin() -> AssessmentRow:
    """Still in progress, filled in with a worker; GS03's skill skipped; one answer stamped in
    British Summer Time (11:05 BST is 10:05 UTC)."""
    return AssessmentRow(
        id=12,
        kind="checkin",
        mode="full",
        flow_id="digital-inclusion",
        flow_version="2026.11.1",
        baseline_id=11,
        started_at=CHECKIN_START,
        completed_at=None,
        abandoned_at=None,
        skills_basis="as_if",
        assisted=True,
        answers=(
            answer("BA01.access", 5, 4, minutes(CHECKIN_START, 1), "telegram"),
            answer("GS01.skill", 4, 3, minutes(CHECKIN_START, 2), "telegram"),
            answer("GS02.skill", 2, 1, minutes(CHECKIN_START, 3), "telegram"),
            answer("GS02.interest", 4, 3, minutes(CHECKIN_START, 4), "telegram"),
            answer(
                "GS03.skill", None, None, datetime(2026, 6, 1, 11, 5, tzinfo=BRITISH_SUMMER), "web"
            ),
        ),
    )


def abandoned_full() -> AssessmentRow:
    """No skill and no interest at searching: lack of interest (BL04) is a barrier."""
    start = datetime(2026, 4, 2, 14, 0, tzinfo=UTC)
    return AssessmentRow(
        id=21,
        kind="baseline",
        mode="full",
        flow_id="digital-inclusion",
        flow_version="2026.11.1",
        baseline_id=None,
        started_at=start,
        completed_at=None,
        abandoned_at=minutes(start, 60 * 24 * 30),
        skills_basis=None,
        assisted=False,
        answers=(
            answer("HI01.skill", 1, 0, minutes(start, 1)),
            answer("HI01.interest", 1, 0, minutes(start, 2)),
        ),
    )


def people() -> list[Person]:
    return [
        Person(
            respondent_id=4242,
            label="R7Q2KX4MZP3AB",
            language="cy",
            created_at=BASELINE_START,
            enrolled_at=BASELINE_START,
            consented=True,
            opted_out=False,
            unreachable=False,
            cohorts=(HYPERLINK, WELSH_COHORT),
            initiatives=("Digital Champions",),
            assessments=(quick_baseline(), full_checkin()),
        ),
        Person(
            respondent_id=4343,
            label="RBBBBBBBBBBBB",
            language="en",
            created_at=BASELINE_START,
            enrolled_at=None,
            consented=True,
            opted_out=False,
            unreachable=False,
            cohorts=(),
            initiatives=(),
            assessments=(abandoned_full(),),
        ),
    ]


LONG_HEADER = [
    "respondent",
    "assessment_id",
    "kind",
    "mode",
    "flow_version",
    "started_at",
    "completed_at",
    "question",
    "item_id",
    "item_title",
    "section",
    "heading",
    "aspect",
    "option",
    "option_label",
    "score",
    "answered_at",
    "channel",
    "cohorts",
    "initiatives",
]
ESCAPED_COHORTS = "'" + HYPERLINK + ";" + WELSH_COHORT


def read_back(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "a UTF-8 byte order mark, for Excel"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def long_csv(flow: Flow) -> list[list[str]]:
    out = io.BytesIO()
    write_long_csv(people(), flow, out)
    return read_back(out.getvalue())


def test_long_csv_has_a_row_per_answer_with_its_question_and_option_in_words(flow: Flow) -> None:
    rows = long_csv(flow)

    assert rows[0] == LONG_HEADER
    assert len(rows) == 1 + 8 + 5 + 2
    assert rows[2] == [
        "R7Q2KX4MZP3AB",
        "11",
        "baseline",
        "quick",
        "2026.11.1",
        "2026-03-01T09:15:00Z",
        "2026-03-01T09:35:00Z",
        "BA02.access",
        "BA02",
        "An internet connection (fixed broadband and/or mobile data)",
        "basics",
        "",
        "access",
        "1",
        "I do not have this",
        "0",
        "2026-03-01T09:17:00Z",
        "sms",
        ESCAPED_COHORTS,
        "Digital Champions",
    ]
    quick_heading = rows[5]
    assert quick_heading[7:16] == [
        "GS.skill",
        "GS",
        "Getting started",
        "skills",
        "GS",
        "skill",
        "2",
        "I'm cautious/reluctant to do anything without help",
        "1",
    ]
    assert rows[8][7:16] == [
        "TR.interest",
        "TR",
        "Transacting",
        "skills",
        "TR",
        "interest",
        "",
        "Skipped",
        "",
    ]


def test_long_csv_skipped_answer_of_an_unfinished_checkin(flow: Flow) -> None:
    rows = long_csv(flow)

    assert rows[10][13:16] == ["4", "I'm confident doing it for myself", "3"]
    assert rows[13] == [
        "R7Q2KX4MZP3AB",
        "12",
        "checkin",
        "full",
        "2026.11.1",
        "2026-06-01T10:00:00Z",
        "",
        "GS03.skill",
        "GS03",
        "Make text bigger or change settings",
        "skills",
        "GS",
        "skill",
        "",
        "Skipped",
        "",
        "2026-06-01T10:05:00Z",
        "web",
        ESCAPED_COHORTS,
        "Digital Champions",
    ]
    assert rows[15][0] == "RBBBBBBBBBBBB"
    assert rows[15][18:] == ["", ""]


def test_no_export_row_holds_the_respondent_id(flow: Flow) -> None:
    out = io.BytesIO()
    write_csvs(people(), flow, long_out=out, wide_out=io.BytesIO())
    text = out.getvalue().decode("utf-8-sig")
    assert "4242" not in text
    assert "4343" not in text


def wide_csv(flow: Flow) -> list[dict[str, str]]:
    out = io.BytesIO()
    write_wide_csv(people(), flow, out)
    data = out.getvalue()
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_wide_csv_header_lists_every_question_of_every_mode_in_flow_order(flow: Flow) -> None:
    out = io.BytesIO()
    write_wide_csv(people(), flow, out)
    header = read_back(out.getvalue())[0]

    assert header[:13] == [
        "respondent",
        "assessment_id",
        "kind",
        "mode",
        "baseline_id",
        "language",
        "cohorts",
        "initiatives",
        "started_at",
        "completed_at",
        "status",
        "assisted",
        "skills_basis",
    ]
    # 3 basics + 5 blockers + 7 headings x 2 + 48 items x 2 = 118 questions.
    questions = header[13 : 13 + 118]
    assert questions[:9] == [
        "BA01.access",
        "BA02.access",
        "BA03.access",
        "BL01.blocker",
        "BL02.blocker",
        "BL03.blocker",
        "BL04.blocker",
        "BL05.blocker",
        "GS.skill",
    ]
    assert questions[20:24] == ["AD.skill", "AD.interest", "GS01.skill", "GS01.interest"]
    assert questions[-1] == "AD05.interest"
    assert header[131:] == [
        "GS.skill_share",
        "GS.interest_share",
        "CM.skill_share",
        "CM.interest_share",
        "HI.skill_share",
        "HI.interest_share",
        "TR.skill_share",
        "TR.interest_share",
        "PS.skill_share",
        "PS.interest_share",
        "SS.skill_share",
        "SS.interest_share",
        "AD.skill_share",
        "AD.interest_share",
        "basics_index",
        "missing_basics",
        "barriers",
    ]


def answered(row: dict[str, str]) -> dict[str, str]:
    """The question and share columns that are not empty."""
    return {name: value for name, value in row.items() if value and "." in name}


def test_wide_csv_quick_baseline(flow: Flow) -> None:
    baseline = wide_csv(flow)[0]

    assert {name: baseline[name] for name in list(baseline)[:13]} == {
        "respondent": "R7Q2KX4MZP3AB",
        "assessment_id": "11",
        "kind": "baseline",
        "mode": "quick",
        "baseline_id": "",
        "language": "cy",
        "cohorts": ESCAPED_COHORTS,
        "initiatives": "Digital Champions",
        "started_at": "2026-03-01T09:15:00Z",
        "completed_at": "2026-03-01T09:35:00Z",
        "status": "completed",
        "assisted": "no",
        "skills_basis": "",
    }
    assert answered(baseline) == {
        "BA01.access": "4",
        "BA02.access": "0",
        "BA03.access": "3",
        "BL01.blocker": "1",
        "GS.skill": "1",
        "GS.interest": "4",
        "TR.skill": "2",
        # Getting started: skill 1 of 4, interest 4 of 4; Transacting: skill 2 of 4.
        "GS.skill_share": "0.25",
        "GS.interest_share": "1.0",
        "TR.skill_share": "0.5",
    }
    # Basics 4 + 0 + 3 of 12; no connection is a missing basic; cost is a barrier.
    assert baseline["basics_index"] == "0.583"
    assert baseline["missing_basics"] == "BA02"
    assert baseline["barriers"] == "BL01"


def test_wide_csv_full_checkin_and_an_abandoned_assessment(flow: Flow) -> None:
    _, checkin, abandoned = wide_csv(flow)

    assert checkin["baseline_id"] == "11"
    assert checkin["completed_at"] == ""
    assert checkin["status"] == "in progress"
    assert checkin["assisted"] == "yes"
    assert checkin["skills_basis"] == "as_if"
    assert answered(checkin) == {
        "BA01.access": "4",
        "GS01.skill": "3",
        "GS02.skill": "1",
        "GS02.interest": "3",
        # GS03's skill was skipped: Getting started is (3 + 1) of 8; interest 3 of 4.
        "GS.skill_share": "0.5",
        "GS.interest_share": "0.75",
    }
    assert checkin["basics_index"] == "1.0"
    assert checkin["missing_basics"] == ""
    assert checkin["barriers"] == ""

    assert abandoned["respondent"] == "RBBBBBBBBBBBB"
    assert abandoned["language"] == "en"
    assert abandoned["cohorts"] == ""
    assert abandoned["status"] == "abandoned"
    assert answered(abandoned) == {
        "HI01.skill": "0",
        "HI01.interest": "0",
        "HI.skill_share": "0.0",
        "HI.interest_share": "0.0",
    }
    assert abandoned["basics_index"] == ""
    assert abandoned["barriers"] == "BL04"


def test_both_views_from_one_pass_report_what_was_written(flow: Flow) -> None:
    passes = 0
    done: list[int] = []

    def once() -> Iterator[Person]:
        nonlocal passes
        passes += 1
        yield from people()

    long_out, wide_out = io.BytesIO(), io.BytesIO()
    written = write_csvs(once(), flow, long_out=long_out, wide_out=wide_out, progress=done.append)

    assert passes == 1
    assert written == Written(people=2, assessments=3, answers=15)
    assert done == [1, 2]
    assert len(read_back(long_out.getvalue())) == 16
    assert len(read_back(wide_out.getvalue())) == 4
    assert not long_out.closed, "the caller's stream is left open"


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+44 club", "'+44 club"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTabbed", "'\tTabbed"),
        ("\rReturn", "'\rReturn"),
        ("Gŵyl =1", "Gŵyl =1"),
        (-2, "-2"),
        (0.583, "0.583"),
        (None, ""),
    ],
)
def test_text_that_a_spreadsheet_would_run_gets_an_apostrophe(
    cell: str | int | float | None, written: str
) -> None:
    assert csv_cell(cell) == written


def many_people(count: int, answers_each: int) -> Iterator[Person]:
    """Fresh values per person, as the database reader makes them: a writer that kept them
    would hold every one."""
    keys = [
        f"{item}.{aspect}"
        for item in ("GS01", "GS02", "GS03", "GS04", "GS05")
        for aspect in ("skill", "interest")
    ]
    for number in range(count):
        start = BASELINE_START + timedelta(minutes=number)
        rows = tuple(
            answer(keys[index % len(keys)], index % 5 + 1, index % 5, minutes(start, index))
            for index in range(answers_each)
        )
        yield Person(
            respondent_id=number,
            label=f"R{number:012d}",
            language="en",
            created_at=start,
            enrolled_at=None,
            consented=True,
            opted_out=False,
            unreachable=False,
            cohorts=(f"Cohort {number % 7}",),
            initiatives=("Initiative",),
            assessments=(
                AssessmentRow(
                    id=number,
                    kind="baseline",
                    mode="full",
                    flow_id="digital-inclusion",
                    flow_version="2026.11.1",
                    baseline_id=None,
                    started_at=start,
                    completed_at=None,
                    abandoned_at=None,
                    skills_basis=None,
                    assisted=False,
                    answers=rows,
                ),
            ),
        )


MEMORY_BOUND = 8 * 1024 * 1024
"""Holding 200,000 answers would take well over 30 MB; one person's take a few kilobytes."""


def test_csv_memory_stays_flat_for_200000_answers(flow: Flow, tmp_path: Path) -> None:
    with (
        (tmp_path / "long.csv").open("wb") as long_out,
        (tmp_path / "wide.csv").open("wb") as wide_out,
    ):
        tracemalloc.start()
        try:
            written = write_csvs(
                many_people(2_000, 100), flow, long_out=long_out, wide_out=wide_out
            )
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert written == Written(people=2_000, assessments=2_000, answers=200_000)
    assert peak < MEMORY_BOUND, f"peak {peak / 1e6:.1f} MB"
    with (tmp_path / "long.csv").open(encoding="utf-8-sig", newline="") as back:
        assert sum(1 for _ in csv.reader(back)) == 200_001
