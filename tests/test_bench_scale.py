"""`bench.scale` run tiny: the seeded database holds what it says (answers topped up as
check-ins of real baselines, two timeline entries an answer, inbox rows for the newest, cohorts
of the sizes named), the bytes a turn add up table by table and fall within the issue's 300 once
retention has passed, and the whole section runs and passes its checks. Numbers, not speed.
Runs on SQLite, and on PostgreSQL when DIBOT_DATABASE_URL names it."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench import scale
from flows.loader import load_flow
from storage.database import make_engine
from storage.models import Answer, Assessment, Cohort, CohortMember, table

answers, assessments = table(Answer), table(Assessment)
cohorts, members = table(Cohort), table(CohortMember)


def _postgresql() -> str | None:
    url = os.environ.get("DIBOT_DATABASE_URL")
    return url if url and make_url(url).get_backend_name() == "postgresql" else None


def test_the_seeded_database_holds_what_it_says(database_url: str) -> None:
    seeded = scale.seed(database_url, load_flow(), respondents=40, answers=4000)

    assert seeded.respondents == 40
    assert seeded.answers >= 4000
    assert seeded.timeline == 2 * seeded.answers  # in and out, for every answer
    assert seeded.inbox == seeded.answers // scale.INBOX_SHARE
    assert seeded.database_bytes > 0
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            sizes = {
                str(name): int(count)
                for name, count in conn.execute(
                    sa.select(cohorts.c.name, sa.func.count(members.c.respondent_id))
                    .join(members, members.c.cohort_id == cohorts.c.id)
                    .where(cohorts.c.name.like("Scale cohort %"))
                    .group_by(cohorts.c.name)
                )
            }
            assert sizes == {f"Scale cohort {size}": 40 for size in scale.COHORT_SIZES}
            copies = conn.execute(
                sa.select(assessments.c.id, assessments.c.baseline_id).where(
                    assessments.c.baseline_id.is_not(None), assessments.c.kind == "checkin"
                )
            ).all()
            assert copies
            for copy, baseline in copies[:20]:
                asked = [
                    conn.execute(
                        sa.select(answers.c.question, answers.c.option)
                        .where(answers.c.assessment_id == held)
                        .order_by(answers.c.question)
                    ).all()
                    for held in (copy, baseline)
                ]
                assert asked[0], copy
                if (
                    conn.execute(  # a copy re-asks its baseline; the demo's own check-ins differ
                        sa.select(answers.c.provider_message_id).where(
                            answers.c.assessment_id == copy
                        )
                    ).scalar()
                    is None
                ):
                    assert asked[0] == asked[1]
    finally:
        engine.dispose()


def test_the_bytes_a_turn_leaves_add_up_and_fall_once_retention_has_passed(
    database_url: str,
) -> None:
    measured = scale.bytes_per_turn(database_url, load_flow(), 400)

    assert measured.turns == 400
    assert 0 < measured.after_retention < measured.kept
    assert sum(measured.by_table.values()) == pytest.approx(measured.after_retention, abs=1)
    assert set(measured.by_table) >= {"answers", "timeline", "conversations"}
    assert "inbox" not in measured.by_table  # the replies kept for duplicates are gone
    if make_url(database_url).get_backend_name() == "sqlite":
        assert measured.after_retention <= scale.BYTES_GOAL


@pytest.mark.timeout(2400)  # a dozen child processes a database; minutes on a busy machine
def test_the_section_runs_tiny_and_its_checks_hold() -> None:
    postgresql_url = _postgresql()
    section = scale.section(
        postgresql_url=postgresql_url, respondents=30, answers=3000, turns=40, byte_turns=200
    )

    assert section.key == "scale"
    assert section.ok, section.markdown
    assert "FAILED" not in section.markdown
    databases = ["SQLite"] + (["PostgreSQL"] if postgresql_url else [])
    assert list(section.raw) == databases
    assert len(section.goals) == 4 * len(databases)
    for database in databases:
        raw = section.raw[database]
        seeded, work = raw["seeded"], raw["seeded_work"]
        assert seeded["answers"] >= 3000
        assert work["export"]["rows"] == seeded["answers"]  # the export wrote every answer
        assert work["cohort_export"]["rows"] > 0
        assert raw["empty"]["export"]["rows"] == 0
        assert work["turns"] == raw["empty"]["turns"] > 0
        assert set(work["pages"]) == set(raw["empty"]["pages"])
        assert all(seconds > 0 for seconds in work["pages"].values())
    assert "| goal | target | measured | met | why not |" in section.markdown


def test_the_command_explains_itself(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        scale.main(["--help"])
    assert done.value.code == 0
    assert "--respondents" in capsys.readouterr().out
    assert scale.main(["--respondents", "0"]) == 2
