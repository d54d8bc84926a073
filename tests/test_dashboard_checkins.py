"""The check-ins pages, through Flask's test client on a real database: a worker schedules their
cohort's check-ins (only their team's residents, and not those who opted out), an admin reaches
everyone in it; one resident's check-in scheduled, moved, never doubled; dates refused with the
GOV.UK Design System's messages; then the scheduler and the SMS sender run against the fake
Twilio and the page says what became of each: delivered, not delivered, refused, skipped and
why; keyset paging; and another team's ids (respondent, cohort, cursor) answer 404 everywhere."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from bot.messages import Inbound
from dibot.config import (
    Config,
    DatabaseConfig,
    OutreachConfig,
    ServerConfig,
    TwilioConfig,
    WebConfig,
)
from dibot.turns import TurnHandler
from dibot.web import create_app
from dibot.worker import run_worker
from flows.model import Flow
from outreach.quiet_hours import parse_quiet_hours
from outreach.scheduler import SchedulerSettings, run_due
from storage.models import AuditEntry, Checkin, Cohort, OutboxEntry, Respondent, table
from tests.dashboard_support import (
    SECRET,
    START,
    FakeNow,
    Staff,
    enrol_into_team,
    page_text,
    signed_in,
    submit,
)
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

checkins, cohorts, outbox = table(Checkin), table(Cohort), table(OutboxEntry)
respondents, audit = table(Respondent), table(AuditEntry)
COHORT = "Library drop-in"
PUBLIC_URL = "https://dibot.example.gov.uk"
FROM_NUMBER = "+447700900001"
QUIET = parse_quiet_hours("09:00-20:00", "mon-sat", "Europe/London")
SETTINGS = SchedulerSettings(quiet=QUIET, reminders=(), timezone="Europe/London")
THREE_MONTHS = datetime(2027, 3, 1, 11, 0, tzinfo=UTC)
"""Three months after START (11:00 GMT on Tuesday 1 December 2026): a Monday, 11am GMT."""
_sids = count(1)


def phone(n: int) -> str:
    return f"07700 900{n:03d}"


def urn(n: int) -> str:
    return f"tel:+447700900{n:03d}"


@dataclass
class StepClock:
    """The worker's clock: time moves only when the sender sleeps."""

    clock: FakeNow
    slept: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        return self.clock.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(timedelta(seconds=seconds))


@dataclass
class Council:
    """The dashboard, the residents' phones and the worker, on one fake clock."""

    app: Flask
    engine: sa.Engine
    flow: Flow
    clock: FakeNow
    staff: Staff
    handler: TurnHandler

    def say(self, n: int, *texts: str) -> None:
        for text in texts:
            self.handler.handle(
                channel="sms",
                message_id=f"SM{next(_sids):032d}",
                urn=urn(n),
                inbound=Inbound(text),
            )

    def baseline(self, n: int) -> None:
        """A finished quick check, every skill "willing to give it a go", interest "likely"."""
        self.say(n, "Hi", "1", "1", *["5"] * 8)
        for _ in range(7):
            self.say(n, "2", "4")

    def enrol(self, n: int, team_id: int | None, cohort: str | None = COHORT) -> int:
        return enrol_into_team(self.engine, self.flow, phone(n), team_id, cohort=cohort)

    def cohort_id(self, name: str = COHORT) -> int:
        with self.engine.connect() as conn:
            found: int = conn.execute(
                sa.select(cohorts.c.id).where(cohorts.c.name == name)
            ).scalar_one()
            return found

    def set_cohort_team(self, team_id: int, name: str = COHORT) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(cohorts).where(cohorts.c.name == name).values(team_id=team_id))

    def checkin_rows(self) -> list[sa.Row[tuple[object, ...]]]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(checkins).order_by(checkins.c.id)))


def council_config(database_url: str, twilio: FakeTwilio | None = None) -> Config:
    return Config(
        server=ServerConfig(host="127.0.0.1"),
        database=DatabaseConfig(url=database_url),
        web=WebConfig(secret_key=SECRET),
        outreach=OutreachConfig(reminders=""),
        twilio=TwilioConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            from_number=FROM_NUMBER,
            public_url=PUBLIC_URL,
            api_base_url=twilio.base_url,
        )
        if twilio is not None
        else TwilioConfig(),
    )


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def council(
    database_url: str,
    engine: sa.Engine,
    flow: Flow,
    clock: FakeNow,
    staff: Staff,
    twilio: FakeTwilio,
) -> Iterator[Council]:
    app = create_app(council_config(database_url, twilio), flow=flow, now=clock)
    yield Council(app, engine, flow, clock, staff, TurnHandler(engine, flow, clock=clock))
    app.extensions["dibot"].engine.dispose()


def north(council: Council) -> int:
    return council.staff.north_worker.team_id


def south(council: Council) -> int:
    return council.staff.south_worker.team_id


def schedule_cohort(client: FlaskClient, cohort_id: int, **data: str) -> str:
    """Post the cohort form, follow the redirect; the page's words."""
    response = submit(
        client,
        f"/cohorts/{cohort_id}/checkins",
        data,
        form_page=f"/checkins?cohort={cohort_id}",
    )
    assert response.status_code == 302, page_text(response)
    return page_text(client.get(response.headers["Location"]))


def schedule_one(client: FlaskClient, respondent_id: int, **data: str) -> str:
    path = f"/respondents/{respondent_id}/checkins"
    response = submit(client, path, data)
    assert response.status_code == 302, page_text(response)
    return page_text(client.get(response.headers["Location"]))


# --- scheduling a cohort ---------------------------------------------------------------------


def test_a_worker_schedules_their_cohort_and_an_admin_reaches_everyone(council: Council) -> None:
    done = council.enrol(1, north(council))
    never_finished = council.enrol(2, north(council))
    opted_out = council.enrol(3, north(council))
    theirs = council.enrol(4, south(council))  # another team's resident in the same cohort
    council.set_cohort_team(north(council))
    council.baseline(1)
    council.say(2, "Hi", "1", "1", "5")
    council.say(3, "STOP")
    cohort_id = council.cohort_id()
    worker = signed_in(council.app, council.staff.north_worker)

    form = page_text(worker.get(f"/checkins?cohort={cohort_id}"))
    said = schedule_cohort(worker, cohort_id, when="3m")

    assert "When should the check-ins for Library drop-in be?" in form
    assert "In 1 month In 3 months In 6 months In 12 months On a date" in form
    assert (
        "Library drop-in: Scheduled 2 check-ins for 1 March 2027 at 11am; 1 with no completed "
        "baseline yet: skipped when due unless they finish one by then; 1 not scheduled: "
        "1 opted out"
    ) in said
    scheduled = {row.respondent_id for row in council.checkin_rows()}
    assert scheduled == {done, never_finished}
    assert opted_out not in scheduled
    assert {row.scheduled_by for row in council.checkin_rows()} == {
        council.staff.north_worker.email
    }
    assert "Due (2)" in said
    assert "07700 900•••" in said
    assert "07700 900001" not in said
    assert "It will be skipped unless they finish a first assessment before then" in said

    admin = signed_in(council.app, council.staff.north_admin)
    again = schedule_cohort(admin, cohort_id, when="3m")

    assert "Scheduled 1 check-in for 1 March 2027 at 11am" in again
    assert "2 already had a check-in due then (not changed)" in again
    scheduled = {row.respondent_id for row in council.checkin_rows()}
    assert scheduled == {done, never_finished, theirs}
    assert len(council.checkin_rows()) == 3
    with council.engine.connect() as conn:
        lines = conn.execute(
            sa.select(audit.c.staff_id, audit.c.detail).where(audit.c.action == "schedule check-in")
        ).all()
    assert [line.staff_id for line in lines] == [
        council.staff.north_worker.id,
        council.staff.north_admin.id,
    ]
    assert "Library drop-in" in lines[0].detail


def test_a_cohort_on_a_date_and_the_errors_of_dates(council: Council) -> None:
    council.enrol(1, north(council))
    council.set_cohort_team(north(council))
    cohort_id = council.cohort_id()
    worker = signed_in(council.app, council.staff.north_worker)
    path, page = f"/cohorts/{cohort_id}/checkins", f"/checkins?cohort={cohort_id}"

    def refused(**data: str) -> str:
        response = submit(worker, path, data, form_page=page)
        assert response.status_code == 200
        return page_text(response)

    assert "There is a problem Select when the check-in should be" in refused()
    assert "Enter the date of the check-in" in refused(when="date")
    assert "The date of the check-in must be a real date" in refused(
        when="date", day="31", month="2", year="2027"
    )
    assert "The date of the check-in must be in the future" in refused(
        when="date", day="30", month="11", year="2026"
    )
    assert "The date of the check-in must be on or before 1 December 2036" in refused(
        when="date", day="1", month="1", year="9999"
    )
    assert "The date of the check-in must include a month" in refused(
        when="date", day="3", year="2027"
    )
    assert "Year must include 4 numbers" in refused(when="date", day="3", month="3", year="27")
    assert "The date of the check-in must be a real date" in refused(
        when="date", day="٣", month="3", year="2027"
    )
    assert "The date of the check-in must be a real date" in refused(
        when="date", day="3", month="003", year="2027"
    )
    assert "The date of the check-in must be a real date" in refused(
        when="date", day="-1", month="3", year="2027"
    )
    assert "Select when the check-in should be" in refused(when="99m")
    assert "Select when the check-in should be" in refused(when="3m" * 5000)
    assert council.checkin_rows() == []
    assert "Error: Check-ins" in submit(worker, path, {}, form_page=page).get_data(True)

    said = schedule_cohort(worker, cohort_id, when="date", day="3", month="3", year="2027")

    assert "Scheduled 1 check-in for 3 March 2027 at 10am" in said
    (row,) = council.checkin_rows()
    assert row.due_at == datetime(2027, 3, 3, 10, 0, tzinfo=UTC)


def test_quiet_hours_are_said_when_a_date_falls_in_them(council: Council) -> None:
    council.enrol(1, north(council))
    council.set_cohort_team(north(council))
    worker = signed_in(council.app, council.staff.north_worker)

    said = schedule_cohort(  # a Sunday: quiet_days is mon-sat
        worker, council.cohort_id(), when="date", day="7", month="3", year="2027"
    )

    assert "(quiet hours: it goes 8 March 2027 at 9am)" in said
    assert "Quiet hours hold it until 8 March 2027 at 9am" in said


# --- one resident ----------------------------------------------------------------------------


def test_one_resident_scheduled_then_never_doubled_then_moved(council: Council) -> None:
    resident = council.enrol(1, north(council), cohort=None)
    council.baseline(1)
    worker = signed_in(council.app, council.staff.north_worker)

    first_look = page_text(worker.get(f"/respondents/{resident}/checkins"))
    first = schedule_one(worker, resident, when="3m")
    twice = schedule_one(worker, resident, when="3m")
    moved = schedule_one(worker, resident, when="date", day="1", month="6", year="2027")

    assert "Check-ins for 07700 900•••" in first_look
    assert "In 1 month In 3 months In 6 months In 12 months On a date" in first_look
    assert "None yet." in first_look
    assert "Scheduled a check-in for 1 March 2027 at 11am" in first
    assert "They already have a check-in due 1 March 2027 at 11am: nothing changed" in twice
    assert "Their check-in has moved from 1 March 2027 at 11am to 1 June 2027 at 10am" in moved
    (row,) = council.checkin_rows()
    assert row.due_at == datetime(2027, 6, 1, 9, 0, tzinfo=UTC)  # 10am BST
    assert "They already have a check-in due 1 June 2027 at 10am" in moved
    assert "07700 900001" not in moved


def test_one_who_opted_out_is_refused_and_told_why(council: Council) -> None:
    resident = council.enrol(1, north(council), cohort=None)
    council.baseline(1)
    worker = signed_in(council.app, council.staff.north_worker)
    page = page_text(worker.get(f"/respondents/{resident}/checkins"))
    council.say(1, "STOP")

    response = submit(
        worker,
        f"/respondents/{resident}/checkins",
        {"when": "3m"},
        form_page=f"/respondents/{resident}/checkins",
    )

    assert "Schedule the check-in" in page
    assert response.status_code == 200
    assert "They opted out: no check-in can go to them unless they text START" in page_text(
        response
    )
    assert council.checkin_rows() == []
    after = page_text(worker.get(f"/respondents/{resident}/checkins"))
    assert "They opted out (texted STOP): no check-in can go to them" in after
    assert "Schedule the check-in" not in after


# --- what became of them ---------------------------------------------------------------------


def status_callback(
    client: FlaskClient, twilio: FakeTwilio, sid: str, status: str, code: int | None = None
) -> None:
    url, params, signature = twilio.status_callback(sid, status, code)
    assert url == PUBLIC_URL + "/webhooks/twilio/status"
    response = client.post(
        "/webhooks/twilio/status", data=params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 204


def test_the_page_says_what_became_of_each_check_in(council: Council, twilio: FakeTwilio) -> None:
    delivered, lost, refused, no_baseline, stopped = 1, 2, 3, 4, 5
    ids = {n: council.enrol(n, north(council)) for n in (1, 2, 3, 4, 5)}
    council.set_cohort_team(north(council))
    run_worker(council.app.extensions["dibot"], once=True, clock=StepClock(council.clock))
    assert len(twilio.messages) == 5  # the invitations to take part
    council.clock.at = START  # (the sender's pacing moved it on a little)
    for n in (delivered, lost, refused, stopped):
        council.baseline(n)
    twilio.invalid_number("+447700900003")  # since: the number no longer takes texts
    worker = signed_in(council.app, council.staff.north_worker)
    schedule_cohort(worker, council.cohort_id(), when="3m")
    council.say(stopped, "STOP")

    council.clock.at = THREE_MONTHS
    report = run_due(council.engine, council.flow, SETTINGS, council.clock())
    run_worker(council.app.extensions["dibot"], once=True, clock=StepClock(council.clock))
    sids = {message.to: message.sid for message in twilio.messages[5:]}
    webhooks = council.app.test_client()
    status_callback(webhooks, twilio, sids["+447700900001"], "delivered")
    status_callback(webhooks, twilio, sids["+447700900002"], "undelivered", 30003)

    council.say(delivered, "1", *["5"] * 8)  # they start the check-in and answer it all
    for _ in range(7):
        council.say(delivered, "3", "4")

    assert (report.checkins_invited, report.checkins_skipped) == (3, 2)
    worker = signed_in(council.app, council.staff.north_worker)  # a new day, a new session
    sent = page_text(worker.get("/checkins?state=sent"))
    failed = page_text(worker.get("/checkins?state=failed"))
    skipped = page_text(worker.get("/checkins?state=skipped"))
    due = page_text(worker.get("/checkins"))

    assert "Due (0) Sent (1) Failed (2) Skipped (2)" in sent
    assert (
        "1 March 2027 at 11am Delivered Delivered to their phone. They answered it 1 March 2027 "
        "at 11am"
    ) in sent
    assert (sent + failed).count("They answered it") == 1  # only the one who did
    assert (
        "1 March 2027 at 11am Not delivered Not delivered: their phone was off or out of "
        "signal (error 30003)" in failed
    )
    assert "Failed Not sent: Twilio refused the message (HTTP 400, error 21211)" in failed
    assert "+447700900003" not in failed
    assert "07700 900003" not in failed
    assert "Skipped No baseline to follow: they had not finished a first assessment" in skipped
    assert "Skipped They opted out (texted STOP)" in skipped
    assert "Due: 0 check-ins None." in due
    one = page_text(worker.get(f"/respondents/{ids[delivered]}/checkins"))
    assert "Delivered Delivered to their phone" in one
    assert f'href="/respondents/{ids[refused]}"' in worker.get("/checkins?state=failed").get_data(
        True
    )
    sent_html = worker.get("/checkins?state=sent").get_data(True)
    assert f'href="/respondents/{ids[delivered]}"' in sent_html
    for not_sent in (lost, refused, stopped):  # failures and skips are never shown as sent
        assert f'href="/respondents/{ids[not_sent]}"' not in sent_html
    skipped_html = worker.get("/checkins?state=skipped").get_data(True)
    assert f'href="/respondents/{ids[no_baseline]}"' in skipped_html
    assert f'href="/respondents/{ids[stopped]}"' in skipped_html


def test_a_check_in_due_but_held_says_why(council: Council) -> None:
    resident = council.enrol(1, north(council), cohort=None)
    council.baseline(1)
    worker = signed_in(council.app, council.staff.north_worker)
    schedule_one(worker, resident, when="1m")

    council.clock.at = datetime(2027, 1, 2, 21, 0, tzinfo=UTC)  # after 20:00, a Saturday
    held = page_text(signed_in(council.app, council.staff.north_worker).get("/checkins"))
    council.clock.at = datetime(2027, 1, 4, 12, 0, tzinfo=UTC)  # Monday noon
    due_now = page_text(signed_in(council.app, council.staff.north_worker).get("/checkins"))

    assert "Held Quiet hours hold it until 4 January 2027 at 9am" in held
    assert "Due now Goes at the next run of the scheduler." in due_now


# --- paging ----------------------------------------------------------------------------------


def add_checkins(council: Council, respondent_ids: list[int], per: int, **values: object) -> None:
    rows = [
        {
            "respondent_id": rid,
            "cohort_id": None,
            "due_at": values.get("due_at", THREE_MONTHS),
            "status": values.get("status", "scheduled"),
            "skip_reason": values.get("skip_reason"),
            "scheduled_by": "A. Worker",
            "scheduled_at": START,
        }
        for rid in respondent_ids
        for _ in range(per)
    ]
    with council.engine.begin() as conn:
        conn.execute(sa.insert(checkins), rows)


def test_keyset_paging_fifty_at_a_time_in_order(council: Council) -> None:
    mine = [council.enrol(n, north(council), cohort=None) for n in range(1, 4)]
    theirs = council.enrol(9, south(council), cohort=None)
    add_checkins(council, mine, 40)  # 120 due, all at one time: the id breaks the tie
    add_checkins(council, [theirs], 30)
    worker = signed_in(council.app, council.staff.north_worker)

    pages, path, seen = [], "/checkins?state=due", []
    while path:
        response = worker.get(path)
        html = response.get_data(as_text=True)
        pages.append(page_text(response))
        seen += [int(m) for m in re.findall(r'href="/respondents/(\d+)"', html)]
        found = re.search(r'href="([^"]+)" rel="next"', html)
        path = found[1].replace("&amp;", "&") if found else ""

    assert len(pages) == 3
    assert "Due (120)" in pages[0]
    assert "Next 50" in pages[0]
    assert "Next 50" not in pages[2]
    assert "Back to the first 50" in pages[1]
    assert len(seen) == 120
    assert set(seen) == set(mine)
    first_ids = [
        int(m) for m in re.findall(r"after=(\d+)", worker.get("/checkins?state=due").get_data(True))
    ]
    with council.engine.connect() as conn:
        ordered = list(
            conn.execute(
                sa.select(checkins.c.id)
                .where(checkins.c.respondent_id.in_(mine))
                .order_by(checkins.c.due_at, checkins.c.id)
            ).scalars()
        )
    assert first_ids == [ordered[49]]
    admin = page_text(signed_in(council.app, council.staff.north_admin).get("/checkins"))
    assert "Due (150)" in admin  # every team's
    south_page = page_text(signed_in(council.app, council.staff.south_worker).get("/checkins"))
    assert "Due (30)" in south_page


def test_sent_ones_page_the_latest_first(council: Council) -> None:
    resident = council.enrol(1, north(council), cohort=None)
    # Three at each minute: the page ends in the middle of a tie (50 = 16 x 3 + 2).
    sent_at = [THREE_MONTHS + timedelta(minutes=n % 20) for n in range(60)]
    with council.engine.begin() as conn:
        conn.execute(
            sa.insert(checkins),
            [
                {
                    "respondent_id": resident,
                    "due_at": THREE_MONTHS,
                    "status": "invited",
                    "scheduled_by": "A. Worker",
                    "scheduled_at": START,
                    "invited_at": at,
                }
                for at in sent_at
            ],
        )
    worker = signed_in(council.app, council.staff.north_worker)

    first = worker.get("/checkins?state=sent").get_data(True)
    found = re.search(r'href="([^"]+)" rel="next"', first)
    assert found
    second = worker.get(found[1].replace("&amp;", "&")).get_data(True)

    times = re.findall(r"1 March 2027 at (11(?::\d\d)?am)", first + second)
    assert len(times) == 60
    assert times[0] == "11:19am"
    assert times[-1] == "11am"
    minutes = [int(t[3:5]) if ":" in t else 0 for t in times]
    assert minutes == sorted(minutes, reverse=True)
    assert all(minutes.count(minute) == 3 for minute in range(20))  # none lost, none twice
    assert "Sent; no delivery report yet" not in first  # no outbox row kept
    assert "Invitation queued; no record of its sending is kept" in page_text(
        worker.get("/checkins?state=sent")
    )


def test_ten_thousand_check_ins_stay_quick(council: Council) -> None:
    mine = [council.enrol(n, north(council), cohort=None) for n in range(1, 11)]
    add_checkins(council, mine, 500, status="skipped", skip_reason="opted out")
    add_checkins(council, mine, 500)
    admin = signed_in(council.app, council.staff.north_admin)

    started = time.perf_counter()
    response = admin.get("/checkins?state=skipped")
    took = time.perf_counter() - started

    text = page_text(response)
    assert "Due (5000) Sent (0) Failed (0) Skipped (5000)" in text
    assert text.count("They opted out (texted STOP)") == 50
    assert took < 3.0, took


# --- who may see what ------------------------------------------------------------------------


def test_another_teams_ids_answer_404_on_every_route(council: Council) -> None:
    resident = council.enrol(1, north(council))
    council.set_cohort_team(north(council))
    council.baseline(1)
    cohort_id = council.cohort_id()
    worker = signed_in(council.app, council.staff.north_worker)
    schedule_one(worker, resident, when="3m")
    (row,) = council.checkin_rows()
    south_worker = signed_in(council.app, council.staff.south_worker)
    token_page = "/checkins"

    assert south_worker.get(f"/respondents/{resident}/checkins").status_code == 404
    assert (
        submit(
            south_worker, f"/respondents/{resident}/checkins", {"when": "3m"}, form_page=token_page
        ).status_code
        == 404
    )
    assert (
        submit(
            south_worker, f"/cohorts/{cohort_id}/checkins", {"when": "3m"}, form_page=token_page
        ).status_code
        == 404
    )
    assert south_worker.get(f"/checkins?cohort={cohort_id}").status_code == 404
    assert south_worker.get(f"/checkins?state=due&after={row.id}").status_code == 404
    south_page = page_text(south_worker.get("/checkins"))
    assert "Due (0)" in south_page
    assert "There are no cohorts yet" in south_page
    for odd in (
        "/checkins?after=abc",
        "/checkins?after=-1",
        "/checkins?state=everything",
        "/checkins?cohort=99999999",
        "/checkins?after=99999999999999999999",
        "/respondents/99999/checkins",
        "/respondents/-1/checkins",
    ):
        assert worker.get(odd).status_code == 404, odd
    assert len(council.checkin_rows()) == 1
    assert council.checkin_rows()[0].scheduled_by == council.staff.north_worker.email


def test_signed_out_and_forged_requests_change_nothing(council: Council) -> None:
    resident = council.enrol(1, north(council))
    cohort_id = council.cohort_id()
    anyone = council.app.test_client()
    anyone.environ_base["wsgi.url_scheme"] = "https"
    worker = signed_in(council.app, council.staff.north_worker)

    assert anyone.get("/checkins").status_code == 302
    assert anyone.get(f"/respondents/{resident}/checkins").status_code == 302
    forged = worker.post(f"/respondents/{resident}/checkins", data={"when": "3m"})
    forged_cohort = worker.post(f"/cohorts/{cohort_id}/checkins", data={"when": "3m"})

    assert forged.status_code == 400
    assert forged_cohort.status_code == 400
    assert council.checkin_rows() == []


def test_viewing_is_audited(council: Council) -> None:
    resident = council.enrol(1, north(council))
    worker = signed_in(council.app, council.staff.north_worker)

    worker.get("/checkins")
    worker.get(f"/respondents/{resident}/checkins")

    with council.engine.connect() as conn:
        lines = conn.execute(
            sa.select(audit.c.action, audit.c.respondent_id)
            .where(audit.c.staff_id == council.staff.north_worker.id)
            .order_by(audit.c.id)
        ).all()
    assert [tuple(line) for line in lines if line.action == "view check-ins"] == [
        ("view check-ins", None),
        ("view check-ins", resident),
    ]
