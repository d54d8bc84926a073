"""The outcome-flags export for cost-benefit models (such as GMCA's): one dated row per person
per outcome flag, and a second file of counts per cohort and initiative that can be shared.

The rules it keeps:
- The pair compared is `impact.report.latest_pair`'s, so this export and `dibot report` agree:
  the latest completed check-in with the completed baseline it follows, else the latest
  completed baseline alone. People with no completed baseline are left out.
- A flag is `scoring.outcomes.outcome_flags`'s: "yes" or "no" where the item's skill was
  answered in that assessment, empty where it was not (skipped, not asked, or a quick check,
  which answers headings only). Newly able is "yes" or "no" only when both are known.
- The counts file counts, per group (everyone, each cohort, each initiative), the people with
  a completed baseline, those with a completed check-in after it, and, over the pairs that
  answered the item's skill both times (as the report counts them): known, able at baseline,
  able at check-in and newly able. Every count below `min_count` (10) is written "<10", so
  the counts file can leave the council; the per-person file cannot.
- Both are CSV as `impact.export_csv` writes them: UTF-8 with a byte order mark, times in UTC
  ISO 8601, text a spreadsheet would take for a formula prefixed with an apostrophe. A person
  is named only by `Person.label`. Rows are written one person at a time; only the counts
  (a few per group and flag) are held, so memory stays flat.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from flows.model import Flow
from impact.columns import LIST_SEPARATOR, Cell, Progress, Row
from impact.export_csv import ENCODING, csv_cell
from impact.records import Person
from impact.report import NO_INITIATIVE, latest_pair
from scoring.impact import MIN_GROUP
from scoring.outcomes import outcome_flags

FLAG_COLUMNS = (
    "respondent",
    "flag",
    "item",
    "baseline_id",
    "baseline_mode",
    "baseline_completed_at",
    "checkin_id",
    "checkin_mode",
    "checkin_completed_at",
    "able_at_baseline",
    "able_at_checkin",
    "newly_able",
    "cohorts",
    "initiatives",
)
COUNT_COLUMNS = (
    "group_type",
    "group",
    "flag",
    "item",
    "people",
    "checked_in",
    "known",
    "able_at_baseline",
    "able_at_checkin",
    "newly_able",
)
EVERYONE = ("everyone", "Everyone")
WITHHELD = "<{}"
"""How a withheld count is written: "<10"."""


@dataclass(frozen=True)
class OutcomesWritten:
    people: int
    """People read."""
    with_baseline: int
    """People with a completed baseline: those in the per-person file."""
    rows: int
    """Rows in the per-person file (one per person and flag)."""


def yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def flag_rows(flow: Flow, person: Person) -> Iterator[Row]:
    """One row per outcome flag for `person`, in flow order; none without a completed
    baseline."""
    baseline, checkin = latest_pair(person)
    if baseline is None:
        return
    cohorts = LIST_SEPARATOR.join(person.cohorts) or None
    initiatives = LIST_SEPARATOR.join(person.initiatives) or None
    after = None if checkin is None else checkin.options()
    for flag in outcome_flags(flow, baseline.options(), after):
        both_known = flag.able_at_baseline is not None and flag.able_at_followup is not None
        yield (
            person.label,
            flag.flag,
            flag.item,
            baseline.id,
            baseline.mode,
            baseline.completed_at,
            None if checkin is None else checkin.id,
            None if checkin is None else checkin.mode,
            None if checkin is None else checkin.completed_at,
            yes_no(flag.able_at_baseline),
            yes_no(flag.able_at_followup),
            yes_no(flag.newly_able) if both_known else None,
            cohorts,
            initiatives,
        )


class OutcomeCounts:
    """Counts per group and flag, added to one person at a time."""

    def __init__(self, flow: Flow) -> None:
        self._flags = tuple((item.outcome, item.id) for item in flow.items if item.outcome)
        self._groups: dict[tuple[str, str], Counter[str]] = {EVERYONE: Counter()}
        self._flow = flow

    def add(self, person: Person) -> None:
        baseline, checkin = latest_pair(person)
        if baseline is None:
            return
        groups = [
            EVERYONE,
            *(("cohort", name) for name in person.cohorts),
            *(("initiative", name) for name in person.initiatives or (NO_INITIATIVE,)),
        ]
        found: Counter[str] = Counter(people=1)
        if checkin is not None:
            found["checked_in"] = 1
            for flag in outcome_flags(self._flow, baseline.options(), checkin.options()):
                if flag.able_at_baseline is None or flag.able_at_followup is None:
                    continue
                found[f"{flag.flag}.known"] += 1
                found[f"{flag.flag}.able_at_baseline"] += flag.able_at_baseline
                found[f"{flag.flag}.able_at_checkin"] += flag.able_at_followup
                found[f"{flag.flag}.newly_able"] += flag.newly_able
        for group in groups:
            self._groups.setdefault(group, Counter()).update(found)

    def rows(self, min_count: int) -> Iterator[Row]:
        """Everyone first, then cohorts, then initiatives, each by name; flags in flow order."""
        order = {"everyone": 0, "cohort": 1, "initiative": 2}
        for key in sorted(self._groups, key=lambda group: (order[group[0]], group[1])):
            counts = self._groups[key]
            for flag, item in self._flags:
                yield (
                    *key,
                    flag,
                    item,
                    *(
                        _shown(counts[name], min_count)
                        for name in (
                            "people",
                            "checked_in",
                            f"{flag}.known",
                            f"{flag}.able_at_baseline",
                            f"{flag}.able_at_checkin",
                            f"{flag}.newly_able",
                        )
                    ),
                )


def _shown(count: int, min_count: int) -> Cell:
    return WITHHELD.format(min_count) if count < min_count else count


def write_outcomes(
    people: Iterable[Person],
    flow: Flow,
    out: BinaryIO,
    counts_out: BinaryIO,
    *,
    min_count: int = MIN_GROUP,
    progress: Progress | None = None,
) -> OutcomesWritten:
    """The per-person flags to `out` and the counts to `counts_out` (binary streams, left
    open)."""
    flags = _CsvOut(out, FLAG_COLUMNS)
    counts = OutcomeCounts(flow)
    done = with_baseline = rows = 0
    try:
        for person in people:
            for row in flag_rows(flow, person):
                flags.write(row)
                rows += 1
            with_baseline += latest_pair(person)[0] is not None
            counts.add(person)
            done += 1
            if progress is not None:
                progress(done)
    finally:
        flags.close()
    totals = _CsvOut(counts_out, COUNT_COLUMNS)
    try:
        for row in counts.rows(min_count):
            totals.write(row)
    finally:
        totals.close()
    return OutcomesWritten(done, with_baseline, rows)


class _CsvOut:
    def __init__(self, out: BinaryIO, columns: tuple[str, ...]) -> None:
        self._text = io.TextIOWrapper(out, encoding=ENCODING, newline="", write_through=False)
        self._writer = csv.writer(self._text)
        self._writer.writerow(columns)

    def write(self, row: Row) -> None:
        self._writer.writerow([csv_cell(cell) for cell in row])

    def close(self) -> None:
        self._text.flush()
        self._text.detach()
