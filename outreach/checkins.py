"""Scheduling check-ins: `dibot checkin` puts a re-assessment in the diary of one resident, or
of every member of a cohort.

The rule it keeps: a respondent has at most one pending ("scheduled") check-in; scheduling
again moves it to the new time, and the result says how many moved. The time is `--at` (a date
means 10:00 that day in the council's time zone) or `--after` counted on the council's calendar
from `now`, so three months after 14:00 on 10 August is 14:00 on 10 November although the
clocks went back in between. An unknown number or cohort, a time already past, or a single
resident who opted out or cannot be reached is refused before anything is written. What the
check-in asks is decided when it is due (`outreach.scheduler`), not here; the same transaction
locks each respondent's conversation first, so two operators scheduling at once still leave
one pending check-in each. Time is the `now` argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from outreach.phone import urn_for_phone
from outreach.quiet_hours import DEFAULT_TIMEZONE, QuietHoursError, parse_timezone
from outreach.timing import TimingError, add_after, parse_after, parse_at
from storage.models import (
    Assessment,
    Checkin,
    Cohort,
    CohortMember,
    Conversation,
    Respondent,
    table,
)
from storage.privacy import keys_of, load_privacy

checkins = table(Checkin)
cohorts = table(Cohort)
cohort_members = table(CohortMember)
conversations = table(Conversation)
respondents = table(Respondent)
assessments = table(Assessment)

PENDING = "scheduled"
MAX_NAME = 100


class CheckinError(ValueError):
    """A check-in that cannot be scheduled; the message says why, never a phone number."""


@dataclass(frozen=True)
class CheckinRequest:
    phone: str | None
    cohort: str | None
    at: str | None
    """A date ("2027-03-01", 10:00 local) or an ISO time with its offset."""
    after: str | None
    """ "3m", "12w", "10d": from now, on the council's calendar."""
    scheduled_by: str
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True)
class Scheduled:
    due_at: datetime
    """In UTC."""
    added: int
    """Respondents who had no pending check-in and now have one."""
    moved: int
    """Respondents whose pending check-in was moved to `due_at`."""
    left_out: int
    """Cohort members not scheduled: opted out, or messages cannot reach them."""
    without_baseline: int
    """Of those scheduled, how many have not finished an assessment yet: unless they do by
    then, their check-in is skipped when it comes due."""
    cohort: str | None


def due_time(request: CheckinRequest, now: datetime) -> datetime:
    """When the check-in is due, in UTC; refused when it is not after `now`."""
    if (request.at is None) == (request.after is None):
        raise CheckinError("give one of --at DATE-OR-TIME or --after 3m")
    try:
        zone = parse_timezone(request.timezone)
        if request.at is not None:
            due = parse_at(request.at, zone)
        else:
            due = add_after(now, parse_after(request.after or ""), zone)
    except (TimingError, QuietHoursError) as error:
        raise CheckinError(str(error)) from None
    if due <= now:
        local = due.astimezone(zone)
        raise CheckinError(f"--at {request.at} ({local:%Y-%m-%d %H:%M %Z}) is not in the future")
    return due


def schedule_checkins(engine: sa.Engine, request: CheckinRequest, now: datetime) -> Scheduled:
    """Schedule (or move) the check-in of the resident with `request.phone`, or of each
    member of `request.cohort`, in one transaction."""
    if (request.phone is None) == (request.cohort is None):
        raise CheckinError("give one of --phone NUMBER or --cohort NAME")
    due = due_time(request, now)
    with engine.begin() as conn:
        if request.phone is not None:
            cohort_id, cohort_name = None, None
            members = _one_resident(conn, request.phone)
        else:
            cohort_id, cohort_name = _cohort(conn, request.cohort or "")
            members = sa.select(cohort_members.c.respondent_id).where(
                cohort_members.c.cohort_id == cohort_id
            )
        return _schedule(conn, request, members, cohort_id, cohort_name, due, now)


def _one_resident(conn: sa.Connection, phone: str) -> sa.Select[tuple[int]]:
    urn = urn_for_phone(phone)
    digest = load_privacy(conn, keys_of(conn)).digest(urn)
    found = conn.execute(
        sa.select(respondents.c.id, respondents.c.opted_out, respondents.c.unreachable).where(
            respondents.c.urn_digest == digest
        )
    ).first()
    if found is None:
        raise CheckinError(
            "no resident has that number: enrol them first (dibot enrol --phone NUMBER)"
        )
    if found.opted_out:
        raise CheckinError("they opted out: no check-in can go to them unless they text START")
    if found.unreachable:
        raise CheckinError("messages cannot reach them: no check-in until they write again")
    return sa.select(sa.literal(found.id, sa.Integer()).label("respondent_id"))


def _cohort(conn: sa.Connection, name: str) -> tuple[int, str]:
    cleaned = name.strip()
    if not 0 < len(cleaned) <= MAX_NAME:
        raise CheckinError(f"--cohort must be 1 to {MAX_NAME} characters")
    cohort_id = conn.execute(
        sa.select(cohorts.c.id).where(cohorts.c.name == cleaned)
    ).scalar_one_or_none()
    if cohort_id is None:
        known = conn.execute(sa.select(cohorts.c.name).order_by(cohorts.c.name).limit(6)).scalars()
        names = ", ".join(repr(known_name) for known_name in known) or "none yet"
        raise CheckinError(f"no cohort named {cleaned!r} (cohorts: {names})")
    return cohort_id, cleaned


def _schedule(
    conn: sa.Connection,
    request: CheckinRequest,
    members: sa.Select[tuple[int]],
    cohort_id: int | None,
    cohort_name: str | None,
    due: datetime,
    now: datetime,
) -> Scheduled:
    everyone = conn.execute(
        sa.select(sa.func.count()).select_from(respondents).where(respondents.c.id.in_(members))
    ).scalar_one()
    if cohort_id is not None and everyone == 0:
        raise CheckinError(f"cohort {cohort_name!r} has no members yet")
    chosen = sa.select(respondents.c.id).where(
        respondents.c.id.in_(members), ~respondents.c.opted_out, ~respondents.c.unreachable
    )
    # Each respondent's turns lock their conversation: so does this, so that two operators
    # scheduling the same resident at once leave one pending check-in, not two.
    locked = conn.execute(
        sa.select(conversations.c.respondent_id)
        .where(conversations.c.respondent_id.in_(chosen))
        .order_by(conversations.c.respondent_id)
        .with_for_update()
    ).scalars()
    reachable = list(locked)
    pending = set(
        conn.execute(
            sa.select(checkins.c.respondent_id).where(
                checkins.c.status == PENDING, checkins.c.respondent_id.in_(chosen)
            )
        ).scalars()
    )
    by = request.scheduled_by[:MAX_NAME]
    if pending:
        conn.execute(
            sa.update(checkins)
            .where(checkins.c.status == PENDING, checkins.c.respondent_id.in_(chosen))
            .values(due_at=due, scheduled_by=by, scheduled_at=now, cohort_id=cohort_id)
        )
    added = [respondent for respondent in reachable if respondent not in pending]
    if added:
        conn.execute(
            sa.insert(checkins),
            [
                {
                    "respondent_id": respondent,
                    "cohort_id": cohort_id,
                    "due_at": due,
                    "status": PENDING,
                    "scheduled_by": by,
                    "scheduled_at": now,
                }
                for respondent in added
            ],
        )
    finished = sa.select(assessments.c.respondent_id).where(
        assessments.c.kind == "baseline", assessments.c.completed_at.is_not(None)
    )
    without_baseline = conn.execute(
        sa.select(sa.func.count())
        .select_from(respondents)
        .where(respondents.c.id.in_(chosen), respondents.c.id.not_in(finished))
    ).scalar_one()
    return Scheduled(
        due_at=due,
        added=len(added),
        moved=len(pending),
        left_out=everyone - len(reachable),
        without_baseline=without_baseline,
        cohort=cohort_name,
    )
