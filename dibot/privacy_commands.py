"""The personal-data commands: `dibot retention`, `dibot erase`, `dibot sar`, `dibot db rekey`.

The rule it keeps: each says in a few lines what it removed, wrote or re-encrypted, never a
phone number, a message or a key; a person is named by `--phone` (a UK number, read by
`outreach.phone` into the URN the Twilio channel stores: 07700 900123 is tel:+447700900123) or
by `--urn` as stored (`tel:+447700900123`, `telegram:123456`). The
database's keys are the configured ones, checked against the database before anything is read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from dibot.config import Config, ConfigError
from dibot.runtime import check_privacy, command_engine, configured_keys
from outreach.phone import PhoneNumberError, urn_for_phone
from storage.database import PRIVATE_FILE
from storage.personal_data import (
    RetentionPolicy,
    apply_retention,
    erase,
    rekey,
    subject_access,
)
from storage.privacy import keys_option

NOT_HELD = 1


class NotAPhoneNumber(ConfigError):
    """A --phone that is not a UK phone number (exit status 2, like any usage error)."""


def phone_urn(number: str) -> str:
    """`number` as the Twilio channel's URN: "07700 900123", "+44 7700 900123" and
    "0044 7700 900123" all give "tel:+447700900123" (`outreach.phone`). The message of a
    number refused says why, never the number."""
    try:
        return urn_for_phone(number)
    except PhoneNumberError as error:
        raise NotAPhoneNumber(
            f"--phone: {error} (a number from abroad: give --urn tel:+<country code>…)"
        ) from None


def person(arguments: argparse.Namespace) -> str:
    """The URN the command is about, from --phone or --urn."""
    return phone_urn(arguments.phone) if arguments.phone is not None else str(arguments.urn)


def keyed_engine(config: Config) -> sa.Engine:
    """An engine for one command, with the configured keys."""
    return command_engine(
        config, poolclass=sa.NullPool, execution_options=keys_option(configured_keys(config))
    )


def retention(
    arguments: argparse.Namespace, config: Config, now: Callable[[], datetime] | None = None
) -> int:
    """Remove what the retention policy no longer keeps, and say how much."""
    policy = RetentionPolicy(
        raw_text_days=config.privacy.raw_text_days, inbox_days=config.privacy.inbox_days
    )
    engine = command_engine(config, poolclass=sa.NullPool)
    try:
        report = apply_retention(engine, policy, (now or _utc_now)())
    finally:
        engine.dispose()
    print(
        f"typed answer text older than {policy.raw_text_days} days: "
        f"removed from {report.raw_texts} answers"
    )
    print(
        f"message texts on timelines older than {policy.raw_text_days} days: "
        f"removed from {report.timeline_texts} messages"
    )
    print(f"inbox messages older than {policy.inbox_days} days: {report.inbox_messages} removed")
    print(
        f"outbox messages sent or given up over {policy.inbox_days} days ago: "
        f"{report.outbox_messages} removed"
    )
    return 0


def erase_person(arguments: argparse.Namespace, config: Config) -> int:
    """Delete everything held about one person, and say what."""
    urn = person(arguments)
    privacy = check_privacy(config)
    engine = keyed_engine(config)
    try:
        removed = erase(engine, privacy, urn)
    finally:
        engine.dispose()
    if removed is None:
        print("dibot: nobody with that number or URN is held; nothing removed", file=sys.stderr)
        return NOT_HELD
    print("erased: " + ", ".join(f"{count} {name}" for name, count in removed.items() if count))
    return 0


def subject_access_export(
    arguments: argparse.Namespace, config: Config, now: Callable[[], datetime] | None = None
) -> int:
    """Write everything held about one person to --out (a new file, readable by its owner)."""
    urn = person(arguments)
    out = Path(arguments.out)
    if out.exists():
        raise ConfigError(f"--out {out} exists: give a new file")
    privacy = check_privacy(config)
    engine = keyed_engine(config)
    try:
        held = subject_access(engine, privacy, urn, (now or _utc_now)())
    finally:
        engine.dispose()
    if held is None:
        print("dibot: nobody with that number or URN is held; no file written", file=sys.stderr)
        return NOT_HELD
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(held, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    answers = sum(len(assessment["answers"]) for assessment in held["assessments"])
    print(
        f"wrote {out}: {len(held['assessments'])} assessments, {answers} answers, "
        f"{len(held['inbox'])} inbox and {len(held['outbox'])} outbox messages, "
        f"{len(held['timeline'])} timeline messages, {len(held['followup_threads'])} follow-up "
        f"threads, {len(held['checkins'])} check-ins"
    )
    return 0


def db_rekey(arguments: argparse.Namespace, config: Config) -> int:
    """Encrypt everything again under the first configured key."""
    check_privacy(config)
    keys = configured_keys(config)
    engine = keyed_engine(config)
    try:
        report = rekey(engine, keys)
    finally:
        engine.dispose()
    print(
        f"re-encrypted under the first of {keys.count} keys: {report.urns} respondents' "
        f"URNs, {report.raw_texts} typed answers, {report.timeline_texts} timeline texts and "
        "the lookup key"
    )
    return 0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def add_person_options(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", metavar="NUMBER", help="their phone number, e.g. 07700 900123")
    who.add_argument("--urn", metavar="URN", help="their URN as stored, e.g. telegram:123456")
