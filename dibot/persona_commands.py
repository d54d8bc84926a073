"""`dibot personas load FILE | --illustrative` and `dibot personas list`.

The rule it keeps: a file is stored whole or not at all. Every persona is checked against the
configured flow first and then stored in one transaction; anything wrong (a file that cannot be
read or is not TOML, an unknown question key, an option off its scale, a question the persona's
mode does not ask, a missing name, a slug twice, a cohort that does not exist) is one line naming
the file, the persona and the key, with exit status 2, and nothing is written. Loading a slug
already stored updates it, and the summary says how many were new and how many updated.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from typing import Any

from dibot.config import Config, ConfigError
from dibot.runtime import command_engine, load_configured_flow
from flows.model import Flow
from impact.personas import (
    ILLUSTRATIVE_PERSONAS,
    PersonaError,
    StoredPersona,
    all_personas,
    read_personas,
    store_personas,
)
from scoring.message import unit_name
from scoring.personas import likely_priorities, persona_profile
from storage.database import read_only
from storage.migrate import SchemaNotCurrent, require_current_schema

FAILURE = 1
LANGUAGE = "en"
"""Staff read the list in English, as the rest of the command line."""
LIST_SEPARATOR = "; "
"""Between names in a cell: some names have commas of their own ("Shopping, banking and forms")."""


def add_persona_commands(commands: Any, config_option: argparse.ArgumentParser) -> None:
    """`dibot personas load` and `dibot personas list` under the top-level subparsers."""
    personas = commands.add_parser(
        "personas", help="persona baselines: load them from a file, list them"
    )
    persona_commands = personas.add_subparsers(title="commands", required=True, metavar="COMMAND")
    load = persona_commands.add_parser(
        "load",
        parents=[config_option],
        help="load personas from a TOML file (all or nothing; a known slug is updated)",
        description="load personas from a TOML file (all or nothing; a known slug is updated)",
    )
    which = load.add_mutually_exclusive_group(required=True)
    which.add_argument("file", nargs="?", metavar="FILE", help="the personas' TOML file")
    which.add_argument(
        "--illustrative",
        action="store_true",
        help="load the illustrative set dibot ships (its own, not LOTI's)",
    )
    load.add_argument("--by", metavar="NAME", help="who loaded them (default: you)")
    load.set_defaults(command=personas_load)
    listing = persona_commands.add_parser(
        "list",
        parents=[config_option],
        help="list the stored personas and their likely priorities",
        description="list the stored personas and their likely priorities",
    )
    listing.set_defaults(command=personas_list)


def personas_load(arguments: argparse.Namespace, config: Config) -> int:
    flow = load_configured_flow(config)
    path = ILLUSTRATIVE_PERSONAS if arguments.illustrative else arguments.file
    try:
        specs = read_personas(path, flow)
    except PersonaError as error:
        raise ConfigError(str(error)) from None
    if not _schema_is_current(config):
        return FAILURE
    engine = command_engine(config)
    try:
        with engine.begin() as conn:
            new, updated = store_personas(conn, specs, arguments.by or getpass.getuser())
    except PersonaError as error:
        raise ConfigError(f"{path}: {error}") from None
    finally:
        engine.dispose()
    total = new + updated
    print(f"loaded {total} persona{'' if total == 1 else 's'}: {new} new, {updated} updated")
    return 0


def personas_list(arguments: argparse.Namespace, config: Config) -> int:
    flow = load_configured_flow(config)
    if not _schema_is_current(config):
        return FAILURE
    engine = command_engine(config)
    try:
        with engine.connect() as conn:
            stored = all_personas(read_only(conn))
    finally:
        engine.dispose()
    if not stored:
        print("no personas yet: `dibot personas load FILE` (or --illustrative) loads some")
        return 0
    rows: list[tuple[str, ...]] = [("slug", "name", "mode", "cohort", "priorities", "in the way")]
    rows += [_row(flow, persona) for persona in stored]
    for line in _aligned(rows):
        print(line)
    return 0


def _row(flow: Flow, persona: StoredPersona) -> tuple[str, ...]:
    try:
        profile = persona_profile(flow, persona.answers)
        ranked = likely_priorities(flow, persona.answers)[: flow.priority.top]
    except ValueError as error:  # stored under another flow, which this one no longer fits
        return (persona.slug, persona.name, persona.mode, persona.cohort or "-", f"({error})", "")
    names = [unit_name(flow, priority.unit, LANGUAGE) for priority in ranked]
    in_the_way = [
        flow.item(item).short.get(LANGUAGE) or flow.item(item).short[flow.languages[0]]
        for item in (*profile.missing_basics, *profile.barriers)
    ]
    return (
        persona.slug,
        persona.name,
        persona.mode,
        persona.cohort or "-",
        LIST_SEPARATOR.join(names) or "none",
        LIST_SEPARATOR.join(in_the_way) or "-",
    )


def _aligned(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _schema_is_current(config: Config) -> bool:
    try:
        require_current_schema(config.database.url)
    except SchemaNotCurrent as error:
        print(f"dibot: {error}", file=sys.stderr)
        return False
    return True
