"""`make bench`: every stage in one run, one report (Markdown and the raw numbers) at the end.

    .venv/bin/python -m bench.suite [--out DIR] [--database-url URL] [--full] [--only KEY ...]

Each stage runs in a process of its own (`python -m bench.suite --stage KEY`), so one stage's
memory, threads or crash cannot colour the next's numbers; it hands back its
`bench.report.Section` as JSON. The report names the machine, the commit and the lock file it
measured, then each stage's tables, then every goal of the issue against what this run measured.

The rules it keeps: speed is reported as ratios and rates measured in this one run, never judged
against seconds; traffic goes to 127.0.0.1 only; PostgreSQL is used only inside the scratch
schemas each stage names, in the database given (`--database-url`, else $BENCH_DATABASE_URL);
without one, the PostgreSQL stages say so in the report instead of failing. A stage that fails
or finds a correctness problem (a duplicate, a lost answer) is reported as such and makes the
exit status 1; the report is written either way. `--full` runs the issue's full sizes (100,000
respondents and 10,000,000 answers, 100,000 queued messages), which take longer than the
default sizes chosen to fit about 15 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.report import Goal, Section, as_json, goals_table

DATABASE_URL_VARIABLE = "BENCH_DATABASE_URL"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results"
LOCK_FILES = ("requirements/run.txt", "requirements/dev.txt")
STAGE_TIME_LIMIT_SECONDS = 3600


@dataclass(frozen=True)
class Stage:
    key: str
    module: str
    """The module whose `section(**arguments)` measures the stage."""
    title: str
    needs_postgresql: bool
    arguments: Callable[[str | None, bool], dict[str, Any]]
    """Keyword arguments for `section`, from the PostgreSQL URL (or None) and `--full`."""


def _with_postgresql(url: str | None, full: bool) -> dict[str, Any]:
    return {"postgresql_url": url}


def _scale(url: str | None, full: bool) -> dict[str, Any]:
    sizes = {"respondents": 100_000, "answers": 10_000_000} if full else {}
    return {"postgresql_url": url, **sizes}


def _outbound(url: str | None, full: bool) -> dict[str, Any]:
    return {"postgresql_url": url, **({"messages": 100_000} if full else {})}


def _nothing(url: str | None, full: bool) -> dict[str, Any]:
    return {}


STAGES = (
    Stage("sms_cost", "bench.sms_cost", "SMS cost", False, _nothing),
    Stage("hot_path", "bench.turns", "The turn in process", False, _with_postgresql),
    Stage("turns", "bench.serve_load", "Turns over HTTP", False, _with_postgresql),
    Stage("outbound", "bench.outbound", "Outbound", True, _outbound),
    Stage("scale_out", "bench.scale_out", "Scale-out", True, _with_postgresql),
    Stage("scale", "bench.scale", "Scale", False, _scale),
)
STAGE_BY_KEY = {stage.key: stage for stage in STAGES}


@dataclass(frozen=True)
class StageRun:
    section: Section
    seconds: float


def run_stage_here(stage: Stage, postgresql_url: str | None, full: bool) -> Section:
    """Measure one stage in this process."""
    measure = import_module(stage.module).section
    section = measure(**stage.arguments(postgresql_url, full))
    if not isinstance(section, Section):
        raise TypeError(f"{stage.module}.section returned {type(section).__name__}")
    return section


def run_stage(stage: Stage, postgresql_url: str | None, full: bool, workdir: Path) -> StageRun:
    """One stage in a process of its own; a crash or a timeout becomes a failed section."""
    if stage.needs_postgresql and postgresql_url is None:
        return StageRun(_not_run(stage, "it needs PostgreSQL, and none was reachable"), 0.0)
    result_path = workdir / f"{stage.key}.json"
    command = [
        sys.executable,
        "-m",
        "bench.suite",
        "--stage",
        stage.key,
        "--result",
        str(result_path),
    ]
    if postgresql_url is not None:
        command += ["--database-url", postgresql_url]
    if full:
        command.append("--full")
    started = time.monotonic()
    try:
        completed = subprocess.run(command, cwd=ROOT, timeout=STAGE_TIME_LIMIT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return StageRun(
            _not_run(stage, f"stopped after {STAGE_TIME_LIMIT_SECONDS} s"),
            time.monotonic() - started,
        )
    seconds = time.monotonic() - started
    if completed.returncode != 0 or not result_path.exists():
        return StageRun(
            _not_run(stage, f"the stage exited with status {completed.returncode}"), seconds
        )
    return StageRun(_section_from_json(json.loads(result_path.read_text())), seconds)


def _not_run(stage: Stage, reason: str) -> Section:
    return Section(key=stage.key, title=stage.title, markdown=f"Not measured: {reason}.", ok=False)


def _section_from_json(data: dict[str, Any]) -> Section:
    goals = tuple(Goal(**goal) for goal in data.pop("goals", ()))
    return Section(goals=goals, **data)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(_memory_kib() / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "load_average_at_start": list(os.getloadavg()),
    }


def _memory_kib() -> int:
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return 0
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def source() -> dict[str, Any]:
    """The commit measured and the lock files installed from."""

    def git(*arguments: str) -> str:
        completed = subprocess.run(
            ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return completed.stdout.strip() if completed.returncode == 0 else ""

    locks = {
        name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest()[:16]
        for name in LOCK_FILES
        if (ROOT / name).exists()
    }
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "lock_files_sha256": locks,
    }


def render(runs: Sequence[StageRun], about: dict[str, Any], postgresql: bool, full: bool) -> str:
    box, code = about["machine"], about["source"]
    goals = [goal for run in runs for goal in run.section.goals]
    met = sum(goal.met for goal in goals)
    databases = (
        ", and PostgreSQL"
        if postgresql
        else f", without PostgreSQL ({about.get('without_postgresql', 'none given')})"
    )
    lines = [
        "# dibot benchmark report",
        "",
        f"Measured {about['finished']} by `make bench{' BENCH_FULL=1' if full else ''}`, "
        f"in {about['seconds'] / 60:.1f} minutes, at commit {code['commit'] or 'unknown'}"
        f"{' with uncommitted changes' if code['uncommitted_changes'] else ''}, on "
        f"{box['cpus']} CPUs ({box['cpu_model'] or 'unknown model'}), "
        f"{box['memory_gib']} GiB, Python {box['python']}, SQLite {box['sqlite']}"
        f"{databases}. "
        f"Load average at the start: {_load(box)}. "
        "All traffic over 127.0.0.1; speeds are ratios and rates from this one run.",
        "",
        f"## Goals: {met} of {len(goals)} met",
        "",
        goals_table(goals),
        "",
    ]
    for run in runs:
        section = run.section
        status = "" if section.ok else " (a check failed)"
        lines += [f"## {section.title}{status}", "", section.markdown.strip(), ""]
        lines += [f"_Stage time: {run.seconds:.0f} s._", ""]
    return "\n".join(lines)


def _load(box: dict[str, Any]) -> str:
    """The 1-minute load average against the CPUs: numbers taken on a busy machine say so."""
    load = box.get("load_average_at_start")
    return "unknown" if not load else f"{load[0]:.2f} on {box['cpus']} CPUs"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.suite",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where REPORT.md and report.json go"
    )
    parser.add_argument(
        "--database-url",
        help=f"a PostgreSQL database for the PostgreSQL stages (default ${DATABASE_URL_VARIABLE})",
    )
    parser.add_argument("--full", action="store_true", help="the issue's full sizes (longer)")
    parser.add_argument(
        "--only", nargs="+", choices=sorted(STAGE_BY_KEY), help="run only these stages"
    )
    parser.add_argument("--stage", choices=sorted(STAGE_BY_KEY), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser


def reachable_postgresql(url: str | None) -> tuple[str | None, str]:
    """The URL when a PostgreSQL server answers there, else None and why not."""
    if not url:
        return None, "no PostgreSQL database given (--database-url or $BENCH_DATABASE_URL)"
    if make_url(url).get_backend_name() != "postgresql":
        return None, f"{make_url(url).get_backend_name()} is not PostgreSQL"
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        return None, f"PostgreSQL at {make_url(url).render_as_string()} cannot be reached: {reason}"
    finally:
        engine.dispose()
    return url, ""


def _progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    given = arguments.database_url or os.environ.get(DATABASE_URL_VARIABLE) or None
    if arguments.stage is not None:
        postgresql_url = given
        section = run_stage_here(STAGE_BY_KEY[arguments.stage], postgresql_url, arguments.full)
        arguments.result.write_text(json.dumps(as_json(section)))
        return 0
    postgresql_url, why_not = reachable_postgresql(given)
    if postgresql_url is None:
        _progress(f"without PostgreSQL: {why_not}")
    keys = arguments.only or [stage.key for stage in STAGES]
    started, runs = time.monotonic(), []
    about: dict[str, Any] = {
        "machine": machine(),
        "source": source(),
        "without_postgresql": why_not,
    }
    with tempfile.TemporaryDirectory(prefix="dibot-bench-suite-") as workdir:
        for stage in STAGES:
            if stage.key not in keys:
                continue
            _progress(f"{stage.title} ({stage.module})")
            run = run_stage(stage, postgresql_url, arguments.full, Path(workdir))
            _progress(f"{stage.title}: {run.seconds:.0f} s{'' if run.section.ok else ', FAILED'}")
            runs.append(run)
    about["seconds"] = time.monotonic() - started
    about["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    about["full"] = arguments.full
    arguments.out.mkdir(parents=True, exist_ok=True)
    report = render(runs, about, postgresql_url is not None, arguments.full)
    (arguments.out / "REPORT.md").write_text(report)
    raw = {
        **about,
        "stages": [{**as_json(run.section), "seconds": run.seconds} for run in runs],
    }
    (arguments.out / "report.json").write_text(json.dumps(raw, indent=2) + "\n")
    _progress(f"report written to {arguments.out / 'REPORT.md'}")
    return 0 if all(run.section.ok for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
