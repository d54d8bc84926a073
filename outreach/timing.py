"""When a check-in is due: `--after 3m` (months, weeks or days) and `--at 2027-03-01`, read once.

`--after` counts on the local calendar and keeps the time of day: a month after 31 January
is the last day of February (28th, or 29th in a leap year), a month after 10:00 on 1 March
is 10:00 on 1 April, whether or not the clocks changed in between. `--at` is a date, meaning
10:00 local time that day, or an ISO 8601 time with its UTC offset ("2027-03-01T09:30+00:00",
"...Z"); a time without an offset is refused, since around a clock change it names two
instants, or none. Both give an aware UTC datetime and read no clock: whether a time is in
the past is for the caller, who knows `now`.

A local time the spring clock change skips (01:30 on the last Sunday of March) is read as
the instant an hour later on the wall clock; one that happens twice in October as the first.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Unit = Literal["m", "w", "d"]

DEFAULT_TIMEZONE = "Europe/London"
DEFAULT_TIME_OF_DAY = time(10, 0)
AFTER = re.compile(r"([0-9]{1,4})\s*([mwd])", re.ASCII | re.IGNORECASE)
LIMITS = {"m": 120, "w": 520, "d": 3653}
"""Ten years ahead, in each unit."""
UNIT_NAMES = {"m": "months", "w": "weeks", "d": "days"}
UNITS: dict[str, Unit] = {"m": "m", "w": "w", "d": "d"}
DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


class TimingError(ValueError):
    """An `--after` or `--at` that cannot be read; the message says what is wrong."""


@dataclass(frozen=True)
class After:
    """A span of calendar months, weeks or days."""

    count: int
    unit: Unit


def parse_after(text: str) -> After:
    """ "3m" (months), "12w" (weeks), "10d" (days)."""
    match = AFTER.fullmatch(text.strip())
    if match is None:
        raise TimingError(
            f'--after must look like 3m, 12w or 10d (months, weeks, days), not "{text}"'
        )
    count, unit = int(match.group(1)), UNITS[match.group(2).lower()]
    if count < 1:
        raise TimingError(f'--after "{text}" is no time at all: give at least 1')
    if count > LIMITS[unit]:
        raise TimingError(
            f'--after "{text}" is over ten years ({LIMITS[unit]} {UNIT_NAMES[unit]} at most)'
        )
    return After(count, unit)


MAX_REMINDERS = 2
REMINDER_DELAY = re.compile(r"([0-9]{1,3})\s*([hd])", re.ASCII | re.IGNORECASE)
MAX_REMINDER_DELAY = timedelta(days=30)


def parse_reminders(text: str) -> tuple[timedelta, ...]:
    """ "2d,5d" or "36h": at most two delays, each counted from the respondent's last text,
    each later than the one before, from 1 hour to 30 days; "" means no reminders."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if len(parts) > MAX_REMINDERS:
        raise TimingError(f'at most {MAX_REMINDERS} reminders, not {len(parts)} ("{text}")')
    delays: list[timedelta] = []
    for part in parts:
        match = REMINDER_DELAY.fullmatch(part)
        if match is None:
            raise TimingError(f'each delay must look like 36h or 2d (hours, days), not "{part}"')
        count, unit = int(match.group(1)), match.group(2).lower()
        delay = timedelta(hours=count) if unit == "h" else timedelta(days=count)
        if not timedelta(hours=1) <= delay <= MAX_REMINDER_DELAY:
            raise TimingError(f'"{part}" must be from 1 hour to 30 days')
        if delays and delay <= delays[-1]:
            raise TimingError(f'"{part}" must come after the reminder before it')
        delays.append(delay)
    return tuple(delays)


def add_after(start: datetime, after: After, zone: ZoneInfo | None = None) -> datetime:
    """`start` moved on by `after` on the local calendar, keeping the wall-clock time."""
    local = _aware(start, "start").astimezone(zone or ZoneInfo(DEFAULT_TIMEZONE))
    if after.unit == "m":
        day = add_months(local.date(), after.count)
    else:
        day = local.date() + timedelta(days=after.count * (7 if after.unit == "w" else 1))
    moved = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=local.tzinfo)
    return _to_utc(moved)


def add_months(day: date, months: int) -> date:
    """The same day of the month `months` later, or that month's last day when it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def parse_at(
    text: str, zone: ZoneInfo | None = None, time_of_day: time = DEFAULT_TIME_OF_DAY
) -> datetime:
    """ "2027-03-01" (10:00 local that day) or "2027-03-01T09:30+00:00"; aware, in UTC."""
    value = text.strip()
    if not value.isascii() or not value:
        raise TimingError(_at_form(text))
    if DATE_ONLY.fullmatch(value):
        day = _date(value, text)
        local = datetime.combine(day, time_of_day, tzinfo=zone or ZoneInfo(DEFAULT_TIMEZONE))
        return _to_utc(local)
    moment = _datetime(value, text)
    if moment.tzinfo is None:
        raise TimingError(
            f'--at "{text}" has no UTC offset: add one (+00:00, +01:00 or Z), '
            "or give a date alone for 10:00 that day"
        )
    return moment.astimezone(UTC)


def _date(value: str, text: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise TimingError(f'--at "{text}" is not a date in the calendar') from None


def _datetime(value: str, text: str) -> datetime:
    if "T" not in value.upper() and " " not in value:
        raise TimingError(_at_form(text))
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise TimingError(_at_form(text)) from None


def _at_form(text: str) -> str:
    return (
        "--at must be a date (2027-03-01) or a time with its UTC offset "
        f'(2027-03-01T09:30+00:00), not "{text}"'
    )


def _to_utc(local: datetime) -> datetime:
    """A local wall time to UTC (fold 0: the first of a repeated hour; a skipped one comes out
    on the far side of the gap)."""
    return local.astimezone(UTC)


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, not a naive one")
    return moment
