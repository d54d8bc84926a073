"""`make bench`'s runner: every stage's section in one report, a stage that cannot run says why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.http_load import free_port
from bench.report import Goal, Section
from bench.suite import ROOT, STAGE_BY_KEY, StageRun, reachable_postgresql, render, run_stage

ABOUT = {
    "machine": {
        "cpus": 2,
        "cpu_model": "a test CPU",
        "memory_gib": 24.0,
        "python": "3.11.7",
        "sqlite": "3.45.0",
        "load_average_at_start": [0.31, 0.5, 0.6],
    },
    "source": {"commit": "abc1234", "uncommitted_changes": False, "lock_files_sha256": {}},
    "seconds": 600.0,
    "finished": "2026-12-02 01:00 UTC",
}


def test_the_report_opens_with_every_goal_against_what_was_measured() -> None:
    met = Goal("dispatcher against Twilio's per-number rate", "≥ 10×", "31×", met=True)
    missed = Goal(
        "SMS turn against the ceiling", "≥ 0.40", "0.31", met=False, why="CPU-bound: 98 % busy"
    )
    runs = [
        StageRun(Section("outbound", "Outbound", "| a | b |", goals=(met,)), 12.0),
        StageRun(
            Section("turns", "Turns over HTTP", "turns text", goals=(missed,), ok=False), 90.0
        ),
    ]

    report = render(runs, ABOUT, postgresql=True, full=False)

    assert "## Goals: 1 of 2 met" in report
    assert "| SMS turn against the ceiling | ≥ 0.40 | 0.31 | no | CPU-bound: 98 % busy |" in report
    assert "| dispatcher against Twilio's per-number rate | ≥ 10× | 31× | yes |  |" in report
    assert "## Turns over HTTP (a check failed)" in report
    assert report.index("## Outbound") < report.index("## Turns over HTTP")
    assert "at commit abc1234, on 2 CPUs (a test CPU)" in report
    assert "and PostgreSQL" in report
    assert "Load average at the start: 0.31 on 2 CPUs." in report


def test_a_postgresql_stage_without_a_database_is_reported_not_measured(tmp_path: Path) -> None:
    run = run_stage(STAGE_BY_KEY["outbound"], None, full=False, workdir=tmp_path)

    assert not run.section.ok
    assert run.section.markdown == "Not measured: it needs PostgreSQL, and none was reachable."
    assert run.section.goals == ()


def test_the_sms_cost_stage_runs_in_its_own_process_and_writes_the_report(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.suite", "--only", "sms_cost", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    assert completed.returncode == 0, completed.stderr
    report = (tmp_path / "REPORT.md").read_text()
    raw = json.loads((tmp_path / "report.json").read_text())
    assert [stage["key"] for stage in raw["stages"]] == ["sms_cost"]
    stage = raw["stages"][0]
    assert stage["ok"] is True
    assert stage["goals"]
    for goal in stage["goals"]:
        assert f"| {goal['name']} | {goal['target']} | {goal['measured']} |" in report
    assert "## SMS cost" in report


def test_postgresql_that_cannot_be_reached_is_named_with_the_reason() -> None:
    port = free_port()  # nothing listens there

    url, why = reachable_postgresql(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")

    assert url is None
    assert why.startswith(f"PostgreSQL at postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    assert "cannot be reached" in why


def test_sqlite_is_not_taken_for_postgresql() -> None:
    assert reachable_postgresql("sqlite:///bench.db") == (None, "sqlite is not PostgreSQL")
    assert reachable_postgresql(None)[0] is None
