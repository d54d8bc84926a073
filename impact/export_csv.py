"""CSV exports: the long view (one row per answer) and the wide view (one row per assessment),
written while the people stream past, one person in memory at a time.

The rules it keeps:
- UTF-8 with a byte order mark ("utf-8-sig"): Excel reads a CSV without one in the machine's
  legacy code page and garbles Welsh names (ŵ, ŷ); every other CSV reader skips the mark.
- Text that a spreadsheet would take for a formula (starting with = + - @, a tab or a carriage
  return: cohort names are typed by staff) gets a leading apostrophe, so it stays text.
- Times are ISO 8601 in UTC with a "Z" ("2026-03-01T09:15:00Z"); empty cells are empty.
- Writers take a binary stream and leave it open; they return what they wrote.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import BinaryIO, cast

from flows.model import Flow
from impact.columns import (
    Cell,
    Column,
    LongView,
    Progress,
    Row,
    WideView,
    Written,
    formula_like,
)
from impact.records import Person

ENCODING = "utf-8-sig"


def write_long_csv(
    people: Iterable[Person], flow: Flow, out: BinaryIO, *, progress: Progress | None = None
) -> Written:
    """One row per answer (`columns.LongView`)."""
    return write_csvs(people, flow, long_out=out, progress=progress)


def write_wide_csv(
    people: Iterable[Person], flow: Flow, out: BinaryIO, *, progress: Progress | None = None
) -> Written:
    """One row per assessment (`columns.WideView`)."""
    return write_csvs(people, flow, wide_out=out, progress=progress)


def write_csvs(
    people: Iterable[Person],
    flow: Flow,
    *,
    long_out: BinaryIO | None = None,
    wide_out: BinaryIO | None = None,
    progress: Progress | None = None,
) -> Written:
    """The long view, the wide view or both, from one pass over `people`."""
    sinks: list[tuple[_CsvSink, LongView | WideView]] = []
    if long_out is not None:
        view: LongView | WideView = LongView(flow)
        sinks.append((_CsvSink(long_out, view.columns), view))
    if wide_out is not None:
        view = WideView(flow)
        sinks.append((_CsvSink(wide_out, view.columns), view))
    done = assessments = answers = 0
    try:
        for person in people:
            for sink, view in sinks:
                for row in view.rows(person):
                    sink.write(row)
            done += 1
            assessments += len(person.assessments)
            answers += sum(len(assessment.answers) for assessment in person.assessments)
            if progress is not None:
                progress(done)
    finally:
        for sink, _ in sinks:
            sink.close()
    return Written(done, assessments, answers)


class _CsvSink:
    def __init__(self, out: BinaryIO, columns: tuple[Column, ...]) -> None:
        self._text = io.TextIOWrapper(out, encoding=ENCODING, newline="", write_through=False)
        self._writer = csv.writer(self._text)
        self._writer.writerow([column.name for column in columns])

    def write(self, row: Row) -> None:
        self._writer.writerow([csv_cell(cell) for cell in row])

    def close(self) -> None:
        """Flush, and hand the stream back to its owner open."""
        self._text.flush()
        self._text.detach()


def csv_cell(cell: Cell) -> str:
    kind = type(cell)
    if kind is str:
        text = cast(str, cell)
        return "'" + text if formula_like(text) else text
    if cell is None:
        return ""
    if kind is datetime:
        return iso_utc(cast(datetime, cell))
    return str(cell)


@lru_cache(maxsize=256)
def iso_utc(moment: datetime) -> str:
    """ "2026-03-01T09:15:00Z"; a naive time is taken to be UTC already. Cached: an
    assessment's times repeat on every one of its answer rows."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
