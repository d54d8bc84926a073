"""Check-ins months later: `dibot checkin` schedules one for a resident or a cohort on the
council's calendar (clock changes included), and when it comes due the scheduler invites the
resident to answer again, in the same mode, only what their baseline answered, ending with what
changed since then; quiet hours hold it, and nothing is dropped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bot.messages import Inbound
from dibot.turns import TurnHandler, TurnResult
from flows.model import Flow
from outreach.checkins import (
    CheckinError,
    CheckinRequest,
    CheckinTarget,
    Scheduled,
    schedule_checkins,
    schedule_for,
)
from outreach.enrolment import EnrolmentRequest, enrol
from outreach.quiet_hours import parse_quiet_hours
from outreach.scheduler import SchedulerReport, SchedulerSettings, run_due
from storage.models import (
    Answer,
    Assessment,
    Checkin,
    Cohort,
    FollowUpThread,
    OutboxEntry,
    Respondent,
    table,
)
from tests.people import urn_digest

LONDON = ZoneInfo("Europe/London")
QUIET = parse_quiet_hours("09:00-20:00", "mon-sat", "Europe/London")
SETTINGS = SchedulerSettings(quiet=QUIET, reminders=(), timezone="Europe/London")
BASELINE_DAY = datetime(2027, 3, 2, 10, 0, tzinfo=UTC)  # a Tuesday in March, GMT
PHONE = "07700 900123"
URN = "tel:+447700900123"
_message_ids = count(1)


class Clock:
    """The time every turn and command sees; tests move it."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Town:
    """A database with residents texting on one clock."""

    engine: sa.Engine
    flow: Flow
    clock: Clock
    handler: TurnHandler

    def say(self, urn: str, *texts: str) -> list[TurnResult]:
        return [
            self.handler.handle(
                channel="sms",
                message_id=f"SM{next(_message_ids):032d}",
                urn=urn,
                inbound=Inbound(text),
            )
            for text in texts
        ]

    def baseline(self, urn: str, skip_topic: str | None = "CM", skill: str = "2") -> None:
        """A finished quick check: every basic there, no blockers, each topic's skill `skill`
        with interest "Likely", and `skip_topic`'s skill skipped (so not asked again)."""
        self.say(urn, "Hi", "1", "1", *["5"] * 8)
        for topic in ("GS", "CM", "HI", "TR", "PS", "SS", "AD"):
            if topic == skip_topic:
                self.say(urn, "skip", "skip")
            else:
                self.say(urn, skill, "4")
        assert self.assessments(urn)[-1].completed_at is not None

    def schedule(self, **request: str | None) -> Scheduled:
        fields: dict[str, str | None] = {
            "phone": PHONE,
            "cohort": None,
            "at": None,
            "after": "3m",
            "scheduled_by": "A. Worker",
        }
        fields.update(request)
        return schedule_checkins(self.engine, CheckinRequest(**fields), self.clock())  # type: ignore[arg-type]

    def run(self, at: datetime, settings: SchedulerSettings = SETTINGS) -> SchedulerReport:
        self.clock.at = at
        return run_due(self.engine, self.flow, settings, at)

    def assessments(self, urn: str) -> list[sa.Row[tuple[object, ...]]]:
        a = table(Assessment)
        respondent = self.respondent_id(urn)
        with self.engine.connect() as conn:
            return list(
                conn.execute(sa.select(a).where(a.c.respondent_id == respondent).order_by(a.c.id))
            )

    def respondent_id(self, urn: str) -> int:
        with self.engine.connect() as conn:
            found: int = conn.execute(
                sa.text("SELECT id FROM respondents WHERE urn_digest = :digest"),
                {"digest": urn_digest(self.engine, urn)},
            ).scalar_one()
            return found

    def rows(self, model: type) -> list[sa.Row[tuple[object, ...]]]:
        t = table(model)
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t).order_by(t.c.id)))

    def outbox(self, kind: str) -> list[sa.Row[tuple[object, ...]]]:
        return [row for row in self.rows(OutboxEntry) if row.kind == kind]

    def enrol(self, phone: str, cohort: str) -> None:
        request = EnrolmentRequest(
            phone=phone,
            telegram=None,
            cohort=cohort,
            initiative=None,
            language=None,
            enrolled_by="A. Worker",
            lawful_basis="public_task",
        )
        enrol(self.engine, self.flow, request, QUIET, self.clock())


def new_town(engine: sa.Engine, flow: Flow, at: datetime = BASELINE_DAY) -> Town:
    clock = Clock(at)
    return Town(engine, flow, clock, TurnHandler(engine, flow, clock=clock))


@pytest.fixture
def town(engine: sa.Engine, flow: Flow) -> Town:
    return new_town(engine, flow)


def local(moment: datetime) -> datetime:
    return moment.astimezone(LONDON)


# --- scheduling ----------------------------------------------------------------------------


def test_three_months_from_august_is_the_same_local_time_in_november(town: Town) -> None:
    """Across the autumn clock change (BST to GMT on the last Sunday of October)."""
    town.say(URN, "Hi")
    town.clock.at = datetime(2027, 8, 10, 13, 0, tzinfo=UTC)  # 14:00 BST

    done = town.schedule(after="3m")

    assert done.due_at == datetime(2027, 11, 10, 14, 0, tzinfo=UTC)  # 14:00 GMT
    assert (local(done.due_at).hour, local(done.due_at).minute) == (14, 0)
    (checkin,) = town.rows(Checkin)
    assert (checkin.status, checkin.due_at, checkin.scheduled_by) == (
        "scheduled",
        done.due_at,
        "A. Worker",
    )


def test_three_months_from_january_is_the_same_local_time_in_april(town: Town) -> None:
    """Across the spring clock change (GMT to BST on the last Sunday of March)."""
    town.say(URN, "Hi")
    town.clock.at = datetime(2027, 1, 15, 10, 0, tzinfo=UTC)  # 10:00 GMT

    done = town.schedule(after="3m")

    assert done.due_at == datetime(2027, 4, 15, 9, 0, tzinfo=UTC)  # 10:00 BST
    assert local(done.due_at).hour == 10


def test_a_date_means_ten_in_the_morning_council_time(town: Town) -> None:
    town.say(URN, "Hi")

    done = town.schedule(after=None, at="2027-07-01")

    assert local(done.due_at) == datetime(2027, 7, 1, 10, 0, tzinfo=LONDON)


def test_scheduling_again_moves_the_pending_check_in(town: Town) -> None:
    town.baseline(URN)
    first = town.schedule(after="3m")
    again = town.schedule(after="6m", scheduled_by="B. Worker")

    assert (first.added, first.moved, again.added, again.moved) == (1, 0, 0, 1)
    (checkin,) = town.rows(Checkin)
    assert checkin.due_at == again.due_at
    assert checkin.scheduled_by == "B. Worker"
    assert local(again.due_at).month == 9


@pytest.mark.parametrize(
    ("request_", "problem"),
    [
        ({"phone": "07700 900999"}, "no resident has that number"),
        ({"phone": None, "cohort": "Nobody"}, "no cohort named 'Nobody'"),
        ({"after": None, "at": "2027-03-01"}, "is not in the future"),
        ({"after": "3x"}, "--after must look like 3m"),
        ({"after": None, "at": "2027-06-01T10:00"}, "has no UTC offset"),
        ({"after": None}, "give one of --at"),
    ],
)
def test_what_cannot_be_scheduled_is_refused_and_nothing_is_written(
    town: Town, request_: dict[str, str | None], problem: str
) -> None:
    town.baseline(URN)

    with pytest.raises(CheckinError, match=problem) as refused:
        town.schedule(**request_)

    assert "900999" not in str(refused.value)
    assert town.rows(Checkin) == []


def test_someone_opted_out_cannot_be_scheduled(town: Town) -> None:
    town.baseline(URN)
    town.say(URN, "STOP")

    with pytest.raises(CheckinError, match="opted out"):
        town.schedule()


def test_every_member_of_a_cohort_is_scheduled(town: Town) -> None:
    members = [f"07700 900{n:03d}" for n in range(200, 205)]
    for phone in members:
        town.enrol(phone, "Spring drive")
    town.enrol("07700 900300", "Other drive")
    town.say("tel:+447700900204", "STOP")  # opted out: left out

    done = town.schedule(phone=None, cohort="Spring drive", after="3m")
    again = town.schedule(phone=None, cohort="Spring drive", after="4m")

    assert (done.added, done.moved, done.left_out, done.cohort) == (4, 0, 1, "Spring drive")
    assert done.without_baseline == 4  # invited, not yet answered
    assert (again.added, again.moved) == (0, 4)
    checkins = town.rows(Checkin)
    assert len(checkins) == 4
    assert {row.due_at for row in checkins} == {again.due_at}
    assert {row.cohort_id for row in checkins} != {None}


# --- invited when due ----------------------------------------------------------------------


def test_a_check_in_reasks_only_what_the_baseline_answered_and_says_what_changed(
    town: Town,
) -> None:
    town.baseline(URN, skip_topic="CM", skill="2")
    baseline = town.assessments(URN)[-1]
    done = town.schedule(after="3m")
    assert local(done.due_at) == datetime(2027, 6, 2, 10, 0, tzinfo=LONDON)

    early = town.run(done.due_at - timedelta(minutes=1))
    report = town.run(done.due_at)

    assert (early.checkins_invited, report.checkins_invited) == (0, 1)
    (invitation,) = town.outbox("checkin")
    assert invitation.text.splitlines()[0].endswith(
        "Time for your digital skills check-in: 20 questions, like last time."
    )
    assert invitation.next_attempt_at == done.due_at  # within quiet hours: at once
    (checkin,) = town.rows(Checkin)
    assert (checkin.status, checkin.baseline_id, checkin.outbox_id) == (
        "invited",
        baseline.id,
        invitation.id,
    )

    town.say(URN, "1", *["5"] * 8)
    for skill in ("4", "4", "4", "2", "2"):  # GS, HI, TR better; PS, SS the same
        town.say(URN, skill, "4")
    (*_, last) = town.say(URN, "3", "4")  # AD: better too

    assert last.replies[0].text.splitlines()[0] == (
        "You are more confident with 4 things since March 2027."
    )
    checkin_assessment = town.assessments(URN)[-1]
    assert (checkin_assessment.kind, checkin_assessment.baseline_id) == ("checkin", baseline.id)
    assert checkin_assessment.mode == baseline.mode == "quick"
    assert checkin_assessment.completed_at is not None
    asked = {
        row.question for row in town.rows(Answer) if row.assessment_id == checkin_assessment.id
    }
    answered_before = {
        row.question
        for row in town.rows(Answer)
        if row.assessment_id == baseline.id and row.option is not None
    }
    assert asked == answered_before
    assert not any(question.startswith("CM.") for question in asked)


def test_a_check_in_due_in_quiet_hours_waits_for_the_next_allowed_morning(town: Town) -> None:
    """Due at 21:00 on a Saturday, with texts allowed 09:00-20:00 Monday to Saturday: not on
    Saturday night, not on Sunday, but at 09:00 on Monday."""
    town.baseline(URN)
    town.schedule(after=None, at="2027-06-05T21:00+01:00")  # Saturday, BST

    saturday_night = town.run(datetime(2027, 6, 5, 20, 0, tzinfo=UTC))
    sunday_noon = town.run(datetime(2027, 6, 6, 11, 0, tzinfo=UTC))
    monday_early = town.run(datetime(2027, 6, 7, 7, 59, tzinfo=UTC))
    monday_nine = town.run(datetime(2027, 6, 7, 8, 0, tzinfo=UTC))  # 09:00 BST

    assert saturday_night.quiet_until == datetime(2027, 6, 7, 8, 0, tzinfo=UTC)
    assert sunday_noon.quiet_until == monday_early.quiet_until == saturday_night.quiet_until
    assert [r.checkins_invited for r in (saturday_night, sunday_noon, monday_early)] == [0, 0, 0]
    assert monday_nine.checkins_invited == 1
    (invitation,) = town.outbox("checkin")
    assert invitation.next_attempt_at == datetime(2027, 6, 7, 8, 0, tzinfo=UTC)


def test_someone_without_a_finished_baseline_is_skipped_with_the_reason(town: Town) -> None:
    town.say(URN, "Hi", "1", "1", "5")  # part-way: no finished baseline
    done = town.schedule(after="3m")
    assert done.without_baseline == 1

    report = town.run(done.due_at)

    assert (report.checkins_invited, report.checkins_skipped) == (0, 1)
    (checkin,) = town.rows(Checkin)
    assert (checkin.status, checkin.skip_reason) == (
        "skipped",
        "no finished baseline assessment to follow",
    )
    assert town.outbox("checkin") == []


def test_someone_who_opted_out_after_scheduling_is_skipped(town: Town) -> None:
    town.baseline(URN)
    done = town.schedule(after="3m")
    town.say(URN, "STOP")

    report = town.run(done.due_at)

    assert report.checkins_skipped == 1
    (checkin,) = town.rows(Checkin)
    assert (checkin.status, checkin.skip_reason) == ("skipped", "opted out")
    assert town.outbox("checkin") == []


def test_a_check_in_waits_while_a_follow_up_thread_is_open(town: Town) -> None:
    town.baseline(URN)
    done = town.schedule(after="3m")
    respondent = town.respondent_id(URN)
    with town.engine.begin() as conn:
        conn.execute(
            sa.insert(table(FollowUpThread)).values(
                respondent_id=respondent,
                opened_by="A. Worker",
                opened_at=done.due_at - timedelta(hours=1),
                closes_at=done.due_at + timedelta(hours=71),
            )
        )

    waiting = town.run(done.due_at)
    after_it_closes = town.run(done.due_at + timedelta(hours=72))

    assert (waiting.checkins_waiting, waiting.checkins_invited) == (1, 0)
    assert after_it_closes.checkins_invited == 1
    assert [row.status for row in town.rows(Checkin)] == ["invited"]


def test_an_unfinished_check_is_set_aside_for_the_check_in(town: Town) -> None:
    town.baseline(URN)
    town.say(URN, "restart", "1", "1", "5", "5")  # started again, part-way
    unfinished = town.assessments(URN)[-1]
    assert unfinished.completed_at is None
    done = town.schedule(after="3m")

    town.run(done.due_at)

    set_aside = town.assessments(URN)[-1]
    assert set_aside.id == unfinished.id
    assert set_aside.abandoned_at == done.due_at
    (checkin,) = town.rows(Checkin)
    assert checkin.baseline_id == town.assessments(URN)[0].id  # the finished one


def test_a_welsh_speakers_check_in_says_the_month_in_welsh(
    engine: sa.Engine,
) -> None:
    from flows.loader import load_flow

    town = new_town(engine, load_flow())  # English and Welsh
    town.say(URN, "Hi", "2", "1", "1", *["5"] * 8)  # Cymraeg, agree, quick
    for _ in range(7):
        town.say(URN, "2", "4")
    done = town.schedule(after="3m")
    town.run(done.due_at)

    town.say(URN, "1", *["5"] * 8)
    for _ in range(6):
        town.say(URN, "2", "4")
    (*_, last) = town.say(URN, "4", "4")

    assert "Mawrth 2027" in last.replies[0].text.splitlines()[0]


# --- the dashboard's variant: by id, within a scope ------------------------------------------


def by_id(town: Town, within: sa.ColumnElement[bool] | None = None, **target: object) -> Scheduled:
    fields: dict[str, object] = {
        "respondent_id": None,
        "cohort_id": None,
        "at": None,
        "after": "3m",
        "scheduled_by": "worker@north.example.gov.uk",
    }
    fields.update(target)
    with town.engine.begin() as conn:
        return schedule_for(conn, CheckinTarget(**fields), town.clock(), within=within)  # type: ignore[arg-type]


def test_by_id_only_those_within_the_scope_are_scheduled(town: Town) -> None:
    for n in range(200, 204):
        town.enrol(f"07700 900{n:03d}", "Spring drive")
    town.say("tel:+447700900203", "STOP")
    ids = [town.respondent_id(f"tel:+447700900{n:03d}") for n in range(200, 204)]
    respondents = table(Respondent)
    cohort_id = town.rows(Cohort)[0].id
    theirs = respondents.c.id != ids[1]  # as if the second were another team's

    done = by_id(town, within=theirs, cohort_id=cohort_id)
    everyone = by_id(town, cohort_id=cohort_id)

    assert (done.added, done.left_out, done.opted_out, done.unreachable) == (2, 1, 1, 0)
    assert (done.cohort, done.without_baseline) == ("Spring drive", 2)
    assert {row.respondent_id for row in town.rows(Checkin)} == {ids[0], ids[1], ids[2]}
    assert (everyone.added, everyone.moved, everyone.already, everyone.was_due) == (1, 2, 2, None)
    assert len(town.rows(Checkin)) == 3


def test_by_id_again_is_no_duplicate_and_a_new_time_moves_it(town: Town) -> None:
    town.baseline(URN)
    resident = town.respondent_id(URN)

    first = by_id(town, respondent_id=resident)
    same = by_id(town, respondent_id=resident, scheduled_by="someone@else.example")
    moved = by_id(town, respondent_id=resident, after=None, at="2027-09-01")

    assert (first.added, first.moved, first.already, first.without_baseline) == (1, 0, 0, 0)
    assert (same.added, same.moved, same.already) == (0, 1, 1)
    assert (moved.added, moved.moved, moved.already, moved.was_due) == (
        0,
        1,
        0,
        first.due_at,
    )
    (checkin,) = town.rows(Checkin)
    assert checkin.due_at == moved.due_at
    assert checkin.scheduled_by == "worker@north.example.gov.uk"


def test_by_id_refuses_who_cannot_be_reached_or_is_outside_the_scope(town: Town) -> None:
    town.baseline(URN)
    resident = town.respondent_id(URN)
    respondents = table(Respondent)

    with pytest.raises(CheckinError, match="there is no such resident"):
        by_id(town, within=respondents.c.id != resident, respondent_id=resident)
    with pytest.raises(CheckinError, match="there is no such cohort"):
        by_id(town, cohort_id=12345)
    with pytest.raises(CheckinError, match="beyond the calendar"):
        by_id(town, respondent_id=resident, after=None, at="9999-12-31T23:30-01:00")
    town.say(URN, "STOP")
    with pytest.raises(CheckinError, match="opted out"):
        by_id(town, respondent_id=resident)
    assert town.rows(Checkin) == []
