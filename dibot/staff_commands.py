"""`dibot staff add`: dashboard accounts from the command line (the first admin, above all).

The rule it keeps: a password never comes from an argument (it would sit in the shell's history
and in `ps`): it is typed twice at a prompt, or read as one line from stdin with
--password-stdin. Anything unusable (an email that is not one, a short password, an email that
already has an account) is one line and exit status 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

from dashboard.accounts import AccountError, add_staff
from dashboard.secret_key import configured_secret_key
from dibot.config import Config, ConfigError
from dibot.runtime import command_engine
from storage.migrate import SchemaNotCurrent, require_current_schema
from storage.models import STAFF_ROLES

FAILURE = 1


def add_staff_commands(commands: Any, config_option: argparse.ArgumentParser) -> None:
    """`dibot staff add` under the top-level `commands` subparsers."""
    staff = commands.add_parser("staff", help="dashboard accounts for council staff")
    staff_commands = staff.add_subparsers(title="commands", required=True, metavar="COMMAND")
    add = staff_commands.add_parser(
        "add",
        parents=[config_option],
        help="add a member of staff (their team made if new); the password is asked for",
        description="add a member of staff (their team made if new); the password is asked for",
    )
    add.add_argument("--email", required=True, help="their email address, which they sign in with")
    add.add_argument("--team", required=True, help="their team's name")
    add.add_argument("--role", required=True, choices=STAFF_ROLES, help="admin or worker")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password as one line from stdin instead of asking twice",
    )
    add.set_defaults(command=staff_add)


def staff_add(arguments: argparse.Namespace, config: Config) -> int:
    try:
        require_current_schema(config.database.url)
    except SchemaNotCurrent as error:
        print(f"dibot: {error}", file=sys.stderr)
        return FAILURE
    password = _read_password(arguments.password_stdin)
    engine = command_engine(config)
    try:
        member = add_staff(
            engine,
            email=arguments.email,
            team=arguments.team,
            role=arguments.role,
            password=password,
            now=datetime.now(UTC),
        )
    except AccountError as error:
        raise ConfigError(str(error)) from None
    finally:
        engine.dispose()
    print(f"staff added: {member.email} ({member.role}, team {member.team})")
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise ConfigError("--password-stdin: no password on stdin (one line)")
        return password
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != password:
        raise ConfigError("the two passwords are not the same")
    return password


def check_secret_key(config: Config) -> None:
    """Before `dibot serve` starts: the dashboard's secret key, made if it may be; one line on
    stderr when there is none (the dashboard is then off, the webhooks carry on)."""
    try:
        configured_secret_key(config)
    except ConfigError as error:
        print(f"dibot: warning: the staff dashboard is off: {error}", file=sys.stderr)
