"""Quiet hours: a text due when it may not go waits for the next allowed minute, never dropped.

The dates sit around the UK's clock changes in 2027: BST begins on Sunday 28 March at 01:00
UTC (01:00 GMT becomes 02:00 BST) and ends on Sunday 31 October at 01:00 UTC (02:00 BST
becomes 01:00 GMT).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.quiet_hours import (
    DAY_NAMES,
    EVERY_DAY,
    QuietHours,
    QuietHoursError,
    SendWindow,
    next_send_time,
    parse_days,
    parse_quiet_hours,
    parse_timezone,
    parse_window,
)

LONDON = ZoneInfo("Europe/London")
SPRING_FORWARD = datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
FALL_BACK = datetime(2027, 10, 31, 1, 0, tzinfo=UTC)
ONE_MINUTE = timedelta(minutes=1)


def utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() == timedelta(0)
    return moment


def test_the_clock_changes_are_where_these_tests_expect_them() -> None:
    assert (SPRING_FORWARD - ONE_MINUTE).astimezone(LONDON).strftime("%H:%M %Z") == "00:59 GMT"
    assert SPRING_FORWARD.astimezone(LONDON).strftime("%a %H:%M %Z") == "Sun 02:00 BST"
    assert (FALL_BACK - ONE_MINUTE).astimezone(LONDON).strftime("%H:%M %Z") == "01:59 BST"
    assert FALL_BACK.astimezone(LONDON).strftime("%a %H:%M %Z") == "Sun 01:00 GMT"


# Reading the settings.


def test_a_window_a_set_of_days_and_a_zone_make_a_policy() -> None:
    policy = parse_quiet_hours("09:00-20:00", "mon-fri", "Europe/London")
    assert policy == QuietHours(
        SendWindow(timedelta(hours=9), timedelta(hours=20)), frozenset(range(5)), LONDON
    )


def test_empty_settings_mean_no_quiet_hours_every_day_in_london() -> None:
    assert parse_quiet_hours() == QuietHours(None, EVERY_DAY, LONDON)
    assert parse_window("  ") is None
    assert parse_days("") == EVERY_DAY


@pytest.mark.parametrize(
    ("text", "opens", "closes"),
    [
        ("09:00-20:00", "09:00", "20:00"),
        (" 08:30 - 17:45 ", "08:30", "17:45"),
        ("09:00–20:00", "09:00", "20:00"),  # an en dash, as people write it
        ("00:00-24:00", "00:00", "24:00"),
        ("20:00-08:00", "20:00", "08:00"),
        ("22:00-00:00", "22:00", "00:00"),
    ],
)
def test_windows(text: str, opens: str, closes: str) -> None:
    window = parse_window(text)
    assert window is not None
    assert (_hhmm(window.opens), _hhmm(window.closes)) == (opens, closes)
    assert window.crosses_midnight == (window.closes < window.opens)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9-20", 'quiet_hours must look like 09:00-20:00, not "9-20"'),
        ("9:00-20:00", "quiet_hours must look like 09:00-20:00"),
        ("09:00", "quiet_hours must look like 09:00-20:00"),
        ("09:00-20:00-21:00", "quiet_hours must look like 09:00-20:00"),
        ("０９:００-20:00", "quiet_hours must look like 09:00-20:00"),
        ("09.00-20.00", "quiet_hours must look like 09:00-20:00"),
        ("25:00-26:00", 'quiet_hours "25:00-26:00": 25:00 is not a time of day'),
        ("09:60-20:00", "09:60 is not a time of day"),
        ("24:00-08:00", "24:00 is not a time of day"),
        ("09:00-24:01", "24:01 is not a time of day"),
        ("09:00-09:00", "opens and closes at the same time: leave it empty"),
        ("00:00-00:00", "opens and closes at the same time"),
    ],
)
def test_a_window_that_cannot_be_read_is_refused_saying_how_to_write_it(
    text: str, problem: str
) -> None:
    with pytest.raises(QuietHoursError, match=problem.replace("(", r"\(")):
        parse_window(text)


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", "mon tue wed thu fri"),
        ("mon,tue,sat", "mon tue sat"),
        ("MON, Wed ,fri", "mon wed fri"),
        ("fri-mon", "mon fri sat sun"),
        ("mon-wed,sat", "mon tue wed sat"),
        ("sun", "sun"),
        ("mon-sun", "mon tue wed thu fri sat sun"),
    ],
)
def test_days(text: str, days: str) -> None:
    assert parse_days(text) == {DAY_NAMES.index(name) for name in days.split()}


@pytest.mark.parametrize(
    ("text", "bad"),
    [("monday", "monday"), ("mon-fry", "fry"), ("mon,,tue", ""), ("1-5", "1"), ("mon-", "")],
)
def test_a_day_that_is_not_one_is_named(text: str, bad: str) -> None:
    with pytest.raises(QuietHoursError, match=f'quiet_days "{text}": "{bad}" is not a day'):
        parse_days(text)


@pytest.mark.parametrize("name", ["Mars/Olympus", "europe/london", "../etc/passwd", "", "GMT+1"])
def test_a_zone_that_is_not_one_is_refused(name: str) -> None:
    with pytest.raises(QuietHoursError, match="not a time zone name such as Europe/London"):
        parse_timezone(name)


# When a text may go.

OFFICE = parse_quiet_hours("09:00-20:00")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # In the middle of the window: now.
        ("2027-03-29T12:34:56.789+00:00", "2027-03-29T12:34:56.789+00:00"),
        # Saturday night before the change (21:00 GMT): 09:00 BST on Sunday is 08:00 UTC.
        ("2027-03-27T21:00:00+00:00", "2027-03-28T08:00:00+00:00"),
        # Sunday 00:30 GMT, just before the change: the same.
        ("2027-03-28T00:30:00+00:00", "2027-03-28T08:00:00+00:00"),
        # 08:59 BST: one minute to wait; 09:00 BST is allowed at once.
        ("2027-03-28T07:59:00+00:00", "2027-03-28T08:00:00+00:00"),
        ("2027-03-28T08:00:00+00:00", "2027-03-28T08:00:00+00:00"),
        # 19:59:59 BST still goes; 20:00 BST waits for Monday 09:00 BST.
        ("2027-03-28T18:59:59+00:00", "2027-03-28T18:59:59+00:00"),
        ("2027-03-28T19:00:00+00:00", "2027-03-29T08:00:00+00:00"),
        # Saturday 20:30 BST before the change back: 09:00 GMT on Sunday is 09:00 UTC.
        ("2027-10-30T19:30:00+00:00", "2027-10-31T09:00:00+00:00"),
        # Through the repeated hour: 01:30 BST, then 01:30 GMT, both wait for 09:00 GMT.
        ("2027-10-31T00:30:00+00:00", "2027-10-31T09:00:00+00:00"),
        ("2027-10-31T01:30:00+00:00", "2027-10-31T09:00:00+00:00"),
        # Sunday 20:00 GMT is 20:00 UTC: Monday 09:00 GMT.
        ("2027-10-31T20:00:00+00:00", "2027-11-01T09:00:00+00:00"),
    ],
)
def test_office_hours_across_the_clock_changes(now: str, expected: str) -> None:
    assert next_send_time(OFFICE, utc(now)) == utc(expected)


def test_a_window_opening_in_the_skipped_hour_opens_when_the_clocks_jump_past_it() -> None:
    # 01:30 never happens on 28 March 2027: at 01:00 UTC the clocks read 02:00 BST.
    policy = parse_quiet_hours("01:30-03:00")
    assert next_send_time(policy, utc("2027-03-28T00:00:00+00:00")) == SPRING_FORWARD
    # On the day before and after, 01:30 GMT and 01:30 BST.
    assert next_send_time(policy, utc("2027-03-27T00:00:00+00:00")) == utc(
        "2027-03-27T01:30:00+00:00"
    )
    assert next_send_time(policy, utc("2027-03-28T02:00:00+00:00")) == utc(
        "2027-03-29T00:30:00+00:00"
    )


def test_a_window_inside_the_skipped_hour_waits_for_the_next_day() -> None:
    policy = parse_quiet_hours("01:10-01:50")
    assert next_send_time(policy, utc("2027-03-28T00:00:00+00:00")) == utc(
        "2027-03-29T00:10:00+00:00"  # 01:10 BST on Monday
    )


def test_the_repeated_hour_is_allowed_both_times_it_happens() -> None:
    policy = parse_quiet_hours("01:00-01:30")
    first_time = utc("2027-10-31T00:10:00+00:00")  # 01:10 BST
    assert next_send_time(policy, first_time) == first_time
    # 01:45 BST is outside; 15 minutes later the clocks go back to 01:00 GMT, inside again.
    assert next_send_time(policy, utc("2027-10-31T00:45:00+00:00")) == FALL_BACK
    assert next_send_time(policy, utc("2027-10-31T01:30:00+00:00")) == utc(
        "2027-11-01T01:00:00+00:00"
    )


def test_allowed_days_are_local_days() -> None:
    weekdays = parse_quiet_hours("09:00-20:00", "mon-fri")
    friday_evening = utc("2027-03-26T20:00:00+00:00")  # 20:00 GMT, Friday
    assert next_send_time(weekdays, friday_evening) == utc("2027-03-29T08:00:00+00:00")
    # 00:30 BST on Saturday 1 May is still Friday 23:30 in UTC, but Saturday in London.
    assert not parse_quiet_hours("", "fri").allows(utc("2027-04-30T23:30:00+00:00"))


def test_days_alone_allow_the_whole_of_each_local_day() -> None:
    weekend = parse_quiet_hours("", "sat,sun")
    assert next_send_time(weekend, utc("2027-03-26T09:00:00+00:00")) == utc(
        "2027-03-27T00:00:00+00:00"  # Saturday 00:00 GMT
    )
    assert next_send_time(weekend, utc("2027-10-29T09:00:00+00:00")) == utc(
        "2027-10-29T23:00:00+00:00"  # Saturday 00:00 BST
    )


def test_a_window_across_midnight_belongs_to_the_day_it_opens() -> None:
    friday_nights = parse_quiet_hours("20:00-08:00", "fri")
    assert friday_nights.allows(utc("2027-03-26T20:00:00+00:00"))  # Friday 20:00
    assert friday_nights.allows(utc("2027-03-27T07:59:00+00:00"))  # Saturday 07:59
    assert not friday_nights.allows(utc("2027-03-27T08:00:00+00:00"))
    assert not friday_nights.allows(utc("2027-03-26T07:00:00+00:00"))  # Friday morning
    saturday = utc("2027-03-27T09:00:00+00:00")
    assert next_send_time(friday_nights, saturday) == utc("2027-04-02T19:00:00+00:00")


def test_no_quiet_hours_send_at_once() -> None:
    now = utc("2027-10-31T01:23:45+00:00")
    assert next_send_time(parse_quiet_hours(), now) == now


def test_now_may_come_in_any_offset_and_the_answer_is_in_utc() -> None:
    in_bst = datetime(2027, 3, 28, 21, 0, tzinfo=LONDON)  # 20:00 UTC
    result = next_send_time(OFFICE, in_bst)
    assert result == utc("2027-03-29T08:00:00+00:00")
    assert result.tzinfo is UTC


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        next_send_time(OFFICE, datetime(2027, 3, 28, 12, 0))


# Properties: at or after now, allowed, and the first allowed minute.

ZONES = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
"""Lord Howe Island moves its clocks by half an hour; Kolkata never moves them."""


@st.composite
def policies(draw: st.DrawFn) -> QuietHours:
    days = draw(st.sets(st.sampled_from(DAY_NAMES), min_size=1))
    zone = draw(st.sampled_from(ZONES))
    if draw(st.booleans()):
        return parse_quiet_hours("", ",".join(sorted(days)), zone)
    opens = draw(st.integers(0, 24 * 60 - 1))
    closes = draw(st.integers(1, 24 * 60).filter(lambda m: m != opens))
    window = f"{opens // 60:02}:{opens % 60:02}-{closes // 60:02}:{closes % 60:02}"
    return parse_quiet_hours(window, ",".join(sorted(days)), zone)


NEAR_CLOCK_CHANGES = st.sampled_from([SPRING_FORWARD, FALL_BACK]).flatmap(
    lambda change: st.integers(-3 * 24 * 60 * 60, 3 * 24 * 60 * 60).map(
        lambda seconds: change + timedelta(seconds=seconds)
    )
)
ANY_TIME_IN_2027 = st.datetimes(
    min_value=datetime(2027, 1, 1),
    max_value=datetime(2027, 12, 31),
    timezones=st.just(UTC),
)


@settings(max_examples=60, deadline=None)
@given(policies(), st.one_of(NEAR_CLOCK_CHANGES, ANY_TIME_IN_2027))
def test_the_answer_is_the_first_allowed_minute_at_or_after_now(
    policy: QuietHours, now: datetime
) -> None:
    result = next_send_time(policy, now)
    assert result >= now
    assert result.tzinfo is UTC
    assert policy.allows(result)
    if result == now:
        return
    assert not policy.allows(now)
    assert (result.second, result.microsecond) == (0, 0)
    minute = _next_whole_minute(now)
    while minute < result:
        assert not policy.allows(minute), f"{minute} is allowed and earlier than {result}"
        minute += ONE_MINUTE


@settings(max_examples=200, deadline=None)
@given(policies(), st.one_of(NEAR_CLOCK_CHANGES, ANY_TIME_IN_2027))
def test_allowed_means_in_the_window_on_an_allowed_local_day(
    policy: QuietHours, now: datetime
) -> None:
    local = now.astimezone(policy.zone)
    wall = timedelta(hours=local.hour, minutes=local.minute, seconds=local.second)
    wall += timedelta(microseconds=local.microsecond)
    today, yesterday = local.weekday(), (local.weekday() - 1) % 7
    window = policy.window
    if window is None:
        expected = today in policy.days
    elif window.opens < window.closes:
        expected = today in policy.days and window.opens <= wall < window.closes
    else:
        expected = (today in policy.days and wall >= window.opens) or (
            yesterday in policy.days and wall < window.closes
        )
    assert policy.allows(now) == expected


def _next_whole_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + ONE_MINUTE


def _hhmm(since_midnight: timedelta) -> str:
    minutes = int(since_midnight.total_seconds()) // 60
    return f"{minutes // 60:02}:{minutes % 60:02}"
