"""`dibot demo`: a database of synthetic residents to try every report on (`impact.demo`).

The rule it keeps: the demo goes only into a database that holds no respondents (anything else
is refused in one line, exit status 2, and nothing is written), all of it in one transaction; a
new SQLite file is migrated first, as `dibot chat` does. A progress bar shows on stderr when it
is a terminal; stdout gets a short summary and the commands to try next.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TextIO

from tqdm import tqdm

from dibot.config import Config, ConfigError
from dibot.privacy_commands import keyed_engine
from dibot.runtime import check_privacy, configured_keys, load_configured_flow
from impact.demo import REFUSED, DemoRefused, DemoSummary, holds_respondents, make_demo
from storage.migrate import SchemaNotCurrent, require_current_schema, upgrade

FAILURE = 1
MOST_RESPONDENTS = 1_000_000


def add_demo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--respondents",
        type=int,
        default=300,
        metavar="N",
        help="how many synthetic residents (default 300)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=2026,
        metavar="S",
        help="the same seed gives the same residents and answers (default 2026)",
    )


def demo_command(arguments: argparse.Namespace, config: Config) -> int:
    """Fill an empty database with the demo, then say what it holds and what to try."""
    if not 1 <= arguments.respondents <= MOST_RESPONDENTS:
        raise ConfigError(f"--respondents must be 1 to {MOST_RESPONDENTS:,}")
    flow = load_configured_flow(config)
    if config.database.url.startswith("sqlite"):  # a new file: made ready, as `dibot chat` does
        upgrade(config.database.url, keys=lambda: configured_keys(config, create=True))
    else:
        try:
            require_current_schema(config.database.url)
        except SchemaNotCurrent as error:
            print(f"dibot: {error}", file=sys.stderr)
            return FAILURE
    check_privacy(config)
    engine = keyed_engine(config)
    try:
        with engine.connect() as conn:
            if holds_respondents(conn):  # before the progress bar shows
                raise DemoRefused(REFUSED)
        with (
            tqdm(
                total=arguments.respondents,
                unit=" residents",
                file=sys.stderr,
                disable=None,
                desc="demo",
            ) as bar,
            engine.begin() as conn,
        ):
            summary = make_demo(
                conn,
                flow,
                respondents=arguments.respondents,
                seed=arguments.seed,
                now=datetime.now(UTC),
                progress=bar.update,
            )
    except DemoRefused as error:
        raise ConfigError(str(error)) from None
    finally:
        engine.dispose()
    write_summary(summary, sys.stdout)
    return 0


def write_summary(summary: DemoSummary, out: TextIO) -> None:
    """What the demo holds, and the commands to try on it."""
    lines = [
        f"demo written: {summary.respondents:,} synthetic residents (phone numbers from "
        "07700 900000-900999, Ofcom's drama range)",
    ]
    for initiative, cohorts in summary.initiatives().items():
        named = ", ".join(f'"{cohort.name}" ({cohort.members:,})' for cohort in cohorts)
        lines.append(f"  {initiative}: {named}")
    lines.append(f"  in no cohort: {summary.without_cohort:,}")
    lines.append(
        f"  baselines: {summary.baselines:,} started, {summary.completed:,} completed; "
        f"check-ins: {summary.checkins:,}; answers: {summary.answers:,}"
    )
    if summary.personas:
        lines.append(f"  illustrative personas: {summary.personas}")
    first = summary.cohorts[0].name if summary.cohorts else "NAME"
    lines += [
        "try:",
        "  dibot report",
        f'  dibot report --cohort "{first}"',
        "  dibot export --format xlsx --out demo.xlsx",
        "  dibot show --phone 07700900001",
    ]
    out.write("\n".join(lines) + "\n")
