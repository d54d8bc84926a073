"""`dibot export`: everyone's (or one cohort's) assessments as CSV (long or wide), XLSX, a FLOIP
Flow Results package (a directory, or a .zip), outcome flags for cost-benefit models, or a
sector benchmark file (labelled with the council's name, once it is configured).

The rules it keeps:
- `--out PATH` is never overwritten unless `--force`; an existing PATH, a directory that does
  not exist or a cohort no one has is refused in one line (exit status 2) before anything is
  read. The export is put in place only when complete (`impact.exports`): a failed export
  leaves nothing behind and exits with status 1.
- People are pseudonymous unless `--identified` is given; then the file names them by URN
  (phone number or Telegram id), and a one-line warning on stderr says the file holds personal
  data and that the export was recorded in the audit log. Every export is audit-logged as done
  by the operator running the command, unless `--by` names someone else.
- A progress bar on stderr (when stderr is a terminal: tqdm decides), sized by one COUNT of
  the people selected; at the end one line on stdout: what was written, how much, where.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from tqdm import tqdm

from dibot.config import Config, ConfigError, CouncilConfig
from dibot.privacy_commands import keyed_engine
from dibot.runtime import check_privacy, load_configured_flow
from impact.exports import FORMATS, ExportError, check_destination, export
from impact.records import Selection, count_people
from storage.database import read_only
from storage.models import Cohort, table

FAILURE = 1


def add_export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        required=True,
        help="csv: one row per answer; csv-wide: one row per assessment; xlsx: both, with the "
        "item bank; floip: a Flow Results package (a directory, or a .zip if PATH ends .zip); "
        "outcomes: outcome flags per person, and counts per cohort in PATH's -counts.csv; "
        "benchmark: a sector benchmark file (JSON aggregates that name nobody)",
    )
    parser.add_argument("--out", metavar="PATH", required=True, help="where to write (new)")
    parser.add_argument(
        "--cohort", metavar="NAME", help="export this cohort's members (default: everyone)"
    )
    parser.add_argument(
        "--identified",
        action="store_true",
        help="name people by phone number or Telegram id instead of a pseudonym (personal data)",
    )
    parser.add_argument("--by", metavar="NAME", help="who made the export (default: you)")
    parser.add_argument("--force", action="store_true", help="replace PATH if it exists")


def export_command(
    arguments: argparse.Namespace, config: Config, now: Callable[[], datetime] | None = None
) -> int:
    """Write the export asked for, audit it, and say what was written."""
    out = Path(arguments.out)
    fmt: str = arguments.format
    flow = load_configured_flow(config)
    if fmt == "benchmark" and arguments.identified:
        raise ConfigError("--identified: a benchmark file names nobody, so it cannot identify")
    try:
        check_destination(fmt, out, overwrite=arguments.force)
    except ExportError as error:
        raise ConfigError(f"--out: {error}") from None
    check_privacy(config)
    by: str = arguments.by or getpass.getuser()
    engine = keyed_engine(config)
    try:
        with engine.connect() as conn:
            selection = _selection(read_only(conn), arguments.cohort)
            total = count_people(conn, selection)
        with tqdm(
            total=total,
            desc=f"exporting ({fmt})",
            unit=" people",
            file=sys.stderr,
            disable=None,
            leave=False,
        ) as bar:
            done = export(
                engine,
                flow,
                selection,
                format=fmt,
                out=out,
                identified=arguments.identified,
                by=by,
                staff_id=None,
                now=(now or _utc_now)(),
                progress=lambda people: bar.update(people - bar.n),
                overwrite=arguments.force,
                label=_council_label(config),
            )
    except ExportError as error:
        print(f"dibot: {error}", file=sys.stderr)
        return FAILURE
    finally:
        engine.dispose()
    where = " and ".join(str(path) for path in done.paths)
    if done.identified:
        print(
            f"dibot: warning: {where} holds personal data (people are named by phone number "
            "or Telegram id); this export was recorded in the audit log",
            file=sys.stderr,
        )
    print(f"wrote {where} ({fmt}): {done.summary()}")
    return 0


def _selection(conn: sa.Connection, cohort: str | None) -> Selection:
    if cohort is None:
        return Selection()
    cohorts = table(Cohort)
    found = conn.execute(sa.select(cohorts.c.id).where(cohorts.c.name == cohort)).scalar()
    if found is None:
        raise ConfigError(
            f"no cohort is named {cohort!r}: the dashboard's Cohorts page (/cohorts) lists "
            "them, or leave out --cohort to export everyone"
        )
    return Selection(cohort_id=found)


def _council_label(config: Config) -> str | None:
    """A benchmark file's label: the council's name, unless it is still the placeholder."""
    name = config.council.name.strip()
    return None if name == CouncilConfig().name else name or None


def _utc_now() -> datetime:
    return datetime.now(UTC)
