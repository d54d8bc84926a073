"""`dibot show`: an operator without the dashboard sees a resident's status, assessments, gains,
check-ins, open thread and messages, times in the council's zone, the number never whole; and
`dibot checkin` from the command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dibot.checkin_commands import gain_summary, resident_report
from flows.model import Flow
from outreach.phone import masked_urn
from storage.database import read_only
from storage.models import FollowUpThread, table
from tests.processes import TEST_KEY
from tests.test_checkins import PHONE, URN, Town, new_town
from tests.test_cli import dibot

LONDON = ZoneInfo("Europe/London")
MARCH = datetime(2027, 3, 2, 10, 0, tzinfo=UTC)


def report(town: Town, urn: str = URN, now: datetime | None = None) -> list[str]:
    with town.engine.connect() as conn:
        lines = resident_report(read_only(conn), town.flow, urn, LONDON, now or town.clock())
    assert lines is not None
    return lines


def section(lines: list[str], title: str) -> list[str]:
    """The lines under `title` (up to the next line that is not indented)."""
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    following = lines[start + 1 :]
    end = next((i for i, line in enumerate(following) if not line.startswith("  ")), None)
    return following[:end]


def test_a_residents_story_from_enrolment_to_check_in(engine: sa.Engine, flow: Flow) -> None:
    town = new_town(engine, flow, MARCH)
    town.enrol(PHONE, "Spring drive")
    town.baseline(URN, skip_topic="CM", skill="2")
    done = town.schedule(after="3m")
    town.run(done.due_at)  # 2 June, 10:00 BST
    town.say(URN, "1", *["5"] * 8)
    for skill in ("4", "4", "4", "4", "4", "1"):  # five better, one worse
        town.say(URN, skill, "4")
    town.clock.at = done.due_at + timedelta(days=1)
    town.schedule(after="6m", scheduled_by="B. Worker")

    lines = report(town)

    assert lines[0] == "resident 07700 900•••"
    assert not any("900123" in line or "7700900123" in line for line in lines)
    assert section(lines, "status:") == [
        "  language: en",
        "  consent: given 2027-03-02 10:00 GMT",
        "  opted out: no",
        "  unreachable: no",
        "  cohorts: Spring drive",
        "  enrolled 2027-03-02 10:00 GMT by A. Worker (public_task), cohort 'Spring drive'",
    ]
    baseline, checkin = section(lines, "assessments:")
    assert baseline.startswith("  #1 baseline, quick: started 2027-03-02 10:00 GMT, completed")
    assert checkin == (
        "  #2 check-in, quick: started 2027-06-02 10:00 BST, "
        "completed 2027-06-02 10:00 BST, follows #1"
    )
    assert section(lines, "gains:") == [
        "  #2 over #1: more confident with 5 things, less with 1, same 0 (mean +1.50 points)"
    ]
    assert section(lines, "check-ins:") == [
        "  invited 2027-06-02 10:00 BST (due 2027-06-02 10:00 BST, by A. Worker), following #1",
        "  scheduled for 2027-12-03 10:00 GMT (by B. Worker)",
    ]
    assert "follow-up thread: none open" in lines
    messages = section(lines, "timeline (Europe/London):")
    assert messages[0].startswith("  2027-03-02 10:00 GMT out invitation by A. Worker [pending]: ")
    (invitation,) = [line for line in messages if " out checkin " in line]
    assert invitation.startswith("  2027-06-02 10:00 BST out checkin [pending]: Hi, it's ")
    assert invitation.endswith(" / 1 Start now / 2 Not yet")


def test_an_open_thread_and_an_opt_out_are_shown(engine: sa.Engine, flow: Flow) -> None:
    town = new_town(engine, flow, MARCH)
    town.say(URN, "Hi", "1", "STOP")
    respondent = town.respondent_id(URN)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(table(FollowUpThread)).values(
                respondent_id=respondent,
                opened_by="A. Worker",
                opened_at=MARCH,
                closes_at=MARCH + timedelta(hours=72),
            )
        )

    lines = report(town)

    assert "  opted out: yes, 2027-03-02 10:00 GMT" in lines
    assert "  enrolled: never (they texted first)" in lines
    assert (
        "follow-up thread: open since 2027-03-02 10:00 GMT by A. Worker, "
        "closes 2027-03-05 10:00 GMT"
    ) in lines
    assert section(lines, "gains:") == ["  none yet (no finished check-in)"]


def test_no_one_with_that_number(engine: sa.Engine, flow: Flow) -> None:
    new_town(engine, flow, MARCH).say(URN, "Hi")
    with engine.connect() as conn:
        assert resident_report(conn, flow, "tel:+447700900999", LONDON, MARCH) is None


def test_numbers_are_masked() -> None:
    assert masked_urn("tel:+447700900123") == "07700 900•••"
    assert masked_urn("telegram:123456789") == "Telegram chat •••789"


def test_gains_count_better_worse_and_the_same(flow: Flow) -> None:
    before = {"GS.skill": 2, "CM.skill": 2, "HI.skill": 3}
    after = {"GS.skill": 4, "CM.skill": 1, "HI.skill": 3, "TR.skill": 5}

    assert gain_summary(flow, before, after) == (
        "more confident with 1 thing, less with 1, same 1 (mean +0.33 points)"
    )
    assert gain_summary(flow, before, {}) == "no skill answered both times"


def test_checkin_and_show_from_the_command_line(tmp_path: Path, database_url: str) -> None:
    settings = {
        "DIBOT_DATABASE_URL": database_url,
        "DIBOT_PRIVACY_ENCRYPTION_KEY": TEST_KEY,
        "DIBOT_OUTREACH_QUIET_HOURS": "",  # any time: the test does not depend on the clock
    }
    if database_url.startswith("sqlite"):
        del settings["DIBOT_PRIVACY_ENCRYPTION_KEY"]  # the key file beside the database
    enrolled = dibot(
        "enrol", "--phone", PHONE, "--cohort", "Spring drive", cwd=tmp_path, **settings
    )
    assert enrolled.returncode == 0, enrolled.stderr

    first = dibot(
        "checkin", "--phone", PHONE, "--after", "3m", "--by", "A. Worker", cwd=tmp_path, **settings
    )
    moved = dibot(
        "checkin",
        "--cohort",
        "Spring drive",
        "--at",
        "2099-01-04",
        "--by",
        "A. Worker",
        cwd=tmp_path,
        **settings,
    )
    unknown = dibot("checkin", "--phone", "07700 900999", "--after", "3m", cwd=tmp_path, **settings)
    both = dibot(
        "checkin", "--phone", PHONE, "--at", "2099-01-04", "--after", "3m", cwd=tmp_path, **settings
    )
    shown = dibot("show", "--phone", PHONE, cwd=tmp_path, **settings)
    nobody = dibot("show", "--phone", "07700 900999", cwd=tmp_path, **settings)

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("check-in scheduled for ")
    assert "not finished a first check yet" in first.stderr
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout == (
        "cohort 'Spring drive': 1 check-in due 2099-01-04 10:00 GMT (quiet hours: it goes at "
        "2099-01-05 00:00 GMT): 0 new, 1 moved\n"  # a Sunday, and quiet_days is mon-sat
    )
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "dibot: no resident has that number: enrol them first (dibot enrol --phone NUMBER)\n",
    )
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    assert shown.returncode == 0, shown.stderr
    assert "resident 07700 900•••" in shown.stdout
    assert "  scheduled for 2099-01-04 10:00 GMT (by A. Worker)" in shown.stdout
    assert nobody.returncode == 1
    for result in (first, moved, unknown, both, shown, nobody):
        assert "900123" not in result.stdout + result.stderr
        assert "900999" not in result.stdout + result.stderr
