"""`dibot report` and `dibot export` at scale: wall time, CPU time and peak memory, each run as
a separate process, on a demo database of N residents.

    .venv/bin/python -m bench.impact [--respondents N | --answers N]
                                     [--database sqlite|postgresql|both] [--database-url URL]
                                     [--formats csv,csv-wide,xlsx,floip,outcomes,benchmark]
                                     [--skip-xlsx-above ROWS] [--no-reports] [--no-flat-check]

1. A fresh database (an SQLite file in a temporary directory; on PostgreSQL the scratch schema
   `dibot_bench_impact` of the database named) is filled with `impact.demo.make_demo` (N
   residents, or with `--answers` the fewest residents whose demo holds that many answer
   rows), timed; then people, assessments and answer rows are counted.
2. A bare start (a child that imports dibot, loads the flow and opens the database), `dibot
   report` (text, then JSON) and `dibot export --format F` for each format, each a child
   process of its own (`python -m dibot.cli`), reaped with `os.wait4` by a small launcher
   so that its own rusage gives its CPU time and peak RSS (see `LAUNCHER`). Memory is
   reported as peak RSS and as peak RSS above the bare start: what the work itself holds.
3. Memory flat: the CSV export again on a demo a tenth the size; the ratio of the memory above
   the bare start at N to that at N/10 stays near 1 when exports stream (10 if they held all).
   It means something only when N/10 is more than one read batch (`impact.records.BATCH`
   people): below that, memory grows with the batch as it fills.

The rules it keeps: times are reported, never judged (machines differ); each child must exit 0
and the CSV export must write every answer row the database holds, else the exit status is 1;
everything stays on this machine (SQLite in a temporary directory, PostgreSQL only inside the
scratch schemas `dibot_bench_impact` and `dibot_bench_impact_small`, dropped before and after);
progress goes to stderr, the tables to stdout. Exit status 2 for unusable arguments.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from bench.turns import fresh_database, measured_postgresql_url
from flows.loader import load_flow
from flows.model import Flow
from impact.demo import Questionnaire, demo_cohorts, make_demo, plan_resident
from impact.exports import FORMATS
from impact.records import BATCH
from storage.database import make_engine
from storage.models import Answer, Assessment, Respondent, table
from storage.privacy import KEY_VARIABLE, database_keys, keys_option

SCRATCH_SCHEMA = "dibot_bench_impact"
SMALL_SCHEMA = "dibot_bench_impact_small"
DATABASES = ("sqlite", "postgresql", "both")
SEED = 2026
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MIB = 1024
FLAT_FRACTION = 10
"""The memory-flat check compares the CSV export at N with the same at N / this."""
BARE = "bare start (baseline)"
REPORTS = ("text", "json")
REPORT_SUFFIX = {"text": ".txt", "json": ".json"}
EXPORT_SUFFIX = {
    "csv": ".csv",
    "csv-wide": ".csv",
    "xlsx": ".xlsx",
    "floip": "",
    "outcomes": ".csv",
    "benchmark": ".json",
}
ROW_NAMES = ("answers", "responses", "assessments", "flag rows", "groups")
"""Of what an export says it wrote (`ExportDone.summary`), the count reported as its rows."""
COUNTED = re.compile(r"([\d,]+) ([a-z][a-z ]*?)(?:,|$)")
LAUNCHER = """
import os, sys, time
began = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - began
with open(sys.argv[1], "w") as out:
    out.write(f"{seconds} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""
"""Runs a child and writes its wall time, CPU time and peak RSS (KiB) to the file named first.
A process started straight from this one would not do: Linux counts the memory of the process
it was started from (this one, holding a demo's worth) in a child's ru_maxrss, so a child is
started from this small launcher (no site packages), whose own memory is below any child's."""
BARE_START = """
from dibot.cli import main
from dibot.config import load_config
from dibot.privacy_commands import keyed_engine
from dibot.runtime import check_privacy, load_configured_flow
config = load_config(None)
load_configured_flow(config)
check_privacy(config)
engine = keyed_engine(config)
with engine.connect() as conn:
    conn.exec_driver_sql("SELECT count(*) FROM respondents").scalar_one()
engine.dispose()
"""
"""What every command does before its work: import dibot, read the configuration, build the
flow, open the database with its keys."""


@dataclass(frozen=True)
class Filled:
    """A demo database: how long the demo took and what it holds."""

    respondents: int
    seconds: float
    people: int
    assessments: int
    answers: int


@dataclass(frozen=True)
class ChildRun:
    """One child process: what it did, how long, how much memory."""

    step: str
    status: int
    seconds: float
    cpu_seconds: float
    peak_kib: int
    output_bytes: int
    rows: int | None
    said: str
    """Its last line on stdout (or stderr, when it failed)."""


@dataclass(frozen=True)
class Measured:
    """Everything measured on one database."""

    database: str
    filled: Filled
    bare: ChildRun
    steps: tuple[ChildRun, ...]
    small: Filled | None
    small_bare: ChildRun | None
    small_csv: ChildRun | None

    def step(self, name: str) -> ChildRun | None:
        return next((run for run in self.steps if run.step == name), None)

    def above_bare_kib(self, run: ChildRun) -> int:
        return run.peak_kib - self.bare.peak_kib

    def problems(self) -> list[str]:
        found = [
            f"{self.database}: {run.step} exited with status {run.status}: {run.said}"
            for run in (self.bare, *self.steps, self.small_bare, self.small_csv)
            if run is not None and run.status != 0
        ]
        csv = self.step(export_step("csv"))
        if csv is not None and csv.status == 0 and csv.rows != self.filled.answers:
            found.append(
                f"{self.database}: the CSV export wrote {csv.rows} answer rows, the database "
                f"holds {self.filled.answers}"
            )
        return found


def export_step(fmt: str) -> str:
    return f"export {fmt}"


def report_step(fmt: str) -> str:
    return f"report ({fmt})"


# --- sizing and filling ---------------------------------------------------------------------


def respondents_for(flow: Flow, answers: int, seed: int = SEED) -> int:
    """The fewest demo residents whose answers reach `answers`: the demo draws each resident
    in order from one seeded generator, so the first k residents are the same whatever the
    demo's size, and can be drawn here without writing them."""
    rng = random.Random(seed)
    questionnaire = Questionnaire(flow)
    plan = demo_cohorts(NOW)
    counted = index = 0
    while counted < answers:
        resident = plan_resident(rng, questionnaire, index, plan, NOW)
        for sitting in (resident.baseline, resident.checkin):
            if sitting is not None:
                counted += len(sitting.options)
        index += 1
    return index


def fill(url: str, flow: Flow, respondents: int) -> Filled:
    """The demo's `respondents` residents written into the empty database at `url`, timed."""
    keys = database_keys(url, os.environ.get(KEY_VARIABLE, ""))
    engine = make_engine(url, poolclass=sa.NullPool, execution_options=keys_option(keys))
    try:
        began = perf_counter()
        with engine.begin() as conn:
            make_demo(conn, flow, respondents=respondents, seed=SEED, now=NOW)
        seconds = perf_counter() - began
        with engine.connect() as conn:
            people, held, answers = (
                int(conn.execute(sa.select(sa.func.count()).select_from(table(m))).scalar_one())
                for m in (Respondent, Assessment, Answer)
            )
    finally:
        engine.dispose()
    return Filled(respondents, seconds, people, held, answers)


# --- the children ---------------------------------------------------------------------------


def child_environment(url: str) -> dict[str, str]:
    """This environment without the developer's DIBOT_ settings, on the database at `url`
    with the keys it was made with."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("DIBOT_")}
    clean["DIBOT_DATABASE_URL"] = url
    if os.environ.get(KEY_VARIABLE):
        clean[KEY_VARIABLE] = os.environ[KEY_VARIABLE]
    return clean


def run_child(step: str, arguments: Sequence[str], url: str, workdir: Path) -> ChildRun:
    """`python ARGUMENTS` as a child of its own, in `workdir` (so no config.toml is read but
    the environment's), timed; its rusage (CPU, peak RSS) read by `LAUNCHER` as it reaps it."""
    slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
    stdout_path, stderr_path = workdir / f"{slug}.stdout", workdir / f"{slug}.stderr"
    usage_path = workdir / f"{slug}.usage"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        launcher = subprocess.run(
            [sys.executable, "-S", "-c", LAUNCHER, str(usage_path), sys.executable, *arguments],
            cwd=workdir,
            env=child_environment(url),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            check=False,
        )
    out = stdout_path.read_text(encoding="utf-8", errors="replace").strip()
    err = stderr_path.read_text(encoding="utf-8", errors="replace").strip()
    said = (out if launcher.returncode == 0 else err or out).splitlines()
    seconds, cpu_seconds, peak_kib = (0.0, 0.0, 0)
    if usage_path.exists():
        wall, cpu, peak = usage_path.read_text(encoding="ascii").split()
        seconds, cpu_seconds, peak_kib = float(wall), float(cpu), int(peak)
    return ChildRun(
        step=step,
        status=launcher.returncode,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        peak_kib=peak_kib,
        output_bytes=0,
        rows=None,
        said=said[-1] if said else "",
    )


def size_of(path: Path) -> int:
    """Bytes in a file, or in every file under a directory (a FLOIP package)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def rows_said(summary: str) -> int | None:
    """The main count an export's summary line gives ("..., 10,233 answers")."""
    counts = {
        name.strip(): int(number.replace(",", "")) for number, name in COUNTED.findall(summary)
    }
    return next((counts[name] for name in ROW_NAMES if name in counts), None)


def bare_start(url: str, workdir: Path) -> ChildRun:
    return run_child(BARE, ["-c", BARE_START], url, workdir)


def report(fmt: str, url: str, workdir: Path, people: int) -> ChildRun:
    out = workdir / f"report{REPORT_SUFFIX[fmt]}"
    arguments = ["-m", "dibot.cli", "report", "--format", fmt, "--out", str(out)]
    run = run_child(report_step(fmt), arguments, url, workdir)
    made = size_of(out)
    out.unlink(missing_ok=True)
    return _with(run, output_bytes=made, rows=people)


def export(fmt: str, url: str, workdir: Path) -> ChildRun:
    out = workdir / f"export-{fmt}{EXPORT_SUFFIX[fmt]}"
    arguments = ["-m", "dibot.cli", "export", "--format", fmt, "--out", str(out)]
    run = run_child(export_step(fmt), arguments, url, workdir)
    made = size_of(out)
    if fmt == "outcomes":
        counts = out.with_name(f"{out.stem}-counts{out.suffix}")
        made += size_of(counts)
        counts.unlink(missing_ok=True)
    _remove(out)
    return _with(run, output_bytes=made, rows=rows_said(run.said) if run.status == 0 else None)


def _with(run: ChildRun, *, output_bytes: int, rows: int | None) -> ChildRun:
    return ChildRun(
        run.step,
        run.status,
        run.seconds,
        run.cpu_seconds,
        run.peak_kib,
        output_bytes,
        rows,
        run.said,
    )


def _remove(path: Path) -> None:
    if path.is_dir():
        for inner in sorted(path.rglob("*"), reverse=True):
            inner.rmdir() if inner.is_dir() else inner.unlink()
        path.rmdir()
    else:
        path.unlink(missing_ok=True)


# --- one database ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    respondents: int
    formats: tuple[str, ...]
    skip_xlsx_above: int | None
    flat_check: bool = True
    reports: bool = True


def _progress(text: str) -> None:
    print(f"bench.impact: {text}", file=sys.stderr, flush=True)


def measure_database(
    database: str, postgresql_url: str | None, flow: Flow, plan: Plan, workdir: Path
) -> Measured:
    """Fill one database, then run every child on it (and the small one, for memory)."""
    folder = workdir / database
    folder.mkdir()
    with fresh_database(postgresql_url, folder, "impact", schema=SCRATCH_SCHEMA) as url:
        _progress(f"{database}: demo of {plan.respondents:,} residents")
        filled = fill(url, flow, plan.respondents)
        _progress(
            f"{database}: {filled.people:,} people, {filled.answers:,} answer rows in "
            f"{filled.seconds:.1f} s; bare start"
        )
        bare = bare_start(url, folder)
        steps = []
        for fmt in REPORTS if plan.reports else ():
            _progress(f"{database}: {report_step(fmt)}")
            steps.append(report(fmt, url, folder, filled.people))
        for fmt in plan.formats:
            too_many = plan.skip_xlsx_above is not None and filled.answers > plan.skip_xlsx_above
            if fmt == "xlsx" and too_many:
                _progress(f"{database}: xlsx skipped ({filled.answers:,} answer rows)")
                continue
            _progress(f"{database}: {export_step(fmt)}")
            steps.append(export(fmt, url, folder))
            _progress(f"{database}: {steps[-1].seconds:.1f} s, {steps[-1].said}")
    small = small_bare = small_csv = None
    if plan.flat_check:
        smaller = max(1, plan.respondents // FLAT_FRACTION)
        with fresh_database(postgresql_url, folder, "small", schema=SMALL_SCHEMA) as url:
            _progress(f"{database}: memory flat: demo of {smaller:,} residents, CSV export")
            small = fill(url, flow, smaller)
            small_bare = bare_start(url, folder)
            small_csv = export("csv", url, folder)
    return Measured(database, filled, bare, tuple(steps), small, small_bare, small_csv)


# --- the report -----------------------------------------------------------------------------


def _mib(kib: float) -> str:
    return f"{kib / MIB:.1f}"


def _row(measured: Measured, run: ChildRun) -> str:
    work = run.seconds - measured.bare.seconds if run.step != BARE else run.seconds
    per_answer = work / measured.filled.answers * 1e6 if measured.filled.answers else 0.0
    above = "-" if run.step == BARE else _mib(measured.above_bare_kib(run))
    work_text = "-" if run.step == BARE else f"{work:.2f}"
    per_answer_text = "-" if run.step == BARE else f"{per_answer:.2f}"
    rows = "-" if run.rows is None else f"{run.rows:,}"
    output = "-" if run.step == BARE else f"{run.output_bytes / MIB / MIB:.1f}"
    failed = "" if run.status == 0 else f"  FAILED ({run.status})"
    return (
        f"{run.step:24} {measured.filled.people:>9,} {rows:>10} {run.seconds:9.2f}"
        f" {run.cpu_seconds:8.2f} {work_text:>8} {per_answer_text:>8} {_mib(run.peak_kib):>8}"
        f" {above:>8} {output:>8}{failed}"
    )


HEADER = (
    f"{'step':24} {'people':>9} {'rows':>10} {'seconds':>9} {'CPU s':>8} {'-bare s':>8}"
    f" {'µs/ans':>8}"
    f" {'peak MiB':>8} {'+bare':>8} {'out MiB':>8}"
)


def flat_ratio(measured: Measured) -> float | None:
    """Memory above the bare start of the CSV export at N over the same at N / 10."""
    large = measured.step(export_step("csv"))
    if large is None or measured.small_csv is None or measured.small_bare is None:
        return None
    small_above = measured.small_csv.peak_kib - measured.small_bare.peak_kib
    large_above = measured.above_bare_kib(large)
    return large_above / small_above if small_above > 0 else None


def render(results: Sequence[Measured]) -> str:
    lines = [
        f"dibot report and export as separate processes, {os.cpu_count()} CPUs; peak MiB is "
        "each child's own peak RSS, +bare the part above a bare start (import, flow, open "
        "the database); -bare s is seconds less the bare start's, µs/ans that per answer row "
        "held"
    ]
    for measured in results:
        filled = measured.filled
        lines += [
            "",
            f"{measured.database}: demo of {filled.respondents:,} residents in "
            f"{filled.seconds:.1f} s: {filled.people:,} people, {filled.assessments:,} "
            f"assessments, {filled.answers:,} answer rows",
            HEADER,
            _row(measured, measured.bare),
            *(_row(measured, run) for run in measured.steps),
        ]
        ratio = flat_ratio(measured)
        large = measured.step(export_step("csv"))
        small, small_csv, small_bare = measured.small, measured.small_csv, measured.small_bare
        if large is not None and small and small_csv and small_bare:
            ratio_text = (
                "n/a (nothing above the bare start at N/10)" if ratio is None else (f"{ratio:.2f}")
            )
            lines.append(
                f"memory flat (CSV export): {_mib(measured.above_bare_kib(large))} MiB above "
                f"the bare start at {filled.answers:,} answer rows, "
                f"{_mib(small_csv.peak_kib - small_bare.peak_kib)} MiB at "
                f"{small.answers:,}: ratio {ratio_text} (10 would be memory growing "
                "with the rows)"
            )
            if small.people <= BATCH:
                lines.append(
                    f"  (N/10 is {small.people:,} people, within one read batch of {BATCH}: "
                    "memory still grows with the batch there, so this ratio says little)"
                )
    by_name = {m.database: m for m in results}
    if "PostgreSQL" in by_name and "SQLite" in by_name:
        sqlite, postgresql = by_name["SQLite"], by_name["PostgreSQL"]
        lines += ["", "PostgreSQL / SQLite", f"{'step':24} {'seconds':>8} {'peak RSS':>9}"]
        lines.append(f"{'demo':24} {postgresql.filled.seconds / sqlite.filled.seconds:8.2f}")
        for run in postgresql.steps:
            other = sqlite.step(run.step)
            if other is None or other.seconds == 0 or other.peak_kib == 0:
                continue
            lines.append(
                f"{run.step:24} {run.seconds / other.seconds:8.2f}"
                f" {run.peak_kib / other.peak_kib:9.2f}"
            )
    problems = [problem for m in results for problem in m.problems()]
    lines += ["", *(f"FAILED: {problem}" for problem in problems)] if problems else ["", "ok"]
    return "\n".join(lines)


# --- the command ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.impact",
        description=(__doc__ or "").split("\n\n")[0].replace("\n", " "),
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--respondents", type=int, default=10_000, help="demo residents")
    size.add_argument(
        "--answers", type=int, help="size the demo to hold at least this many answer rows"
    )
    parser.add_argument("--database", choices=DATABASES, default="sqlite")
    parser.add_argument(
        "--database-url",
        help="the PostgreSQL database (default: $DIBOT_DATABASE_URL when it names PostgreSQL); "
        f"only its schemas {SCRATCH_SCHEMA} and {SMALL_SCHEMA} are used",
    )
    parser.add_argument(
        "--formats", default=",".join(FORMATS), help="export formats, comma separated"
    )
    parser.add_argument(
        "--skip-xlsx-above",
        type=int,
        metavar="ROWS",
        help="skip the XLSX export when the database holds more answer rows than this",
    )
    parser.add_argument("--no-flat-check", action="store_true", help="skip the CSV export at N/10")
    parser.add_argument("--no-reports", action="store_true", help="run the exports only")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    flow = load_flow()
    try:
        formats = tuple(f.strip() for f in arguments.formats.split(",") if f.strip())
        unknown = sorted(set(formats) - set(FORMATS))
        if unknown or not formats:
            raise ValueError(f"--formats: use some of {', '.join(FORMATS)}")
        if arguments.answers is not None:
            if arguments.answers < 1:
                raise ValueError("--answers must be positive")
            respondents = respondents_for(flow, arguments.answers)
        else:
            respondents = arguments.respondents
        if respondents < 1:
            raise ValueError("--respondents must be positive")
        postgresql_url = measured_postgresql_url(arguments.database_url)
        if arguments.database != "sqlite" and postgresql_url is None:
            raise ValueError("--database postgresql needs --database-url or $DIBOT_DATABASE_URL")
    except ValueError as error:
        print(f"bench.impact: {error}", file=sys.stderr)
        return 2
    databases: dict[str, str | None] = {}
    if arguments.database in ("sqlite", "both"):
        databases["SQLite"] = None
    if arguments.database in ("postgresql", "both"):
        databases["PostgreSQL"] = postgresql_url
    plan = Plan(
        respondents,
        formats,
        arguments.skip_xlsx_above,
        flat_check=not arguments.no_flat_check,
        reports=not arguments.no_reports,
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="dibot-bench-impact-") as workdir:
        for database, url in databases.items():
            try:
                results.append(measure_database(database, url, flow, plan, Path(workdir)))
            except OperationalError as error:
                orig = error.orig
                reason = str(orig).strip().splitlines()[0] if orig else type(error).__name__
                print(f"bench.impact: cannot use the database: {reason}", file=sys.stderr)
                return 2
    text = render(results)
    print(text)
    return 1 if "FAILED" in text else 0


if __name__ == "__main__":
    sys.exit(main())
