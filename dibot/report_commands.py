"""`dibot report`: the cohort report (who, at baseline, impact) as text, JSON or HTML.

The rules it keeps:
- It only reads: one read-only transaction on the configured database (`read_only`), with the
  configured keys (the report names nobody, but reading needs the database's lookup key).
- `--cohort NAME` reports on that cohort's members; without it, on everyone ("All residents").
  A name no cohort has is refused in one line (exit status 2) saying where cohorts are listed.
- `--min-group N` (default 10) withholds every group of fewer than N people. A council's own
  policy may be stricter, never laxer than `MIN_GROUP_FLOOR` (5): anything lower is refused.
- `--persona SLUG` sets the people at baseline beside that persona (with `--cohort`, the
  persona linked to the cohort unless another is named); `--compare FILE…` beside other
  councils' pooled benchmark files (`impact.comparisons`). A file that cannot be used, or a
  slug no persona has, is refused in one line.
- The report goes to stdout, or with `--out FILE` is written whole to a temporary file beside
  FILE and renamed over it, so FILE is never left half written. A progress bar goes to stderr
  when stderr is a terminal (tqdm decides).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from tqdm import tqdm

from dibot.config import Config, ConfigError
from dibot.privacy_commands import keyed_engine
from dibot.runtime import check_privacy, load_configured_flow
from flows.model import Flow
from impact.benchmark import BenchmarkError
from impact.comparisons import comparisons_for, pooled_files, with_comparisons
from impact.personas import PersonaError
from impact.records import Selection, count_people
from impact.render_html import render_html
from impact.render_json import render_json
from impact.render_text import render_text
from impact.report import CohortReport, ReportTallies, build_report
from scoring.impact import MIN_GROUP
from storage.database import read_only
from storage.models import Cohort, table

MIN_GROUP_FLOOR = 5
"""The smallest group a report may show: a council may withhold more, never less."""
EVERYONE_TITLE = "All residents"
RENDERERS: dict[str, Callable[[CohortReport], str]] = {
    "text": render_text,
    "json": render_json,
    "html": render_html,
}


def add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cohort", metavar="NAME", help="report on this cohort's members (default: everyone)"
    )
    parser.add_argument(
        "--format",
        choices=tuple(RENDERERS),
        default="text",
        help="text for a terminal (default), json for other tools, html for a standalone page",
    )
    parser.add_argument("--out", metavar="FILE", help="write the report to FILE, not stdout")
    parser.add_argument(
        "--min-group",
        metavar="N",
        type=int,
        default=MIN_GROUP,
        help=f"withhold groups of fewer than N people (default {MIN_GROUP}, at least "
        f"{MIN_GROUP_FLOOR})",
    )
    parser.add_argument(
        "--persona",
        metavar="SLUG",
        help="set the people beside this persona (with --cohort: the cohort's own by default)",
    )
    parser.add_argument(
        "--compare",
        metavar="FILE",
        nargs="+",
        action="extend",
        default=[],
        help="set them beside other councils' benchmark files, pooled",
    )


def report_command(
    arguments: argparse.Namespace, config: Config, now: Callable[[], datetime] | None = None
) -> int:
    """Build the report asked for and write it out."""
    if arguments.min_group < MIN_GROUP_FLOOR:
        raise ConfigError(
            f"--min-group must be at least {MIN_GROUP_FLOOR}: smaller groups could identify "
            "people (a council may withhold more, never less)"
        )
    flow = load_configured_flow(config)
    check_privacy(config)
    try:
        pooled = pooled_files(arguments.compare, flow)
    except BenchmarkError as error:
        raise ConfigError(f"--compare: {error}") from None
    engine = keyed_engine(config)
    tallies = ReportTallies(flow)
    try:
        with engine.connect() as conn:
            report = cohort_report(
                read_only(conn),
                flow,
                arguments.cohort,
                now=(now or _utc_now)(),
                min_group=arguments.min_group,
                tallies=tallies,
            )
            try:
                comparisons = comparisons_for(
                    conn,
                    flow,
                    report,
                    tallies,
                    cohort=arguments.cohort,
                    persona=arguments.persona,
                    pooled=pooled,
                )
            except PersonaError as error:
                raise ConfigError(f"--persona: {error}") from None
    finally:
        engine.dispose()
    for warning in comparisons.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    text = RENDERERS[arguments.format](report)
    text = with_comparisons(arguments.format, text, report, comparisons)
    if arguments.out is None:
        sys.stdout.write(text)
    else:
        write_atomically(Path(arguments.out), text)
    return 0


def cohort_report(
    conn: sa.Connection,
    flow: Flow,
    cohort: str | None,
    *,
    now: datetime,
    min_group: int,
    tallies: ReportTallies | None = None,
) -> CohortReport:
    """The report on the cohort named `cohort` (None: everyone), with a progress bar."""
    if cohort is None:
        selection = Selection()
        title = EVERYONE_TITLE
        description = "Everyone in the database, in every team and cohort"
        names: tuple[str, ...] = ()
    else:
        cohorts = table(Cohort)
        found = conn.execute(
            sa.select(cohorts.c.id, cohorts.c.name, cohorts.c.initiative).where(
                cohorts.c.name == cohort
            )
        ).first()
        if found is None:
            raise ConfigError(
                f"no cohort is named {cohort!r}: the dashboard's Cohorts page (/cohorts) lists "
                "them, or leave out --cohort to report on everyone"
            )
        selection = Selection(cohort_id=found.id)
        title = found.name
        initiative = f"initiative {found.initiative}" if found.initiative else "no initiative given"
        description = f"Cohort {found.name}, {initiative}"
        names = (found.name,)
    with tqdm(
        total=count_people(conn, selection),
        desc="reading people",
        unit=" people",
        file=sys.stderr,
        disable=None,
        leave=False,
    ) as bar:
        report = build_report(
            conn,
            flow,
            selection,
            title=title,
            description=description,
            now=now,
            min_group=min_group,
            progress=lambda done: bar.update(done - bar.n),
            tallies=tallies,
        )
    return replace(report, cohorts=names)


def write_atomically(path: Path, text: str) -> None:
    """`text` into `path`, whole or not at all: a temporary file beside it, renamed over it."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _utc_now() -> datetime:
    return datetime.now(UTC)
