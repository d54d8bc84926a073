"""When a check-in is due: `--after` on the local calendar, `--at` a date or an exact time."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outreach.timing import After, TimingError, add_after, add_months, parse_after, parse_at

LONDON = ZoneInfo("Europe/London")
ROOT = Path(__file__).resolve().parent.parent


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("text", "after"),
    [
        ("3m", After(3, "m")),
        ("12w", After(12, "w")),
        ("10d", After(10, "d")),
        (" 6M ", After(6, "m")),
        ("1 d", After(1, "d")),
        ("120m", After(120, "m")),
        ("0003m", After(3, "m")),
    ],
)
def test_after_reads_months_weeks_and_days(text: str, after: After) -> None:
    assert parse_after(text) == after


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", 'must look like 3m, 12w or 10d \\(months, weeks, days\\), not ""'),
        ("3", "must look like 3m, 12w or 10d"),
        ("m", "must look like 3m, 12w or 10d"),
        ("3x", 'not "3x"'),
        ("3 months", "must look like 3m"),
        ("3h", "must look like 3m"),
        ("-3m", "must look like 3m"),
        ("1.5m", "must look like 3m"),
        ("３m", "must look like 3m"),
        ("1m2w", "must look like 3m"),
        ("99999d", "must look like 3m"),
        ("0m", '"0m" is no time at all: give at least 1'),
        ("121m", '"121m" is over ten years \\(120 months at most\\)'),
        ("521w", "520 weeks at most"),
        ("3654d", "3653 days at most"),
    ],
)
def test_after_refuses_anything_else_saying_what_it_wants(text: str, problem: str) -> None:
    with pytest.raises(TimingError, match=f"--after .*{problem}"):
        parse_after(text)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2027, 3, 31), 1, date(2027, 4, 30)),
        (date(2027, 1, 31), 3, date(2027, 4, 30)),
        (date(2027, 11, 30), 3, date(2028, 2, 29)),
        (date(2027, 12, 15), 1, date(2028, 1, 15)),
        (date(2027, 5, 10), 12, date(2028, 5, 10)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
    ],
)
def test_calendar_months_end_on_the_last_day_of_a_shorter_month(
    start: date, months: int, expected: date
) -> None:
    assert add_months(start, months) == expected


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)), st.integers(1, 120))
def test_a_month_later_is_the_same_day_or_the_months_last(start: date, months: int) -> None:
    later = add_months(start, months)
    assert (later.year * 12 + later.month) - (start.year * 12 + start.month) == months
    assert later.day == start.day or (later.day < start.day and (later + timedelta(1)).day == 1)


@pytest.mark.parametrize(
    ("start", "after", "expected"),
    [
        # 31 January + 1m = 28 February (2027), 29 February (2028); 10:00 GMT throughout.
        ("2027-01-31T10:00:00+00:00", "1m", "2027-02-28T10:00:00+00:00"),
        ("2028-01-31T10:00:00+00:00", "1m", "2028-02-29T10:00:00+00:00"),
        # Across the change to BST: still 10:00 on the wall clock, 09:00 UTC.
        ("2027-03-01T10:00:00+00:00", "1m", "2027-04-01T09:00:00+00:00"),
        ("2027-03-27T10:00:00+00:00", "1d", "2027-03-28T09:00:00+00:00"),
        ("2027-01-04T10:00:00+00:00", "12w", "2027-03-29T10:00:00+01:00"),
        # And back to GMT.
        ("2027-10-30T09:00:00+00:00", "1d", "2027-10-31T10:00:00+00:00"),
        ("2027-07-31T09:00:00+00:00", "3m", "2027-10-31T10:00:00+00:00"),
        # A baseline finished at 01:30 GMT the day before the clocks go forward: 01:30 does not
        # exist on the 28th, so the check-in comes at 02:30 BST, the far side of the gap.
        ("2027-03-27T01:30:00+00:00", "1d", "2027-03-28T01:30:00+00:00"),
    ],
)
def test_after_keeps_the_wall_clock_time_on_the_london_calendar(
    start: str, after: str, expected: str
) -> None:
    assert add_after(utc(start), parse_after(after)) == utc(expected)


def test_after_counts_on_the_calendar_of_the_zone_given() -> None:
    # 23:30 UTC on 31 January is already 1 February in Paris: a month on is 1 March there.
    paris = ZoneInfo("Europe/Paris")
    result = add_after(utc("2027-01-31T23:30:00+00:00"), After(1, "m"), paris)
    assert result == utc("2027-02-28T23:30:00+00:00")
    assert result.astimezone(paris).date() == date(2027, 3, 1)


def test_after_needs_an_aware_start() -> None:
    with pytest.raises(ValueError, match="start must be an aware datetime"):
        add_after(datetime(2027, 1, 1), After(1, "d"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-03-01", "2027-03-01T10:00:00+00:00"),  # 10:00 GMT
        ("2027-06-01", "2027-06-01T09:00:00+00:00"),  # 10:00 BST
        ("2027-03-28", "2027-03-28T09:00:00+00:00"),  # the day the clocks go forward
        ("2027-10-31", "2027-10-31T10:00:00+00:00"),  # the day they go back
        (" 2027-03-01 ", "2027-03-01T10:00:00+00:00"),
        ("2027-03-01T09:30:00+00:00", "2027-03-01T09:30:00+00:00"),
        ("2027-03-01T09:30+01:00", "2027-03-01T08:30:00+00:00"),
        ("2027-03-01T09:30Z", "2027-03-01T09:30:00+00:00"),
        ("2027-03-01 09:30+00:00", "2027-03-01T09:30:00+00:00"),
    ],
)
def test_at_is_a_date_at_ten_local_or_a_time_with_its_offset(text: str, expected: str) -> None:
    result = parse_at(text)
    assert result == utc(expected)
    assert result.tzinfo is UTC


def test_at_a_date_can_mean_another_time_or_zone() -> None:
    assert parse_at("2027-06-01", ZoneInfo("America/New_York"), time(9, 0)) == utc(
        "2027-06-01T13:00:00+00:00"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "must be a date \\(2027-03-01\\) or a time with its UTC offset"),
        ("tomorrow", 'not "tomorrow"'),
        ("01/03/2027", "must be a date"),
        ("2027-3-1", "must be a date"),
        ("２０２７-03-01", "must be a date"),
        ("3m", "must be a date"),
        ("2027-02-30", '"2027-02-30" is not a date in the calendar'),
        ("2027-13-01", "is not a date in the calendar"),
        ("2027-03-01T25:00+00:00", "must be a date"),
        ("2027-03-01T09:30", '"2027-03-01T09:30" has no UTC offset: add one'),
        ("2027-10-31T01:30", "has no UTC offset"),
    ],
)
def test_at_refuses_anything_else_saying_what_it_wants(text: str, problem: str) -> None:
    with pytest.raises(TimingError, match=f"--at .*{problem}"):
        parse_at(text)


def test_outreach_reads_no_clock() -> None:
    """Time is always an argument: no module in outreach/ calls now(), today() or time()."""
    clocks = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
    for path in sorted((ROOT / "outreach").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in clocks, f"{path.name}:{node.lineno} reads a clock"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [alias.name for alias in node.names]
                module = node.module if isinstance(node, ast.ImportFrom) else None
                assert "time" not in ([module] if module else names), f"{path.name} imports time"
