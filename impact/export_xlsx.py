"""The XLSX export: one workbook written while the people stream past, one person in memory at
a time (XlsxWriter's constant_memory mode writes each row out as the next one starts).

The rules it keeps:
- Sheets, in order: "About" (what the file is, when and by whom it was made, the selection,
  whether people are pseudonymous, the flow), "Assessments" (`columns.WideView`), "Answers"
  (`columns.LongView`), "Items" (the item bank) and "Scales". Every data sheet has a bold,
  frozen header row, an autofilter and set column widths.
- One pass: each person's assessment rows and answer rows are appended to their sheets as the
  person goes by, so every sheet is written in row order, as constant_memory requires.
- A sheet holds at most 1,048,576 rows (Excel's limit) with its header; rows beyond go on to
  "Answers 2", "Answers 3"… (each with its own header), placed after the first.
- Cells keep their types: scores and shares are numbers, times are Excel datetimes in UTC with
  a date format, text is always written as text (never as a formula or a link); text that
  would read as a formula if retyped (cohort names are typed by staff) is marked with Excel's
  quote prefix, which shows the text as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import xlsxwriter

from flows.model import Flow
from impact.columns import (
    ITEM_COLUMNS,
    SCALE_COLUMNS,
    Column,
    LongView,
    Progress,
    Row,
    WideView,
    Written,
    formula_like,
    item_rows,
    scale_rows,
)
from impact.records import Person

XLSX_MAX_ROWS = 1_048_576
"""Rows in one worksheet, its header included."""
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
WORKBOOK_OPTIONS = {
    "constant_memory": True,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
}


@dataclass(frozen=True)
class About:
    """What the "About" sheet says about the export."""

    made_at: datetime
    selection: str
    """Whose data, in words: "Cohort Library drop-in (team Cardiff)", "Everyone"."""
    made_by: str | None = None
    identified: bool = False
    """True when the caller asked for people to be named by their URN, not a pseudonym."""


def write_xlsx(
    people: Iterable[Person],
    flow: Flow,
    out: BinaryIO | str | Path,
    *,
    about: About,
    progress: Progress | None = None,
    max_rows: int = XLSX_MAX_ROWS,
) -> Written:
    """Write the workbook to `out` (a binary stream, left open, or a path)."""
    if max_rows < 2:
        raise ValueError("a sheet needs room for its header and a row")
    workbook = xlsxwriter.Workbook(str(out) if isinstance(out, Path) else out, WORKBOOK_OPTIONS)
    styles = _Styles(workbook)
    about_sheet = _Sheet(workbook, "About", (Column("", 16), Column("", 100)), styles, header=False)
    for line in _about_lines(flow, about):
        about_sheet.append(line)
    wide, long = WideView(flow), LongView(flow)
    assessments_sheets = _Sheets(workbook, "Assessments", wide.columns, styles, max_rows)
    answers_sheets = _Sheets(workbook, "Answers", long.columns, styles, max_rows)
    done = assessments = answers = 0
    try:
        for person in people:
            for row in wide.rows(person):
                assessments_sheets.append(row)
                assessments += 1
            for row in long.rows(person):
                answers_sheets.append(row)
                answers += 1
            done += 1
            if progress is not None:
                progress(done)
        assessments_sheets.finish()
        answers_sheets.finish()
        for name, columns, rows in (
            ("Items", ITEM_COLUMNS, item_rows(flow)),
            ("Scales", SCALE_COLUMNS, scale_rows(flow)),
        ):
            sheet = _Sheet(workbook, name, columns, styles)
            for row in rows:
                sheet.append(row)
            sheet.finish()
        about_sheet.append(("People", done))
        about_sheet.append(("Assessments", assessments))
        about_sheet.append(("Answers", answers))
        if answers_sheets.count > 1:
            about_sheet.append(
                ("Answer sheets", f"{answers_sheets.count} (a sheet holds {max_rows - 1:,} rows)")
            )
    finally:
        workbook.close()
    return Written(done, assessments, answers)


def _about_lines(flow: Flow, about: About) -> Iterator[Row]:
    yield ("dibot export", "Digital inclusion assessments")
    yield (
        "Contents",
        "Assessments: one row per assessment, with the score of every question and the "
        "profile's shares. Answers: one row per answer. Items: the item bank. Scales: what "
        "each option means and scores.",
    )
    yield ("Made at (UTC)", about.made_at)
    if about.made_by:
        yield ("Made by", about.made_by)
    yield ("Selection", about.selection)
    if about.identified:
        yield (
            "Respondents",
            "Identified by their URN (phone number or Telegram id): this file holds personal data.",
        )
    else:
        yield (
            "Respondents",
            "Pseudonymous: each person is named by a code that is the same in every export "
            "from this database and cannot be turned back into a phone number.",
        )
    yield ("Flow", f"{flow.id} version {flow.version}")
    yield ("Times", "UTC")
    yield ("Scores", "0 to 4 from each scale (see Scales); shares are 0 to 1 of the maximum.")


class _Styles:
    def __init__(self, workbook: Any) -> None:
        self.header = workbook.add_format({"bold": True})
        self.datetime = workbook.add_format({"num_format": DATETIME_FORMAT})
        self.quoted = workbook.add_format({"quote_prefix": True})


class _Sheet:
    """One worksheet filled in row order."""

    def __init__(
        self,
        workbook: Any,
        name: str,
        columns: tuple[Column, ...],
        styles: _Styles,
        *,
        header: bool = True,
    ) -> None:
        self._sheet = workbook.add_worksheet(name)
        self._styles = styles
        self._width = len(columns)
        self.rows = 0
        for index, column in enumerate(columns):
            self._sheet.set_column(index, index, column.width)
        if header:
            self._sheet.freeze_panes(1, 0)
            for index, column in enumerate(columns):
                self._sheet.write_string(0, index, column.name, styles.header)
            self.rows = 1

    def append(self, row: Row) -> None:
        sheet, styles, at = self._sheet, self._styles, self.rows
        for index, cell in enumerate(row):
            if cell is None:
                continue
            if isinstance(cell, str):
                sheet.write_string(at, index, cell, styles.quoted if formula_like(cell) else None)
            elif isinstance(cell, datetime):
                sheet.write_datetime(at, index, _excel_time(cell), styles.datetime)
            else:
                sheet.write_number(at, index, cell)
        self.rows += 1

    def finish(self) -> None:
        self._sheet.autofilter(0, 0, max(self.rows - 1, 0), self._width - 1)


class _Sheets:
    """A sheet and, past the row limit, its continuations "Name 2", "Name 3"…"""

    def __init__(
        self,
        workbook: Any,
        name: str,
        columns: tuple[Column, ...],
        styles: _Styles,
        max_rows: int,
    ) -> None:
        self._workbook, self._name, self._columns, self._styles = workbook, name, columns, styles
        self._max_rows = max_rows
        self.count = 1
        self._current = _Sheet(workbook, name, columns, styles)

    def append(self, row: Row) -> None:
        if self._current.rows >= self._max_rows:
            self._current.finish()
            self.count += 1
            self._current = _Sheet(
                self._workbook, f"{self._name} {self.count}", self._columns, self._styles
            )
        self._current.append(row)

    def finish(self) -> None:
        self._current.finish()


def _excel_time(moment: datetime) -> datetime:
    """Excel has no time zones: UTC, naive."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
