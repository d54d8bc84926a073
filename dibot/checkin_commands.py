"""`dibot checkin` schedules a check-in; `dibot show` prints what is known of one resident.

The rule it keeps: an operator without the dashboard can schedule a resident's (or a cohort's)
check-in and see a resident's status, assessments, gains, check-ins and messages, every time in
the council's time zone (`[outreach] timezone`); a phone number is never printed whole
("07700 900•••"), and nothing is written but the check-ins asked for. Who scheduled it is the
operator running the command unless `--by` names someone else.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dibot.config import Config, ConfigError
from dibot.privacy_commands import keyed_engine, phone_urn
from dibot.runtime import check_privacy, load_configured_flow
from flows.model import Flow
from outreach.checkins import CheckinError, CheckinRequest, schedule_checkins
from outreach.phone import PhoneNumberError, masked_urn
from outreach.quiet_hours import next_send_time, parse_quiet_hours, parse_timezone
from scoring import gains
from storage import timeline
from storage.database import read_only
from storage.models import (
    Answer,
    Assessment,
    Checkin,
    Cohort,
    CohortMember,
    Enrolment,
    FollowUpThread,
    Respondent,
    table,
)
from storage.privacy import keys_of, load_privacy

TIME_FORMAT = "%Y-%m-%d %H:%M %Z"
KIND_NAMES = {"baseline": "baseline", "checkin": "check-in"}


# --- dibot checkin -------------------------------------------------------------------------


def add_checkin_options(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", metavar="NUMBER", help="one resident, e.g. 07700 900123")
    who.add_argument("--cohort", metavar="NAME", help="every member of this cohort")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--at",
        metavar="DATE-OR-ISO-TIME",
        help="2027-03-01 (10:00 that day, council time) or 2027-03-01T09:30+00:00",
    )
    when.add_argument("--after", metavar="SPAN", help="from now: 3m, 12w or 10d")
    parser.add_argument("--by", metavar="NAME", help="who scheduled it (default: you)")


def checkin_command(
    arguments: argparse.Namespace, config: Config, now: Callable[[], datetime] | None = None
) -> int:
    """Schedule (or move) the check-in of one resident or of a cohort's members."""
    if arguments.phone is not None:
        phone_urn(arguments.phone)  # a clear one-line refusal before anything is opened
    outreach = config.outreach
    request = CheckinRequest(
        phone=arguments.phone,
        cohort=arguments.cohort,
        at=arguments.at,
        after=arguments.after,
        scheduled_by=arguments.by or getpass.getuser(),
        timezone=outreach.timezone,
    )
    quiet = parse_quiet_hours(outreach.quiet_hours, outreach.quiet_days, outreach.timezone)
    check_privacy(config)
    engine = keyed_engine(config)
    try:
        done = schedule_checkins(engine, request, (now or _utc_now)())
    except (CheckinError, PhoneNumberError) as error:
        raise ConfigError(str(error)) from None
    finally:
        engine.dispose()
    zone = parse_timezone(outreach.timezone)
    when = _local(done.due_at, zone)
    sent = next_send_time(quiet, done.due_at)
    held = f" (quiet hours: it goes at {_local(sent, zone)})" if sent != done.due_at else ""
    total = done.added + done.moved
    if done.cohort is None:
        verb = "moved to" if done.moved else "scheduled for"
        print(f"check-in {verb} {when}{held}")
    else:
        print(
            f"cohort {done.cohort!r}: {_count(total, 'check-in')} due {when}{held}: "
            f"{done.added} new, {done.moved} moved"
        )
        if done.left_out:
            print(f"left out: {done.left_out} opted out or unreachable", file=sys.stderr)
    if done.without_baseline:
        count = done.without_baseline
        whose = "they have" if done.cohort is None else f"{count} {'has' if count == 1 else 'have'}"
        print(
            f"note: {whose} not finished a first check yet: a check-in is skipped when due "
            "unless they have by then",
            file=sys.stderr,
        )
    return 0


# --- dibot show ----------------------------------------------------------------------------


def add_show_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--phone", metavar="NUMBER", required=True, help="e.g. 07700 900123")


def show_command(arguments: argparse.Namespace, config: Config) -> int:
    """Print a resident's status, assessments, gains, check-ins, open thread and timeline."""
    urn = phone_urn(arguments.phone)
    flow = load_configured_flow(config)
    check_privacy(config)
    zone = parse_timezone(config.outreach.timezone)
    engine = keyed_engine(config)
    try:
        with engine.connect() as conn:
            lines = resident_report(read_only(conn), flow, urn, zone, datetime.now(UTC))
    finally:
        engine.dispose()
    if lines is None:
        print("dibot: no resident has that number", file=sys.stderr)
        return 1
    write_lines(lines, sys.stdout)
    return 0


def write_lines(lines: Sequence[str], out: TextIO) -> None:
    for line in lines:
        out.write(line + "\n")


@dataclass(frozen=True)
class _Assessment:
    id: int
    kind: str
    mode: str
    started_at: datetime
    completed_at: datetime | None
    abandoned_at: datetime | None
    baseline_id: int | None


def resident_report(
    conn: sa.Connection, flow: Flow, urn: str, zone: ZoneInfo, now: datetime
) -> list[str] | None:
    """The lines `dibot show` prints for `urn`; None when no one has it."""
    keys = keys_of(conn)
    digest = load_privacy(conn, keys).digest(urn)
    respondents = table(Respondent)
    person = conn.execute(sa.select(respondents).where(respondents.c.urn_digest == digest)).first()
    if person is None:
        return None
    rid = person.id
    lines = [f"resident {masked_urn(urn)}"]
    lines += _status(conn, person, zone)
    found = _assessments(conn, rid)
    lines += _assessment_lines(found, zone)
    lines += _gain_lines(conn, flow, found)
    lines += _checkin_lines(conn, rid, zone)
    lines += _thread_lines(conn, rid, zone, now)
    lines += _timeline_lines(conn, rid, zone, keys)
    return lines


def _status(conn: sa.Connection, person: Any, zone: ZoneInfo) -> list[str]:
    consent = f"given {_local(person.consented_at, zone)}" if person.consented_at else "not given"
    opted_out = f"yes, {_local(person.opted_out_at, zone)}" if person.opted_out else "no"
    if person.opted_out and person.opted_out_at is None:
        opted_out = "yes"
    cohorts, members = table(Cohort), table(CohortMember)
    names = conn.execute(
        sa.select(cohorts.c.name)
        .join_from(members, cohorts, members.c.cohort_id == cohorts.c.id)
        .where(members.c.respondent_id == person.id)
        .order_by(cohorts.c.name)
    ).scalars()
    lines = [
        "status:",
        f"  language: {person.language}",
        f"  consent: {consent}",
        f"  opted out: {opted_out}",
        f"  unreachable: {'yes' if person.unreachable else 'no'}",
        f"  cohorts: {', '.join(names) or 'none'}",
    ]
    enrolments = table(Enrolment)
    rows = conn.execute(
        sa.select(enrolments, cohorts.c.name.label("cohort"))
        .join_from(enrolments, cohorts, enrolments.c.cohort_id == cohorts.c.id, isouter=True)
        .where(enrolments.c.respondent_id == person.id)
        .order_by(enrolments.c.enrolled_at, enrolments.c.id)
    ).all()
    for row in rows:
        cohort = f", cohort {row.cohort!r}" if row.cohort else ""
        lines.append(
            f"  enrolled {_local(row.enrolled_at, zone)} by {row.enrolled_by} "
            f"({row.lawful_basis}){cohort}"
        )
    if not rows:
        lines.append("  enrolled: never (they texted first)")
    return lines


def _assessments(conn: sa.Connection, respondent_id: int) -> list[_Assessment]:
    a = table(Assessment)
    rows = conn.execute(
        sa.select(
            a.c.id,
            a.c.kind,
            a.c.mode,
            a.c.started_at,
            a.c.completed_at,
            a.c.abandoned_at,
            a.c.baseline_id,
        )
        .where(a.c.respondent_id == respondent_id)
        .order_by(a.c.started_at, a.c.id)
    ).all()
    return [_Assessment(*row) for row in rows]


def _assessment_lines(found: Sequence[_Assessment], zone: ZoneInfo) -> list[str]:
    lines = ["assessments:"]
    for item in found:
        if item.completed_at is not None:
            end = f"completed {_local(item.completed_at, zone)}"
        elif item.abandoned_at is not None:
            end = f"not completed (set aside {_local(item.abandoned_at, zone)})"
        else:
            end = "not completed"
        follows = f", follows #{item.baseline_id}" if item.baseline_id is not None else ""
        kind = KIND_NAMES.get(item.kind, item.kind)
        lines.append(
            f"  #{item.id} {kind}, {item.mode}: started {_local(item.started_at, zone)}, "
            f"{end}{follows}"
        )
    if not found:
        lines.append("  none")
    return lines


def _gain_lines(conn: sa.Connection, flow: Flow, found: Sequence[_Assessment]) -> list[str]:
    lines = ["gains:"]
    for item in found:
        if item.kind != "checkin" or item.baseline_id is None or item.completed_at is None:
            continue
        before = _answers(conn, item.baseline_id)
        after = _answers(conn, item.id)
        lines.append(f"  #{item.id} over #{item.baseline_id}: {gain_summary(flow, before, after)}")
    if len(lines) == 1:
        lines.append("  none yet (no finished check-in)")
    return lines


def gain_summary(flow: Flow, before: Mapping[str, int], after: Mapping[str, int]) -> str:
    """ "more confident with 5 things, less with 1, same 10 (mean +0.38 points)"."""
    compared = gains(flow, before, after)
    better = sum(unit.gain > 0 for unit in compared.units)
    worse = sum(unit.gain < 0 for unit in compared.units)
    same = len(compared.units) - better - worse
    if compared.overall is None:
        return "no skill answered both times"
    return (
        f"more confident with {better} thing{'s' * (better != 1)}, less with {worse}, "
        f"same {same} (mean {compared.overall:+.2f} points)"
    )


def _answers(conn: sa.Connection, assessment_id: int) -> dict[str, int]:
    answers = table(Answer)
    rows = conn.execute(
        sa.select(answers.c.question, answers.c.option).where(
            answers.c.assessment_id == assessment_id, answers.c.option.is_not(None)
        )
    ).all()
    return {row.question: row.option for row in rows}


def _checkin_lines(conn: sa.Connection, respondent_id: int, zone: ZoneInfo) -> list[str]:
    checkins = table(Checkin)
    rows = conn.execute(
        sa.select(checkins)
        .where(checkins.c.respondent_id == respondent_id)
        .order_by(checkins.c.due_at, checkins.c.id)
    ).all()
    lines = ["check-ins:"]
    for row in rows:
        due = _local(row.due_at, zone)
        by = f"by {row.scheduled_by}"
        if row.status == "scheduled":
            lines.append(f"  scheduled for {due} ({by})")
        elif row.status == "invited":
            following = f", following #{row.baseline_id}" if row.baseline_id else ""
            invited = _local(row.invited_at, zone) if row.invited_at else "?"
            lines.append(f"  invited {invited} (due {due}, {by}){following}")
        else:
            lines.append(f"  {row.status} ({row.skip_reason or 'no reason kept'}), due {due}, {by}")
    if not rows:
        lines.append("  none")
    return lines


def _thread_lines(
    conn: sa.Connection, respondent_id: int, zone: ZoneInfo, now: datetime
) -> list[str]:
    threads = table(FollowUpThread)
    row = conn.execute(
        sa.select(threads)
        .where(
            threads.c.respondent_id == respondent_id,
            threads.c.closed_at.is_(None),
            threads.c.closes_at > now,
        )
        .order_by(threads.c.opened_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return ["follow-up thread: none open"]
    return [
        f"follow-up thread: open since {_local(row.opened_at, zone)} by {row.opened_by}, "
        f"closes {_local(row.closes_at, zone)}"
    ]


def _timeline_lines(
    conn: sa.Connection, respondent_id: int, zone: ZoneInfo, keys: Any
) -> list[str]:
    lines = [f"timeline ({zone.key}):"]
    for item in timeline.read(conn, respondent_id, keys):
        status = _delivery(item)
        text = "(text removed)" if item.text is None else " / ".join(item.text.splitlines())
        by = f" by {item.by}" if item.by else ""
        lines.append(
            f"  {_local(item.at, zone)} {item.direction:<3} {item.kind}{by}{status}: {text}"
        )
    if len(lines) == 1:
        lines.append("  nothing yet")
    return lines


def _delivery(item: timeline.TimelineItem) -> str:
    parts = [part for part in (item.send_status, item.delivery_status) if part]
    if item.delivery_error_code is not None:
        parts.append(f"error {item.delivery_error_code}")
    if item.send_error and item.send_status in ("failed", "unknown"):
        parts.append(item.send_error)
    return f" [{', '.join(parts)}]" if parts else ""


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime(TIME_FORMAT)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _utc_now() -> datetime:
    return datetime.now(UTC)
