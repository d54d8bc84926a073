"""The outreach commands: `dibot enrol` (more to come: send, checkin, show).

The rule it keeps: each command says in a line or two what it did and what it did not, and
why; never a whole phone number or a message. Who did it is the operator running the command
unless `--by` names someone else. `--team` enrols for a team that exists (`dibot staff add`
makes teams): the resident is given to it, and only its cohorts are joined.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa

from dibot.config import Config, ConfigError
from dibot.privacy_commands import keyed_engine, phone_urn
from dibot.runtime import check_privacy, load_configured_flow
from outreach.enrolment import EnrolmentError, EnrolmentRequest, enrol
from outreach.phone import PhoneNumberError
from outreach.quiet_hours import parse_quiet_hours
from storage.database import read_only
from storage.models import Team, table


def add_enrol_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--phone", metavar="NUMBER", help="a UK number, e.g. 07700 900123")
    parser.add_argument(
        "--telegram", metavar="CHAT_ID", help="invite by Telegram (someone who started the bot)"
    )
    parser.add_argument("--cohort", metavar="NAME", help="add them to this cohort (made if new)")
    parser.add_argument("--initiative", metavar="NAME", help="the cohort's initiative, if new")
    parser.add_argument("--language", metavar="LANG", help="their language (en, cy…)")
    parser.add_argument("--by", metavar="NAME", help="who enrolled them (default: you)")
    parser.add_argument("--lawful-basis", metavar="BASIS", help="default: [outreach] lawful_basis")
    parser.add_argument("--team", metavar="NAME", help="enrol for this team (it must exist)")


def enrol_command(arguments: argparse.Namespace, config: Config) -> int:
    """Enrol one resident and queue their invitation."""
    if arguments.phone is not None:
        phone_urn(arguments.phone)  # a clear one-line refusal before anything is opened
    request = EnrolmentRequest(
        phone=arguments.phone,
        telegram=arguments.telegram,
        cohort=arguments.cohort,
        initiative=arguments.initiative,
        language=arguments.language,
        enrolled_by=arguments.by or getpass.getuser(),
        lawful_basis=arguments.lawful_basis or config.outreach.lawful_basis,
    )
    outreach = config.outreach
    quiet = parse_quiet_hours(outreach.quiet_hours, outreach.quiet_days, outreach.timezone)
    flow = load_configured_flow(config)
    check_privacy(config)
    engine = keyed_engine(config)
    try:
        if arguments.team is not None:
            request = replace(request, team_id=team_named(engine, arguments.team))
        enrolled = enrol(engine, flow, request, quiet, datetime.now(UTC))
    except (EnrolmentError, PhoneNumberError) as error:
        raise ConfigError(str(error)) from None
    finally:
        engine.dispose()
    who = "a new resident" if enrolled.new else "a resident already known"
    where = f" in cohort {enrolled.cohort!r}" if enrolled.cohort else ""
    print(f"enrolled {who}{where}")
    if enrolled.invited:
        when = (
            f", held by quiet hours until {enrolled.send_after:%Y-%m-%d %H:%M} UTC"
            if enrolled.send_after
            else ""
        )
        segments = enrolled.invitation_segments
        print(f"invitation queued: 1 message, {segments} SMS segment{'s' * (segments != 1)}{when}")
    else:
        print(f"not invited: {enrolled.not_invited_because}", file=sys.stderr)
    return 0


def team_named(engine: sa.Engine, name: str) -> int:
    """The id of the team called `name`; EnrolmentError if there is none."""
    teams = table(Team)
    with engine.connect() as conn:
        team_id = (
            read_only(conn)
            .execute(sa.select(teams.c.id).where(teams.c.name == name.strip()))
            .scalar_one_or_none()
        )
    if team_id is None:
        raise EnrolmentError(
            f"--team: no team is called {name.strip()!r} (dibot staff add makes one)"
        )
    return int(team_id)
