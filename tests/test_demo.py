"""`dibot demo`: synthetic residents a council can try every report on, checked from the database
with plain SQL and by replaying residents through the real engine, not through the generator."""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from bot.engine import CheckinPlan, invite_to_checkin, step
from bot.messages import Inbound
from bot.state import State
from dibot.cli import main
from flows.model import Flow
from impact.demo import REFUSED, DemoRefused, DemoSummary, demo_urn, make_demo
from outreach.phone import urn_for_phone
from storage.database import make_engine
from storage.migrate import upgrade
from storage.privacy import keys_of, load_privacy
from tests.dashboard_support import Staff, page_text, signed_in

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RESIDENTS = 300
COHORTS = [  # dated back from NOW: 275, 155 and 240 days
    ("Champions at the library", "Digital champions", date(2026, 4, 5), "South outreach"),
    ("Device loans spring 2026", "Device loans", date(2026, 3, 1), "North outreach"),
    ("Device loans summer 2026", "Device loans", date(2026, 6, 29), "North outreach"),
]


def demo(engine: sa.Engine, flow: Flow, **options: Any) -> DemoSummary:
    with engine.begin() as conn:
        return make_demo(conn, flow, now=NOW, **options)


def rows(engine: sa.Engine, sql: str, **parameters: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), parameters))


def scalar(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


@pytest.fixture
def demo_engine(engine: sa.Engine, flow: Flow) -> sa.Engine:
    demo(engine, flow)
    return engine


def test_the_demo_holds_residents_in_cohorts_under_two_initiatives(
    engine: sa.Engine, flow: Flow
) -> None:
    summary = demo(engine, flow)

    assert scalar(engine, "SELECT count(*) FROM respondents") == RESIDENTS
    assert summary.respondents == RESIDENTS
    found = rows(
        engine,
        "SELECT c.name, c.initiative, c.starts_on, t.name FROM cohorts c "
        "JOIN teams t ON t.id = c.team_id ORDER BY c.name",
    )
    assert [(r[0], r[1], r[2] if isinstance(r[2], date) else date.fromisoformat(r[2]), r[3])
            for r in found] == COHORTS  # fmt: skip
    members = dict(
        rows(
            engine,
            "SELECT c.name, count(*) FROM cohort_members m JOIN cohorts c ON c.id = m.cohort_id "
            "GROUP BY c.name",
        )
    )
    without = RESIDENTS - sum(members.values())
    assert 5 <= without <= 50, "a few residents in no cohort"
    assert min(members.values()) >= 50
    assert {(c.name, c.members) for c in summary.cohorts} == set(members.items())
    assert summary.without_cohort == without
    assert scalar(engine, "SELECT count(DISTINCT respondent_id) FROM cohort_members") == (
        RESIDENTS - without
    )
    # every resident enrolled by the demo on one lawful basis, with a team and a conversation
    enrolled = "SELECT enrolled_by, lawful_basis, count(*) FROM enrolments GROUP BY 1, 2"
    assert rows(engine, enrolled) == [("demo", "public_task", RESIDENTS)]
    assert scalar(engine, "SELECT count(*) FROM respondents WHERE team_id IS NULL") == 0
    assert scalar(engine, "SELECT count(*) FROM conversations") == RESIDENTS
    assert scalar(engine, "SELECT count(*) FROM outbox") == 0, "the demo sends nothing"

    baselines = rows(
        engine,
        "SELECT mode, completed_at IS NOT NULL, count(*) FROM assessments "
        "WHERE kind = 'baseline' GROUP BY 1, 2",
    )
    by = {(mode, bool(done)): n for mode, done, n in baselines}
    completed = by[("quick", True)] + by[("full", True)]
    assert by[("quick", True)] > by[("full", True)] > 50, "both modes, quick more often"
    assert 10 <= by.get(("quick", False), 0) + by.get(("full", False), 0) <= 60, "some stopped"
    checkins = scalar(engine, "SELECT count(*) FROM assessments WHERE kind = 'checkin'")
    assert 0.6 <= checkins / completed <= 0.8, "check-ins for about 70 % of completed baselines"
    assert (summary.baselines, summary.completed, summary.checkins) == (
        sum(by.values()),
        completed,
        checkins,
    )
    assert summary.answers == scalar(engine, "SELECT count(*) FROM answers")
    assert 1 <= scalar(engine, "SELECT count(*) FROM respondents WHERE opted_out") <= 25
    assert 1 <= scalar(engine, "SELECT count(*) FROM respondents WHERE unreachable") <= 20
    assert scalar(engine, "SELECT count(*) FROM respondents WHERE consented_at IS NULL") >= 1
    languages = dict(rows(engine, "SELECT language, count(*) FROM respondents GROUP BY 1"))
    assert languages == {"en": RESIDENTS}, "the flow offers English only here"
    assert scalar(engine, "SELECT count(*) FROM checkins WHERE status = 'invited'") == checkins


def test_the_illustrative_personas_come_with_it(engine: sa.Engine, flow: Flow) -> None:
    summary = demo(engine, flow, respondents=20)
    assert summary.personas == 8
    assert scalar(engine, "SELECT count(*) FROM personas") == 8
    linked = rows(
        engine,
        "SELECT p.slug, c.name FROM personas p JOIN cohorts c ON c.id = p.cohort_id ORDER BY 1",
    )
    assert linked == [
        ("cost-blocked-family", "Device loans spring 2026"),
        ("smartphone-keen-learner", "Champions at the library"),
    ]


def test_welsh_for_some_when_the_flow_offers_it(engine: sa.Engine) -> None:
    from flows.loader import load_flow

    demo(engine, load_flow(), respondents=200)
    languages = dict(rows(engine, "SELECT language, count(*) FROM respondents GROUP BY 1"))
    assert set(languages) == {"en", "cy"}
    assert 10 <= languages["cy"] <= 60
    assert languages["en"] > languages["cy"]


def test_phone_numbers_only_from_the_drama_range(demo_engine: sa.Engine) -> None:
    with demo_engine.connect() as conn:
        privacy = load_privacy(conn, keys_of(conn))
        stored = conn.execute(sa.text("SELECT urn_cipher, urn_digest FROM respondents")).all()
    urns = [privacy.decrypt(cipher) for cipher, _ in stored]
    assert all(re.fullmatch(r"tel:\+447700900\d{3}", urn) for urn in urns)
    assert len(set(urns)) == RESIDENTS
    assert all(
        privacy.digest(urn) == bytes(digest) for urn, (_, digest) in zip(urns, stored, strict=True)
    )
    # 07700 900000 to 07700 900999, then Telegram ids: never anyone's real number
    assert demo_urn(0) == urn_for_phone("07700 900000")
    assert demo_urn(999) == urn_for_phone("07700 900999")
    assert demo_urn(1000) == "telegram:700001000"
    assert demo_urn(99_999) == "telegram:700099999"


def answers_by_assessment(engine: sa.Engine) -> dict[int, dict[str, Any]]:
    found = rows(
        engine,
        "SELECT a.id, a.respondent_id, a.kind, a.mode, a.baseline_id, a.skills_basis, "
        "a.started_at, a.completed_at, n.question, n.item_id, n.aspect, n.option, n.score, "
        "n.answered_at FROM assessments a JOIN answers n ON n.assessment_id = a.id "
        "ORDER BY a.id, n.answered_at, n.id",
    )
    assessments: dict[int, dict[str, Any]] = {}
    for row in found:
        entry = assessments.setdefault(
            row.id,
            {"row": row, "options": {}, "scores": {}, "order": [], "times": []},
        )
        entry["options"][row.question] = row.option
        entry["scores"][row.question] = row.score
        entry["order"].append(row.question)
        entry["times"].append(row.answered_at)
        assert (row.item_id, row.aspect) == tuple(row.question.split(".")), row.question
    return assessments


def test_every_answer_is_a_valid_option_of_a_question_its_mode_asks(
    demo_engine: sa.Engine, flow: Flow
) -> None:
    assessments = answers_by_assessment(demo_engine)
    assert assessments
    for entry in assessments.values():
        row = entry["row"]
        asked = {s.key for s in flow.modes[row.mode].steps if hasattr(s, "aspect")}
        for key, option in entry["options"].items():
            assert key in asked, (row.mode, key)
            question = flow.question(key)
            if option is None:
                assert entry["scores"][key] is None
                continue
            scale = flow.scales[question.aspect]
            assert entry["scores"][key] == scale.option(option).score
            if row.mode == "full" and question.aspect == "interest":
                skill = entry["scores"].get(f"{question.item}.skill")
                assert skill is not None
                assert skill <= 2, "interest asked only where skill <= 2"
        if row.skills_basis == "not_asked":
            assert not any(flow.question(k).section == "skills" for k in entry["options"])


def test_check_ins_re_ask_only_what_their_baseline_answered_in_its_mode(
    demo_engine: sa.Engine,
) -> None:
    assessments = answers_by_assessment(demo_engine)
    checkins = [e for e in assessments.values() if e["row"].kind == "checkin"]
    assert checkins
    for entry in checkins:
        row = entry["row"]
        baseline = assessments[row.baseline_id]
        answered = {k for k, option in baseline["options"].items() if option is not None}
        assert set(entry["options"]) <= answered
        assert baseline["row"].mode == row.mode
        assert baseline["row"].respondent_id == row.respondent_id
        gap = as_utc(row.started_at) - as_utc(baseline["row"].completed_at)
        assert timedelta(days=80) <= gap <= timedelta(days=102), "about 3 months later"
        assert as_utc(row.completed_at) < NOW
    for entry in assessments.values():  # answered within the sitting
        row, times = entry["row"], [as_utc(t) for t in entry["times"]]
        assert as_utc(row.started_at) == times[0]
        if row.completed_at is not None:  # later, after a last topic skipped
            assert as_utc(row.completed_at) >= times[-1]


def as_utc(value: datetime | str) -> datetime:
    """A time from plain SQL: SQLite gives text, PostgreSQL an aware datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)


def replay(flow: Flow, state: State, answers: dict[str, int | None]) -> tuple[State, list[str]]:
    """Answer the real engine with the demo's answers (SKIP for a skipped one; a topic with
    nothing answered skipped; the skills choice as the answers show it): the questions it
    asked, in order."""
    asked: list[str] = []
    for _ in range(200):
        if state.stage != "asking":
            return state, asked
        key = state.question or ""
        if key.endswith(".topic"):
            heading = key.split(".")[0]
            reply = "1" if any(flow.question(k).heading == heading for k in answers) else "2"
        elif key == "skills.basis":
            reply = "2" if any(flow.question(k).section == "skills" for k in answers) else "1"
        else:
            assert key in answers, f"the engine asked {key}, which the demo did not answer"
            asked.append(key)
            option = answers[key]
            reply = "SKIP" if option is None else str(option)
        state = step(flow, state, Inbound(reply), NOW).state
    raise AssertionError("the assessment did not end")


def test_the_engine_asks_exactly_what_the_demo_answered(demo_engine: sa.Engine, flow: Flow) -> None:
    assessments = answers_by_assessment(demo_engine)
    replayed = 0
    for entry in assessments.values():
        row = entry["row"]
        if row.kind != "baseline" or row.completed_at is None:
            continue
        state = State(language="en", language_chosen=True)
        for text in ("Hi", "1", "1" if row.mode == "quick" else "2"):  # consent, then the mode
            state = step(flow, state, Inbound(text), NOW).state
        state, asked = replay(flow, state, entry["options"])
        assert state.stage == "done"
        assert asked == entry["order"], "the same questions in the same order"
        checkin = next((e for e in assessments.values() if e["row"].baseline_id == row.id), None)
        if checkin is not None:
            chosen = {k: v for k, v in entry["options"].items() if v is not None}
            plan = CheckinPlan(row.mode, tuple(chosen), chosen, {"en": "March 2026"}, row.id)
            state = invite_to_checkin(flow, state, plan, NOW).state
            state = step(flow, state, Inbound("1"), NOW).state
            state, asked = replay(flow, state, checkin["options"])
            assert state.stage == "done"
            assert asked == checkin["order"]
        replayed += 1
    assert replayed > 200


def gains(engine: sa.Engine) -> dict[str | None, dict[str, list[int]]]:
    """Initiative (None: in no cohort) -> kind of change -> check-in score minus baseline score,
    per question answered both times."""
    found = rows(
        engine,
        "SELECT c.initiative, b.question, b.aspect, b.score, k.score "
        "FROM assessments ck "
        "JOIN answers k ON k.assessment_id = ck.id "
        "JOIN answers b ON b.assessment_id = ck.baseline_id AND b.question = k.question "
        "LEFT JOIN cohort_members m ON m.respondent_id = ck.respondent_id "
        "LEFT JOIN cohorts c ON c.id = m.cohort_id "
        "WHERE ck.kind = 'checkin' AND k.score IS NOT NULL AND b.score IS NOT NULL",
    )
    changes: dict[str | None, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for initiative, question, aspect, before, after in found:
        kind = aspect
        if question in ("BA01.access", "BA02.access"):
            kind = "device_or_connection"
        elif question == "BL01.blocker":
            kind = "cost"
        elif aspect == "skill" and before <= 2:
            kind = "low_skill"
        changes[initiative][kind].append(after - before)
    return changes


def test_gains_differ_by_initiative(demo_engine: sa.Engine) -> None:
    changes = gains(demo_engine)
    loans, champions, nobody = (
        changes["Device loans"],
        changes["Digital champions"],
        changes[None],
    )
    mean = statistics.fmean

    assert mean(loans["device_or_connection"]) > 1.0, "device loans give devices and data"
    assert abs(mean(champions["device_or_connection"])) < 0.3
    assert mean(loans["cost"]) > 1.0, "and cost stops being a barrier"
    assert mean(loans["cost"]) > mean(champions["cost"]) + 0.8
    assert 0.6 <= mean(champions["low_skill"]) <= 1.5, "champions: about a point on low skills"
    assert 0.0 < mean(loans["low_skill"]) < mean(champions["low_skill"]) - 0.3
    assert abs(mean(nobody["low_skill"] + nobody["skill"])) < 0.35, "no initiative: about the same"
    assert min(champions["low_skill"]) < 0, "some get worse"


def test_some_residents_are_worse_at_their_check_in(demo_engine: sa.Engine) -> None:
    per_person = rows(
        demo_engine,
        "SELECT ck.id, avg(k.score - b.score) FROM assessments ck "
        "JOIN answers k ON k.assessment_id = ck.id "
        "JOIN answers b ON b.assessment_id = ck.baseline_id AND b.question = k.question "
        "WHERE ck.kind = 'checkin' AND k.aspect = 'skill' GROUP BY ck.id",
    )
    worse = [mean for _, mean in per_person if mean < 0]
    assert 3 <= len(worse) < len(per_person) / 3


def everything(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """Each answer with its resident's place in order, as comparable across databases."""
    found = rows(
        engine,
        "SELECT r.id, a.kind, a.mode, a.skills_basis, n.question, n.option, n.score, "
        "n.answered_at, n.channel FROM respondents r "
        "JOIN assessments a ON a.respondent_id = r.id JOIN answers n ON n.assessment_id = a.id "
        "ORDER BY r.id, a.id, n.question",
    )
    places: dict[int, int] = {}
    return [
        (places.setdefault(row[0], len(places)), *row[1:7], as_utc(row[7]), row[8]) for row in found
    ]


def test_the_same_seed_writes_the_same_demo(
    demo_engine: sa.Engine, flow: Flow, tmp_path: Path
) -> None:
    def another(name: str, seed: int) -> list[tuple[Any, ...]]:
        url = f"sqlite:///{tmp_path / name}"
        upgrade(url)
        engine = make_engine(url)
        try:
            demo(engine, flow, seed=seed)
            return everything(engine)
        finally:
            engine.dispose()

    first = everything(demo_engine)
    assert another("same.db", 2026) == first
    assert another("other.db", 7) != first


def test_conversations_are_states_the_engine_reads(demo_engine: sa.Engine) -> None:
    found = rows(
        demo_engine,
        "SELECT c.state, c.assessment_id, a.kind, a.completed_at, c.reminders_sent "
        "FROM conversations c LEFT JOIN assessments a ON a.id = c.assessment_id",
    )
    stages: dict[str, int] = defaultdict(int)
    for text, assessment_id, kind, completed_at, reminders in found:
        state = State.from_json(text)
        assert state.to_json() == text
        stages[state.stage] += 1
        if assessment_id is not None:
            assert state.kind == kind
            assert (state.stage == "done") == (completed_at is not None)
            assert reminders == (2 if completed_at is None else 0), "stalled: reminded already"
    assert set(stages) == {"consent", "declined", "asking", "done"}


def test_a_database_with_respondents_is_refused(demo_engine: sa.Engine, flow: Flow) -> None:
    with pytest.raises(DemoRefused, match="already holds respondents"):
        demo(demo_engine, flow)
    assert scalar(demo_engine, "SELECT count(*) FROM respondents") == RESIDENTS


def config_file(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
    return str(path)


def test_the_command_makes_a_demo_then_refuses_a_second(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if database_url.startswith("sqlite"):  # a new file: the command migrates it
        database_url = f"sqlite:///{tmp_path / 'new' / 'demo.db'}"
    config = config_file(tmp_path, database_url)

    assert main(["demo", "--respondents", "120", "--seed", "5", "--config", config]) == 0
    out, err = capsys.readouterr()
    assert err == "", "no progress bar when stderr is not a terminal"
    lines = out.splitlines()
    assert lines[0] == (
        "demo written: 120 synthetic residents (phone numbers from 07700 900000-900999, "
        "Ofcom's drama range)"
    )
    assert lines[1].startswith('  Device loans: "Device loans ')
    assert lines[2].startswith('  Digital champions: "Champions at the library" (')
    assert lines[3].startswith("  in no cohort: ")
    assert re.fullmatch(
        r"  baselines: \d+ started, \d+ completed; check-ins: \d+; answers: [\d,]+", lines[4]
    )
    assert lines[5] == "  illustrative personas: 8"
    assert lines[-5:] == [
        "try:",
        "  dibot report",
        f'  dibot report --cohort "{lines[1].split(chr(34))[1]}"',
        "  dibot export --format xlsx --out demo.xlsx",
        "  dibot show --phone 07700900001",
    ]
    engine = make_engine(database_url)
    try:
        assert scalar(engine, "SELECT count(*) FROM respondents") == 120
    finally:
        engine.dispose()

    assert main(["demo", "--config", config]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"dibot: {REFUSED}\n")

    assert main(["show", "--phone", "07700900001", "--config", config]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == "resident 07700 900•••"
    assert "status:" in shown
    assert "  opted out: no" in shown or any(s.startswith("  opted out: yes") for s in shown)


def test_the_command_refuses_a_number_of_residents_out_of_range(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, database_url)
    assert main(["demo", "--respondents", "0", "--config", config]) == 2
    assert capsys.readouterr().err == "dibot: --respondents must be 1 to 1,000,000\n"


def test_the_dashboard_shows_demo_residents(
    demo_engine: sa.Engine, dashboard: Flask, staff: Staff
) -> None:
    client = signed_in(dashboard, staff.north_admin)
    listed = client.get("/respondents")
    assert listed.status_code == 200
    assert "07700 900" in page_text(listed)
    picked = rows(
        demo_engine,
        "SELECT min(r.id) FROM respondents r "
        "LEFT JOIN assessments a ON a.respondent_id = r.id AND a.kind = 'checkin' "
        "GROUP BY r.opted_out, r.unreachable, r.consented_at IS NULL, a.id IS NULL",
    )
    assert len(picked) >= 4
    for (rid,) in picked:
        page = client.get(f"/respondents/{rid}")
        assert page.status_code == 200, rid
    checked_in = rows(
        demo_engine,
        "SELECT a.respondent_id, c.name FROM assessments a "
        "JOIN cohort_members m ON m.respondent_id = a.respondent_id "
        "JOIN cohorts c ON c.id = m.cohort_id WHERE a.kind = 'checkin' ORDER BY a.id LIMIT 1",
    )
    rid, cohort = checked_in[0]
    assert cohort in page_text(client.get(f"/respondents/{rid}"))


def test_on_postgresql_the_filled_tables_have_planner_statistics(demo_engine: sa.Engine) -> None:
    """Without them (autovacuum off, or not round yet) a report reads every answer for each
    batch of people; SQLite's planner needs none."""
    if demo_engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner statistics; SQLite's planner works without them")
    estimated = scalar(demo_engine, "SELECT reltuples FROM pg_class WHERE relname = 'answers'")
    counted = scalar(demo_engine, "SELECT count(*) FROM answers")
    assert estimated == counted
