"""The XLSX export, opened back with openpyxl: its sheets in order, typed cells (numbers,
datetimes, text that never runs as a formula), frozen bold headers with filters, answers that
go on to "Answers 2" past a sheet's row limit, and memory that stays flat."""

from __future__ import annotations

import io
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from flows.model import Flow
from impact.columns import Written
from impact.export_xlsx import About, write_xlsx
from tests.test_export_csv import HYPERLINK, WELSH_COHORT, many_people, people

MADE_AT = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)
ABOUT = About(made_at=MADE_AT, selection="Cohort Gŵyl Llanrwst", made_by="ana@example.org")


def workbook(flow: Flow, about: About = ABOUT, **options: Any) -> Any:
    out = io.BytesIO()
    written = write_xlsx(people(), flow, out, about=about, **options)
    assert written == Written(people=2, assessments=3, answers=15)
    return openpyxl.load_workbook(io.BytesIO(out.getvalue()))


def header(sheet: Any) -> list[Any]:
    return [cell.value for cell in sheet[1]]


def values(sheet: Any, row: int) -> list[Any]:
    return [cell.value for cell in sheet[row]]


def test_sheets_in_order_each_with_a_frozen_bold_filtered_header(flow: Flow) -> None:
    book = workbook(flow)

    assert book.sheetnames == ["About", "Assessments", "Answers", "Items", "Scales"]
    for name, last_cell in (
        ("Assessments", "ER4"),  # 148 columns; 3 assessments
        ("Answers", "T16"),  # 20 columns; 15 answers
        ("Items", "H64"),  # 3 basics + 5 blockers + 7 headings + 48 items
        ("Scales", "D21"),  # 4 scales of 5 options
    ):
        sheet = book[name]
        assert sheet.freeze_panes == "A2", name
        assert sheet.auto_filter.ref == f"A1:{last_cell}", name
        assert all(cell.font.b for cell in sheet[1]), name
    assert book["Answers"].column_dimensions["J"].width > 30, "item titles get room"


def test_about_says_what_the_file_is_and_that_people_are_pseudonymous(flow: Flow) -> None:
    about = book_rows(workbook(flow)["About"])

    assert about["dibot export"] == "Digital inclusion assessments"
    assert about["Made at (UTC)"] == datetime(2026, 12, 1, 18, 30)
    assert about["Made by"] == "ana@example.org"
    assert about["Selection"] == "Cohort Gŵyl Llanrwst"
    assert about["Respondents"].startswith("Pseudonymous")
    assert about["Flow"] == "digital-inclusion version 2026.11.1"
    assert (about["People"], about["Assessments"], about["Answers"]) == (2, 3, 15)


def test_about_warns_when_people_are_identified(flow: Flow) -> None:
    identified = About(made_at=MADE_AT, selection="Everyone", identified=True)
    about = book_rows(workbook(flow, identified)["About"])

    assert about["Respondents"].startswith("Identified by their URN")
    assert "personal data" in about["Respondents"]
    assert "Made by" not in about


def book_rows(sheet: Any) -> dict[str, Any]:
    return {row[0]: row[1] for row in sheet.iter_rows(values_only=True)}


def test_assessments_sheet_holds_typed_scores_times_and_shares(flow: Flow) -> None:
    sheet = workbook(flow)["Assessments"]
    names = header(sheet)
    baseline = dict(zip(names, values(sheet, 2), strict=True))

    assert names[:3] == ["respondent", "assessment_id", "kind"]
    assert names[13] == "BA01.access"
    assert {name: baseline[name] for name in names[:13]} == {
        "respondent": "R7Q2KX4MZP3AB",
        "assessment_id": 11,
        "kind": "baseline",
        "mode": "quick",
        "baseline_id": None,
        "language": "cy",
        "cohorts": HYPERLINK + ";" + WELSH_COHORT,
        "initiatives": "Digital Champions",
        "started_at": datetime(2026, 3, 1, 9, 15),
        "completed_at": datetime(2026, 3, 1, 9, 35),
        "status": "completed",
        "assisted": "no",
        "skills_basis": None,
    }
    assert baseline["BA02.access"] == 0
    assert baseline["GS.interest"] == 4
    assert baseline["TR.interest"] is None, "skipped"
    assert baseline["GS01.skill"] is None, "not asked"
    assert baseline["GS.skill_share"] == 0.25
    assert baseline["basics_index"] == 0.583
    assert baseline["missing_basics"] == "BA02"
    assert baseline["barriers"] == "BL01"

    started = sheet.cell(row=2, column=names.index("started_at") + 1)
    assert started.number_format == "yyyy-mm-dd hh:mm:ss"
    checkin = dict(zip(names, values(sheet, 3), strict=True))
    assert (checkin["baseline_id"], checkin["status"], checkin["assisted"]) == (
        11,
        "in progress",
        "yes",
    )
    assert checkin["GS.skill_share"] == 0.5


def test_a_cohort_name_like_a_formula_stays_text(flow: Flow) -> None:
    sheet = workbook(flow)["Assessments"]
    cohorts = sheet.cell(row=2, column=header(sheet).index("cohorts") + 1)

    assert cohorts.data_type == "s"
    assert cohorts.value == HYPERLINK + ";" + WELSH_COHORT
    assert cohorts.quotePrefix, "retyping the cell in Excel keeps it text"
    plain = sheet.cell(row=2, column=header(sheet).index("initiatives") + 1)
    assert not plain.quotePrefix


def test_answers_sheet_has_a_row_per_answer(flow: Flow) -> None:
    sheet = workbook(flow)["Answers"]

    assert header(sheet)[:8] == [
        "respondent",
        "assessment_id",
        "kind",
        "mode",
        "flow_version",
        "started_at",
        "completed_at",
        "question",
    ]
    assert values(sheet, 3) == [
        "R7Q2KX4MZP3AB",
        11,
        "baseline",
        "quick",
        "2026.11.1",
        datetime(2026, 3, 1, 9, 15),
        datetime(2026, 3, 1, 9, 35),
        "BA02.access",
        "BA02",
        "An internet connection (fixed broadband and/or mobile data)",
        "basics",
        None,
        "access",
        1,
        "I do not have this",
        0,
        datetime(2026, 3, 1, 9, 17),
        "sms",
        HYPERLINK + ";" + WELSH_COHORT,
        "Digital Champions",
    ]
    skipped = values(sheet, 14)
    assert skipped[7] == "GS03.skill"
    assert skipped[13:18] == [None, "Skipped", None, datetime(2026, 6, 1, 10, 5), "web"]
    assert values(sheet, 16)[0] == "RBBBBBBBBBBBB"
    assert values(sheet, 16)[18:] == [None, None], "no cohorts: empty cells"


def test_items_and_scales_sheets_describe_the_item_bank(flow: Flow) -> None:
    book = workbook(flow)
    items = book["Items"]

    assert header(items) == [
        "id",
        "level",
        "section",
        "heading",
        "title",
        "short",
        "eds_area",
        "outcome",
    ]
    assert values(items, 2) == [
        "BA01",
        "item",
        "basics",
        None,
        "A device that connects me to the internet",
        "a device",
        None,
        None,
    ]
    assert values(items, 10) == [
        "GS",
        "heading",
        "skills",
        "GS",
        "Getting started",
        "Getting started",
        None,
        None,
    ]
    assert values(items, 11)[:3] == ["GS01", "item", "skills"]
    banking = next(row for row in items.iter_rows(values_only=True) if row[0] == "TR04")
    assert banking == (
        "TR04",
        "item",
        "skills",
        "TR",
        "Use online or app banking",
        "Banking online",
        "Transacting",
        "bank_online",
    )

    scales = book["Scales"]
    assert header(scales) == ["scale", "option", "score", "label"]
    assert values(scales, 2) == ["access", 1, 0, "I do not have this"]
    assert values(scales, 15) == ["skill", 4, 3, "I'm confident doing it for myself"]


def test_answers_go_on_to_another_sheet_past_the_row_limit(flow: Flow) -> None:
    # Six rows a sheet: the header and five answers; 15 answers fill three sheets.
    book = workbook(flow, max_rows=6)

    assert book.sheetnames == [
        "About",
        "Assessments",
        "Answers",
        "Answers 2",
        "Answers 3",
        "Items",
        "Scales",
    ]
    questions = []
    for name in ("Answers", "Answers 2", "Answers 3"):
        sheet = book[name]
        assert sheet.max_row == 6, name
        assert header(sheet)[0] == "respondent", name
        assert sheet.freeze_panes == "A2", name
        assert sheet.auto_filter.ref == "A1:T6", name
        questions += [row[7] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert questions[5:8] == ["GS.interest", "TR.skill", "TR.interest"]
    assert questions[-1] == "HI01.interest"
    assert book["Assessments"].max_row == 4


def test_a_sheet_must_hold_a_header_and_a_row(flow: Flow) -> None:
    with pytest.raises(ValueError, match="header"):
        write_xlsx(people(), flow, io.BytesIO(), about=ABOUT, max_rows=1)


MEMORY_BOUND = 8 * 1024 * 1024
"""Without constant_memory XlsxWriter holds every cell: about 2 KB an answer row here, 21 MB
for these 10,000 (measured). With it, one row at a time."""


def test_xlsx_memory_stays_flat(flow: Flow, tmp_path: Path) -> None:
    # 10,000 answers, not 200,000: XlsxWriter takes about half a millisecond a row (several
    # times that under tracemalloc), and this count already puts a growing writer far above
    # the bound.
    done: list[int] = []
    tracemalloc.start()
    try:
        written = write_xlsx(
            many_people(100, 100),
            flow,
            tmp_path / "export.xlsx",
            about=ABOUT,
            progress=done.append,
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert written == Written(people=100, assessments=100, answers=10_000)
    assert done == list(range(1, 101))
    assert peak < MEMORY_BOUND, f"peak {peak / 1e6:.1f} MB"
    book = openpyxl.load_workbook(tmp_path / "export.xlsx", read_only=True)
    assert book["Answers"].max_row == 10_001
    book.close()
