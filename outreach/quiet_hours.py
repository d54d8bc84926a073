"""Quiet hours: the earliest moment at or after `now` that a text may be sent. Nothing is dropped.

A policy is a daily send window in local time ("09:00-20:00": from 09:00 up to, not
including, 20:00), the days it opens ("mon-fri", "mon,tue,sat", "fri-mon"), and a time zone
(Europe/London unless told). An empty window means no quiet hours: any time of an allowed
day. A window may cross midnight ("20:00-08:00"); it then belongs to the day it opens on, so
with "fri" it runs from Friday 20:00 to Saturday 08:00.

Whether an instant is allowed is decided by the wall clock in the zone, so the UK's clock
changes fall out of the same rule: on the last Sunday of March (01:00 UTC) the hour 01:00-02:00
never happens, and a window opening at 01:30 opens at 02:00 BST; on the last Sunday of October
(01:00 UTC) the hour 01:00-02:00 happens twice, and is allowed (or not) both times.

`next_send_time` is pure: it never reads the clock. It takes and returns aware datetimes, the
result in UTC; it is `now` itself when `now` is allowed, and otherwise on a whole minute (when a
window opens, or when the clocks change).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Europe/London"
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY_DAY = frozenset(range(7))
ONE_DAY = timedelta(days=1)
SEARCH_DAYS = 16
"""Far enough to find the next opening past a week in which the window fell into the hour
that the spring clock change skips."""
WINDOW = re.compile(r"(\d{2}):(\d{2})\s*[-–]\s*(\d{2}):(\d{2})", re.ASCII)
ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*", re.ASCII)


class QuietHoursError(ValueError):
    """A quiet-hours setting that cannot be read; the message names the setting and the fix."""


@dataclass(frozen=True)
class SendWindow:
    """From `opens` up to `closes`, both counted from local midnight; `closes` may be 24:00,
    and is before `opens` when the window crosses midnight."""

    opens: timedelta
    closes: timedelta

    @property
    def crosses_midnight(self) -> bool:
        return self.closes < self.opens


@dataclass(frozen=True)
class QuietHours:
    window: SendWindow | None
    """None: any time of an allowed day."""
    days: frozenset[int]
    """Days a window opens on, 0 being Monday."""
    zone: ZoneInfo

    def allows(self, instant: datetime) -> bool:
        """Whether a text may go at `instant` (aware), by the wall clock in the zone."""
        local = _aware(instant, "instant").astimezone(self.zone)
        day, wall = local.date(), _since_midnight(local)
        window = self.window
        if window is None:
            return day.weekday() in self.days
        if not window.crosses_midnight:
            return day.weekday() in self.days and window.opens <= wall < window.closes
        opened_today = wall >= window.opens and day.weekday() in self.days
        opened_yesterday = wall < window.closes and (day - ONE_DAY).weekday() in self.days
        return opened_today or opened_yesterday


NO_QUIET_HOURS = QuietHours(None, EVERY_DAY, ZoneInfo(DEFAULT_TIMEZONE))


def parse_quiet_hours(
    window: str = "", days: str = "", timezone: str = DEFAULT_TIMEZONE
) -> QuietHours:
    """The policy from its settings; empty `window` or `days` means no limit on that."""
    return QuietHours(parse_window(window), parse_days(days), parse_timezone(timezone))


def parse_window(text: str) -> SendWindow | None:
    """ "09:00-20:00" (or with an en dash); "" is None, no quiet hours."""
    if not text.strip():
        return None
    match = WINDOW.fullmatch(text.strip())
    if match is None:
        raise QuietHoursError(f'quiet_hours must look like 09:00-20:00, not "{text}"')
    hours_a, minutes_a, hours_b, minutes_b = (int(group) for group in match.groups())
    opens = _time_of_day(hours_a, minutes_a, text, end=False)
    closes = _time_of_day(hours_b, minutes_b, text, end=True)
    if opens == closes:
        raise QuietHoursError(
            f'quiet_hours "{text}" opens and closes at the same time: '
            "leave it empty for no quiet hours"
        )
    return SendWindow(opens, closes)


def parse_days(text: str) -> frozenset[int]:
    """ "mon-fri", "mon,tue,sat", "fri-mon" (wrapping), "mon-wed,sat"; "" is every day."""
    if not text.strip():
        return EVERY_DAY
    days: set[int] = set()
    for part in text.lower().split(","):
        first, dash, last = part.partition("-")
        start = _day(first, text)
        end = _day(last, text) if dash else start
        days.update((start + step) % 7 for step in range((end - start) % 7 + 1))
    return frozenset(days)


def parse_timezone(name: str) -> ZoneInfo:
    problem = f'quiet_hours timezone "{name}" is not a time zone name such as Europe/London'
    if not ZONE_NAME.fullmatch(name.strip()):
        raise QuietHoursError(problem)
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise QuietHoursError(problem) from None


def next_send_time(policy: QuietHours, now: datetime) -> datetime:
    """The earliest instant at or after `now` (aware) when `policy` allows a text, in UTC."""
    start = _aware(now, "now").astimezone(UTC)
    if policy.allows(start):
        return start
    for candidate in sorted(set(_openings(policy, start)) | set(_clock_changes(policy, start))):
        if candidate > start and policy.allows(candidate):
            return candidate
    raise QuietHoursError(f"quiet hours allow no time in the {SEARCH_DAYS} days after {start}")


def _openings(policy: QuietHours, start: datetime) -> Iterator[datetime]:
    """Each instant the wall clock reads a window's opening time on an allowed day: once, or
    twice when the clocks go back over it (or, when the clocks skip it, a later instant)."""
    opens = policy.window.opens if policy.window else timedelta(0)
    first = start.astimezone(policy.zone).date() - ONE_DAY
    for offset in range(SEARCH_DAYS + 1):
        day = first + offset * ONE_DAY
        if day.weekday() in policy.days:
            for fold in (0, 1):
                yield _local(day, opens, policy.zone, fold).astimezone(UTC)


def _clock_changes(policy: QuietHours, start: datetime) -> Iterator[datetime]:
    """The instants the zone's UTC offset changes: the wall clock jumps, maybe into a window."""
    for offset in range(SEARCH_DAYS + 1):
        before, after = start + offset * ONE_DAY, start + (offset + 1) * ONE_DAY
        if before.astimezone(policy.zone).utcoffset() != after.astimezone(policy.zone).utcoffset():
            yield _first_instant_with_offset_of(after, before, policy.zone)


def _first_instant_with_offset_of(later: datetime, earlier: datetime, zone: ZoneInfo) -> datetime:
    """Bisection over whole seconds for where the offset at `earlier` becomes that at `later`."""
    target = later.astimezone(zone).utcoffset()
    low, high = math.floor(earlier.timestamp()), math.ceil(later.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _local(day: date, since_midnight: timedelta, zone: ZoneInfo, fold: int) -> datetime:
    return (datetime.combine(day, time(0)) + since_midnight).replace(tzinfo=zone, fold=fold)


def _since_midnight(local: datetime) -> timedelta:
    return timedelta(
        hours=local.hour,
        minutes=local.minute,
        seconds=local.second,
        microseconds=local.microsecond,
    )


def _time_of_day(hours: int, minutes: int, text: str, *, end: bool) -> timedelta:
    """Minutes since midnight; 24:00 only as a window's end."""
    is_end_of_day = end and (hours, minutes) == (24, 0)
    if not is_end_of_day and (hours > 23 or minutes > 59):
        raise QuietHoursError(f'quiet_hours "{text}": {hours:02}:{minutes:02} is not a time of day')
    return timedelta(hours=hours, minutes=minutes)


def _day(name: str, text: str) -> int:
    key = name.strip()
    if key not in DAY_NAMES:
        raise QuietHoursError(
            f'quiet_days "{text}": "{key}" is not a day (mon, tue, wed, thu, fri, sat, sun); '
            "write them like mon-fri or mon,tue,sat"
        )
    return DAY_NAMES.index(key)


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (in UTC), not a naive one")
    return moment
