"""Enrolment: an outreach worker adds a resident, who is invited by text within quiet hours,
recorded with who enrolled them and why, in a cohort; and whose reply carries on from there."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from dibot.turns import TurnHandler
from flows.loader import load_flow
from flows.model import Flow
from outreach.enrolment import ANOTHER_TEAM, Enrolled, EnrolmentError, EnrolmentRequest, enrol
from outreach.quiet_hours import QuietHours, parse_quiet_hours
from storage.models import Cohort, CohortMember, Enrolment, OutboxEntry, Team, table
from tests.people import urn_digest
from tests.processes import TEST_KEY
from tests.test_cli import dibot
from tests.turn_helpers import send

MONDAY_NOON = datetime(2027, 3, 22, 12, 0, tzinfo=UTC)
SUNDAY_MORNING = datetime(2027, 3, 28, 7, 30, tzinfo=UTC)  # the day the clocks go forward
URN = "tel:+447700900123"
QUIET = parse_quiet_hours("09:00-20:00", "mon-sat", "Europe/London")


def request(**changes: str | None) -> EnrolmentRequest:
    base: dict[str, str | None] = {
        "phone": "07700 900123",
        "telegram": None,
        "cohort": "Spring drive",
        "initiative": "Device loans",
        "language": None,
        "enrolled_by": "A. Worker",
        "lawful_basis": "public_task",
    }
    return EnrolmentRequest(**{**base, **changes})  # type: ignore[arg-type]


def enrolled(
    engine: sa.Engine,
    flow: Flow,
    at: datetime = MONDAY_NOON,
    quiet: QuietHours = QUIET,
    **changes: str | None,
) -> Enrolled:
    return enrol(engine, flow, request(**changes), quiet, at)


def rows(engine: sa.Engine, model: type) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table(model))))


def test_a_new_resident_is_enrolled_in_a_cohort_and_invited(engine: sa.Engine, flow: Flow) -> None:
    done = enrolled(engine, flow)

    assert (done.new, done.invited, done.send_after, done.cohort) == (
        True,
        True,
        None,
        "Spring drive",
    )
    (invitation,) = rows(engine, OutboxEntry)
    assert invitation.channel == "sms"
    assert invitation.status == "pending"
    assert invitation.text.startswith("Hi, this is ")
    (enrolment,) = rows(engine, Enrolment)
    assert (enrolment.enrolled_by, enrolment.lawful_basis) == ("A. Worker", "public_task")
    assert enrolment.invitation_id == invitation.id
    (cohort,) = rows(engine, Cohort)
    assert (cohort.name, cohort.initiative) == ("Spring drive", "Device loans")
    assert [member.respondent_id for member in rows(engine, CohortMember)] == [done.respondent_id]
    with engine.connect() as conn:
        digest = conn.execute(sa.text("SELECT urn_digest FROM respondents")).scalar_one()
    assert bytes(digest) == urn_digest(engine, URN)  # found as the SMS channel will find them


def test_their_reply_carries_on_from_the_invitation(engine: sa.Engine, flow: Flow) -> None:
    enrolled(engine, flow)
    handler = TurnHandler(engine, flow, clock=lambda: MONDAY_NOON)

    reply = send(handler, URN, "1").replies[0].text

    assert reply.startswith("Which check would you like?")


def test_an_invitation_waits_for_the_end_of_quiet_hours(engine: sa.Engine, flow: Flow) -> None:
    done = enrolled(engine, flow, at=SUNDAY_MORNING)

    monday_nine_bst = datetime(2027, 3, 29, 8, 0, tzinfo=UTC)
    assert done.send_after == monday_nine_bst
    (invitation,) = rows(engine, OutboxEntry)
    assert invitation.next_attempt_at == monday_nine_bst


def test_a_welsh_speaker_is_invited_in_welsh(engine: sa.Engine) -> None:
    welsh = load_flow(council={"council": "Cyngor Testshire"})

    enrolled(engine, welsh, language="cy")

    (invitation,) = rows(engine, OutboxEntry)
    assert invitation.text.startswith("Helo, Cyngor Testshire sydd yma.")


def test_someone_already_talking_is_enrolled_again_but_not_interrupted(
    engine: sa.Engine, flow: Flow
) -> None:
    enrolled(engine, flow)

    again = enrolled(engine, flow, cohort="Digital champions", phone="+44 7700 900123")

    assert (again.new, again.invited) == (False, False)
    assert again.not_invited_because == "they are already talking to dibot"
    assert len(rows(engine, OutboxEntry)) == 1
    assert len(rows(engine, CohortMember)) == 2  # in both cohorts
    assert len(rows(engine, Enrolment)) == 2


def test_someone_who_opted_out_is_never_invited(engine: sa.Engine, flow: Flow) -> None:
    handler = TurnHandler(engine, flow, clock=lambda: MONDAY_NOON)
    send(handler, URN, "STOP")

    done = enrolled(engine, flow)

    assert not done.invited
    assert done.not_invited_because == "they opted out (they can text START)"
    assert rows(engine, OutboxEntry) == []


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"phone": None}, "give --phone NUMBER (or --telegram CHAT_ID)"),
        ({"telegram": "@someone"}, "--telegram must be a Telegram chat id (digits)"),
        ({"language": "fr"}, "--language 'fr' is not offered (offered: en)"),
        ({"cohort": " "}, "--cohort must be 1 to 100 characters"),
    ],
)
def test_what_cannot_be_done_is_refused_by_name(
    engine: sa.Engine, flow: Flow, changes: dict[str, str | None], said: str
) -> None:
    with pytest.raises(EnrolmentError) as refused:
        enrol(engine, flow, request(**changes), QUIET, MONDAY_NOON)
    assert str(refused.value) == said
    assert rows(engine, Enrolment) == []


def test_dibot_enrol_from_the_command_line(tmp_path: Path, database_url: str) -> None:
    settings = {
        "DIBOT_DATABASE_URL": database_url,
        "DIBOT_PRIVACY_ENCRYPTION_KEY": TEST_KEY,
        "DIBOT_OUTREACH_QUIET_HOURS": "",  # any time: the test does not depend on the clock
    }
    if database_url.startswith("sqlite"):
        del settings["DIBOT_PRIVACY_ENCRYPTION_KEY"]  # the key file beside the database

    done = dibot(
        "enrol", "--phone", "07700 900123", "--cohort", "Spring drive", cwd=tmp_path, **settings
    )
    refused = dibot("enrol", "--phone", "12345", cwd=tmp_path, **settings)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "enrolled a new resident in cohort 'Spring drive'",
        "invitation queued: 1 message, 1 SMS segment",
    ]
    assert "900123" not in done.stdout + done.stderr
    assert refused.returncode == 2
    assert refused.stderr.startswith("dibot: --phone: ")
    assert "12345" not in refused.stderr


def test_who_enrolled_them_is_in_their_subject_access_export_and_goes_with_erasure(
    engine: sa.Engine, flow: Flow
) -> None:
    from storage.personal_data import erase, subject_access
    from storage.privacy import open_privacy

    enrolled(engine, flow)
    privacy = open_privacy(engine)

    held = subject_access(engine, privacy, URN, MONDAY_NOON)
    assert held is not None
    (enrolment,) = held["enrolments"]
    assert (enrolment["enrolled_by"], enrolment["cohort"]) == ("A. Worker", "Spring drive")
    assert [cohort["name"] for cohort in held["cohorts"]] == ["Spring drive"]

    erase(engine, privacy, URN)
    assert rows(engine, Enrolment) == []
    assert rows(engine, CohortMember) == []
    assert [cohort.name for cohort in rows(engine, Cohort)] == ["Spring drive"]  # not theirs


def test_someone_who_said_no_is_not_asked_again(engine: sa.Engine, flow: Flow) -> None:
    handler = TurnHandler(engine, flow, clock=lambda: MONDAY_NOON)
    send(handler, URN, "Hi")
    send(handler, URN, "2")  # No thanks

    done = enrolled(engine, flow)

    assert done.not_invited_because == "they said no to the check (they can text START)"
    assert rows(engine, OutboxEntry) == []


# --- teams (the dashboard; dibot enrol --team) ------------------------------------------------


def team(engine: sa.Engine, name: str) -> int:
    teams = table(Team)
    with engine.begin() as conn:
        found = conn.execute(sa.select(teams.c.id).where(teams.c.name == name)).scalar()
        if found is not None:
            return int(found)
        return int(
            conn.execute(
                sa.insert(teams).values(name=name, created_at=MONDAY_NOON).returning(teams.c.id)
            ).scalar_one()
        )


def team_of_resident(engine: sa.Engine) -> int | None:
    with engine.connect() as conn:
        found: int | None = conn.execute(sa.text("SELECT team_id FROM respondents")).scalar_one()
    return found


def test_an_enrolment_for_a_team_gives_them_to_it_and_makes_its_cohort_there(
    engine: sa.Engine, flow: Flow
) -> None:
    north = team(engine, "North")

    done = enrol(engine, flow, replace(request(), team_id=north), QUIET, MONDAY_NOON)

    assert done.invited
    assert team_of_resident(engine) == north
    (cohort,) = rows(engine, Cohort)
    assert cohort.team_id == north


def test_another_teams_resident_is_refused_and_nothing_is_written(
    engine: sa.Engine, flow: Flow
) -> None:
    north, south = team(engine, "North"), team(engine, "South")
    enrol(engine, flow, replace(request(), team_id=north), QUIET, MONDAY_NOON)
    before = [rows(engine, model) for model in (Enrolment, OutboxEntry, CohortMember, Cohort)]

    with pytest.raises(EnrolmentError) as refused:
        enrol(
            engine, flow, replace(request(cohort="South café"), team_id=south), QUIET, MONDAY_NOON
        )

    assert str(refused.value) == ANOTHER_TEAM
    assert "North" not in str(refused.value)
    assert [rows(engine, model) for model in (Enrolment, OutboxEntry, CohortMember, Cohort)] == (
        before
    )
    assert team_of_resident(engine) == north


def test_an_admin_moves_a_resident_to_the_team_they_enrol_for(
    engine: sa.Engine, flow: Flow
) -> None:
    north, south = team(engine, "North"), team(engine, "South")
    enrol(engine, flow, replace(request(), team_id=north), QUIET, MONDAY_NOON)

    again = enrol(
        engine,
        flow,
        replace(request(cohort="South café"), team_id=south, move_team=True),
        QUIET,
        MONDAY_NOON,
    )

    assert team_of_resident(engine) == south
    assert again.not_invited_because == "they are already talking to dibot"


def test_only_the_teams_own_cohorts_are_joined(engine: sa.Engine, flow: Flow) -> None:
    north, south = team(engine, "North"), team(engine, "South")
    enrol(engine, flow, replace(request(phone="07700 900456"), team_id=south), QUIET, MONDAY_NOON)

    with pytest.raises(EnrolmentError) as refused:
        enrol(engine, flow, replace(request(), team_id=north), QUIET, MONDAY_NOON)

    assert str(refused.value) == (
        "cohort 'Spring drive' is not this team's: pick one of the team's cohorts"
    )
    assert len(rows(engine, Enrolment)) == 1


def test_a_request_sent_twice_is_one_enrolment_with_the_first_ones_outcome(
    engine: sa.Engine, flow: Flow
) -> None:
    twice = replace(request(), repeat_window=timedelta(minutes=10))
    first = enrol(engine, flow, twice, QUIET, SUNDAY_MORNING)

    second = enrol(engine, flow, twice, QUIET, SUNDAY_MORNING + timedelta(seconds=2))
    later = enrol(engine, flow, twice, QUIET, SUNDAY_MORNING + timedelta(minutes=11))

    assert (first.repeated, second.repeated, later.repeated) == (False, True, False)
    assert (second.invited, second.send_after, second.invitation_segments) == (
        True,
        first.send_after,
        first.invitation_segments,
    )
    assert second.respondent_id == first.respondent_id
    assert later.not_invited_because == "they are already talking to dibot"
    assert len(rows(engine, Enrolment)) == 2  # the first, and the one 11 minutes later
    assert len(rows(engine, OutboxEntry)) == 1


def test_dibot_enrol_for_a_team(tmp_path: Path, database_url: str, engine: sa.Engine) -> None:
    settings = {
        "DIBOT_DATABASE_URL": database_url,
        "DIBOT_PRIVACY_ENCRYPTION_KEY": TEST_KEY,
        "DIBOT_OUTREACH_QUIET_HOURS": "",
    }
    if database_url.startswith("sqlite"):
        del settings["DIBOT_PRIVACY_ENCRYPTION_KEY"]
    north = team(engine, "North")

    done = dibot("enrol", "--phone", "07700 900123", "--team", "North", cwd=tmp_path, **settings)
    unknown = dibot(
        "enrol", "--phone", "07700 900456", "--team", "Nowhere", cwd=tmp_path, **settings
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "enrolled a new resident",
        "invitation queued: 1 message, 1 SMS segment",
    ]
    assert team_of_resident(engine) == north
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        "dibot: --team: no team is called 'Nowhere' (dibot staff add makes one)"
    )
    assert len(rows(engine, Enrolment)) == 1


def test_the_same_request_at_the_same_moment_twice_is_one_enrolment(
    engine: sa.Engine, flow: Flow
) -> None:
    twice = replace(request(), repeat_window=timedelta(minutes=10))
    start = threading.Barrier(2)

    def at_once() -> Enrolled:
        start.wait()
        return enrol(engine, flow, twice, QUIET, MONDAY_NOON)

    with ThreadPoolExecutor(2) as pool:
        done = sorted(pool.map(lambda _: at_once(), range(2)), key=lambda e: e.repeated)

    assert [(e.repeated, e.invited) for e in done] == [(False, True), (True, True)]
    assert len(rows(engine, Enrolment)) == 1
    assert len(rows(engine, OutboxEntry)) == 1
