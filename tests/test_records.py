"""`impact.records.iter_people`: what reports and exports read, from residents who really
answered (through the turn handler), scoped to a team or cohort, named by a stable pseudonym
unless identified, in batches that give the same people as one read."""

from __future__ import annotations

from datetime import UTC, timedelta

import sqlalchemy as sa

from flows.model import Flow
from impact.records import Person, Selection, iter_people
from storage.database import read_only
from storage.models import Cohort, Respondent, Team, table
from tests.test_checkins import PHONE, URN, new_town

OTHER_PHONE = "07700 900124"
OTHER_URN = "tel:+447700900124"


def people(engine: sa.Engine, selection: Selection, **options: object) -> list[Person]:
    with engine.connect() as conn:
        return list(iter_people(read_only(conn), selection, **options))  # type: ignore[arg-type]


def test_a_baseline_and_check_in_come_back_with_their_answers(
    engine: sa.Engine, flow: Flow
) -> None:
    town = new_town(engine, flow)
    town.enrol(PHONE, "Spring drive")
    town.baseline(URN, skip_topic="CM", skill="2")
    done = town.schedule(after="3m")
    town.run(done.due_at)
    town.say(URN, "1", *["5"] * 8, *["4", "4"] * 6)

    (person,) = people(engine, Selection())

    assert person.label.startswith("R")
    assert len(person.label) == 14
    assert "7700" not in person.label
    assert person.cohorts == ("Spring drive",)
    assert (person.consented, person.opted_out, person.unreachable) == (True, False, False)
    assert person.enrolled_at == town.rows(Respondent)[0].created_at
    baseline, checkin = person.assessments
    assert (baseline.kind, baseline.mode, checkin.kind, checkin.baseline_id) == (
        "baseline",
        "quick",
        "checkin",
        baseline.id,
    )
    assert baseline.options()["GS.skill"] == 2
    assert "CM.skill" not in baseline.options()  # skipped: kept as an answer without an option
    assert [a.option for a in baseline.answers if a.question == "CM.skill"] == [None]
    assert checkin.options()["GS.skill"] == 4
    for answer in (*baseline.answers, *checkin.answers):  # read as UTC on either database
        assert answer.answered_at.tzinfo is UTC
        assert answer.channel == "sms"
    assert {a.answered_at for a in baseline.answers} == {baseline.started_at}  # one clock tick
    assert checkin.completed_at is not None
    assert checkin.completed_at - baseline.completed_at > timedelta(days=80)  # type: ignore[operator]


def test_the_pseudonym_is_stable_and_identifying_needs_asking(
    engine: sa.Engine, flow: Flow
) -> None:
    town = new_town(engine, flow)
    town.enrol(PHONE, "Spring drive")
    town.enrol(OTHER_PHONE, "Autumn drive")

    first = people(engine, Selection())
    again = people(engine, Selection())
    named = people(engine, Selection(), identified=True)

    assert [p.label for p in first] == [p.label for p in again]
    assert len({p.label for p in first}) == 2
    assert [p.label for p in named] == [URN, OTHER_URN]


def test_a_cohort_or_a_team_selects_only_its_people(engine: sa.Engine, flow: Flow) -> None:
    town = new_town(engine, flow)
    town.enrol(PHONE, "Spring drive")
    town.enrol(OTHER_PHONE, "Autumn drive")
    spring = next(c.id for c in town.rows(Cohort) if c.name == "Spring drive")
    other = town.respondent_id(OTHER_URN)
    with engine.begin() as conn:
        team = conn.execute(
            sa.insert(table(Team))
            .values(name="North", created_at=town.clock())
            .returning(table(Team).c.id)
        ).scalar_one()
        conn.execute(
            sa.update(table(Respondent)).where(table(Respondent).c.id == other).values(team_id=team)
        )

    in_spring = people(engine, Selection(cohort_id=spring), identified=True)
    in_north = people(engine, Selection(team_id=team), identified=True)
    north_in_spring = people(engine, Selection(team_id=team, cohort_id=spring))

    assert [p.label for p in in_spring] == [URN]
    assert [p.label for p in in_north] == [OTHER_URN]
    assert in_north[0].cohorts == ()  # the cohort belongs to no team: not the team's to see
    assert north_in_spring == []


def test_reading_in_small_batches_gives_the_same_people(engine: sa.Engine, flow: Flow) -> None:
    town = new_town(engine, flow)
    phones = [f"07700 900{n:03d}" for n in range(130, 137)]
    for phone in phones:
        town.enrol(phone, "Spring drive")
    town.baseline("tel:+447700900131", skill="3")

    whole = people(engine, Selection())
    batched = people(engine, Selection(), batch=2)

    assert batched == whole
    assert len(whole) == len(phones)
    assert [len(p.assessments) for p in whole] == [0, 1, 0, 0, 0, 0, 0]


def test_read_for_a_report_the_options_are_those_of_the_answers(
    engine: sa.Engine, flow: Flow
) -> None:
    """`answers=False` (what a report reads): the same people and assessments, each with the
    options chosen and how many answers it holds, skips counted, not the answers themselves."""
    town = new_town(engine, flow)
    town.enrol(PHONE, "Spring drive")
    town.enrol(OTHER_PHONE, "Spring drive")
    town.baseline(URN, skip_topic="CM", skill="2")
    town.say(OTHER_URN, "Hi", "1", "1", "1", "3")  # started a quick check: two answers so far

    whole = people(engine, Selection())
    options_only = people(engine, Selection(), answers=False, batch=1)

    assert [p.label for p in options_only] == [p.label for p in whole]
    for full, light in zip(whole, options_only, strict=True):
        assert len(light.assessments) == len(full.assessments) == 1
        (read, answered) = (light.assessments[0], full.assessments[0])
        assert read.answers == ()
        assert read.options() == answered.options()
        assert read.answer_count() == answered.answer_count() == len(answered.answers)
        assert (read.id, read.completed_at, read.kind) == (
            answered.id,
            answered.completed_at,
            answered.kind,
        )
    baseline = options_only[0].assessments[0]
    assert baseline.options()["GS.skill"] == 2
    assert "CM.skill" not in baseline.options()  # skipped: counted, no option
    started = options_only[1].assessments[0]
    assert (started.options(), started.answer_count()) == ({"BA01.access": 1, "BA02.access": 3}, 2)
