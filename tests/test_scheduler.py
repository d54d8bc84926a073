"""The scheduler's reminders, and several schedulers at once: a resident who goes quiet
part-way is reminded after each configured delay (2 and 5 days), never a third time, afresh
after they write, never in quiet hours, never while opted out or in a follow-up thread; two or
more schedulers running together never invite a check-in or send a reminder twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from flows.model import Flow
from outreach.scheduler import SchedulerReport, SchedulerSettings, run_due
from outreach.timing import parse_reminders
from storage.database import make_engine
from storage.models import Checkin, Conversation, FollowUpThread, table
from tests.test_checkins import QUIET, URN, Town, new_town

REMINDERS = SchedulerSettings(
    quiet=QUIET, reminders=parse_reminders("2d,5d"), timezone="Europe/London"
)
MONDAY = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)  # GMT
LEAD = "Your digital skills check is waiting: reply with a number to carry on, or STOP to end."


@pytest.fixture(name="town")
def town_fixture(engine: sa.Engine, flow: Flow) -> Town:
    return new_town(engine, flow, MONDAY)


def part_way(town: Town, urn: str = URN, at: datetime = MONDAY) -> None:
    """Agreed, chose the quick check, answered two questions: asked question 3."""
    town.clock.at = at
    town.say(urn, "Hi", "1", "1", "5", "5")


def reminders(town: Town) -> list[str]:
    return [row.text for row in town.outbox("reminder")]


def test_reminded_after_two_days_and_five_never_a_third(town: Town) -> None:
    part_way(town)

    counts = [
        town.run(MONDAY + delay, REMINDERS).reminders_queued
        for delay in (
            timedelta(days=1),
            timedelta(days=2),  # Wednesday: the first
            timedelta(days=2, hours=1),
            timedelta(days=4),
            timedelta(days=5),  # Saturday: the second
            timedelta(days=8),
            timedelta(days=29),
        )
    ]

    assert counts == [0, 1, 0, 0, 1, 0, 0]
    first, second = reminders(town)
    assert first == second
    assert first.splitlines()[0].startswith(LEAD + " 3/22 ")
    conversation = town.rows(Conversation)[0]
    assert conversation.reminders_sent == 2


def test_writing_again_starts_the_count_afresh(town: Town) -> None:
    part_way(town)
    town.run(MONDAY + timedelta(days=2), REMINDERS)
    town.clock.at = MONDAY + timedelta(days=3)
    (answered,) = town.say(URN, "4")  # the answer to the reminder's question
    assert "4/22" in answered.replies[0].text

    counts = [
        town.run(MONDAY + timedelta(days=3) + delay, REMINDERS).reminders_queued
        for delay in (timedelta(days=1), timedelta(days=2), timedelta(days=5))
    ]

    assert counts == [0, 1, 1]
    assert [text.splitlines()[0][len(LEAD) + 1 :][:5] for text in reminders(town)] == [
        "3/22 ",
        "4/22 ",
        "4/22 ",
    ]


def test_a_reminder_due_in_quiet_hours_waits_until_morning(town: Town) -> None:
    """Due at 21:00 on a Saturday (two days after 21:00 Thursday): held over Sunday, which
    quiet days leave out, to 09:00 on Monday."""
    part_way(town, at=datetime(2027, 3, 4, 21, 0, tzinfo=UTC))

    held = [
        town.run(at, REMINDERS)
        for at in (
            datetime(2027, 3, 6, 21, 0, tzinfo=UTC),
            datetime(2027, 3, 7, 12, 0, tzinfo=UTC),
        )
    ]
    monday = town.run(datetime(2027, 3, 8, 9, 0, tzinfo=UTC), REMINDERS)

    assert [report.reminders_queued for report in held] == [0, 0]
    assert {report.quiet_until for report in held} == {datetime(2027, 3, 8, 9, 0, tzinfo=UTC)}
    assert monday.reminders_queued == 1


def test_a_reminder_due_on_the_spring_clock_change_goes_at_nine_bst_on_monday(
    town: Town,
) -> None:
    """Quiet since 10:00 GMT on Friday 26 March 2027: two days on is Sunday 28 March, when the
    clocks go forward and no text may go; the reminder goes at 09:00 BST (08:00 UTC) Monday."""
    part_way(town, at=datetime(2027, 3, 26, 10, 0, tzinfo=UTC))

    sunday = town.run(datetime(2027, 3, 28, 10, 0, tzinfo=UTC), REMINDERS)
    before_nine = town.run(datetime(2027, 3, 29, 7, 59, tzinfo=UTC), REMINDERS)
    at_nine = town.run(datetime(2027, 3, 29, 8, 0, tzinfo=UTC), REMINDERS)

    assert sunday.quiet_until == before_nine.quiet_until == datetime(2027, 3, 29, 8, 0, tzinfo=UTC)
    assert (sunday.reminders_queued, before_nine.reminders_queued) == (0, 0)
    assert at_nine.reminders_queued == 1
    (reminder,) = town.outbox("reminder")
    assert reminder.next_attempt_at == datetime(2027, 3, 29, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("then", ["STOP", "finish", "thread", "terminal"])
def test_no_reminder_for_someone_opted_out_finished_in_a_thread_or_unreachable(
    town: Town, then: str
) -> None:
    urn = "terminal:local" if then == "terminal" else URN
    part_way(town, urn)
    if then == "STOP":
        town.say(urn, "STOP")
    elif then == "finish":
        town.say(urn, "5", *["5"] * 5)
        for _ in range(7):
            town.say(urn, "2", "4")
        assert town.assessments(urn)[-1].completed_at is not None
    elif then == "thread":
        respondent = town.respondent_id(urn)
        with town.engine.begin() as conn:
            conn.execute(
                sa.insert(table(FollowUpThread)).values(
                    respondent_id=respondent,
                    opened_by="A. Worker",
                    opened_at=MONDAY,
                    closes_at=MONDAY + timedelta(days=30),
                )
            )

    report = town.run(MONDAY + timedelta(days=2), REMINDERS)

    assert report.reminders_queued == 0
    assert reminders(town) == []


def test_no_reminders_when_none_are_configured(town: Town) -> None:
    part_way(town)
    none = SchedulerSettings(quiet=QUIET, reminders=(), timezone="Europe/London")

    assert town.run(MONDAY + timedelta(days=6), none).reminders_queued == 0


# --- several schedulers at once ------------------------------------------------------------

RESIDENTS = 40
CHECKINS = 12
SCHEDULERS = 4


def run_together(town: Town, at: datetime, settings: SchedulerSettings) -> list[SchedulerReport]:
    """`SCHEDULERS` threads calling `run_due` at the same moment, each with its own engine
    (as separate worker processes have)."""
    barrier = threading.Barrier(SCHEDULERS)
    reports: list[SchedulerReport] = []
    errors: list[BaseException] = []
    engines = [make_engine(town.engine.url) for _ in range(SCHEDULERS)]

    def scheduler(engine: sa.Engine) -> None:
        try:
            barrier.wait(timeout=30)
            reports.append(run_due(engine, town.flow, settings, at))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=scheduler, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for engine in engines:
        engine.dispose()
    assert errors == []
    assert len(reports) == SCHEDULERS
    return reports


def test_schedulers_running_together_never_invite_or_remind_twice(town: Town) -> None:
    """Every round, each check-in due is invited once and each reminder due queued once, by
    whichever scheduler locks it first."""
    checkin_phones = [f"07700 900{n:03d}" for n in range(400, 400 + CHECKINS)]
    for phone in checkin_phones:
        urn = "tel:+44" + phone.replace(" ", "")[1:]
        town.clock.at = MONDAY - timedelta(days=90)
        town.baseline(urn)
        town.schedule(phone=phone, after=None, at="2027-03-01T10:00+00:00")
    quiet_ones = [f"tel:+447700900{n:03d}" for n in range(500, 500 + RESIDENTS)]
    for urn in quiet_ones:
        part_way(town, urn, at=MONDAY - timedelta(days=2))

    first = run_together(town, MONDAY, REMINDERS)
    second = run_together(town, MONDAY + timedelta(days=3), REMINDERS)

    assert sum(report.checkins_invited for report in first) == CHECKINS
    assert sum(report.reminders_queued for report in first) == RESIDENTS
    assert sum(report.checkins_invited for report in second) == 0
    assert sum(report.reminders_queued for report in second) == RESIDENTS
    assert len(town.outbox("checkin")) == CHECKINS
    assert len(town.outbox("reminder")) == 2 * RESIDENTS
    assert {row.status for row in town.rows(Checkin)} == {"invited"}
    per_respondent: dict[int, int] = {}
    for row in town.outbox("reminder"):
        per_respondent[row.respondent_id] = per_respondent.get(row.respondent_id, 0) + 1
    assert set(per_respondent.values()) == {2}
