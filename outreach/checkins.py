"""Scheduling check-ins: `dibot checkin` (by phone number or cohort name) and the dashboard (by
respondent or cohort id) put a re-assessment in the diary of one resident, or of every member
of a cohort.

The rule it keeps: a respondent has at most one pending ("scheduled") check-in; scheduling
again moves it to the new time (one already due then is left as it was), and the result says
how many moved. The time is `--at` (a date means 10:00 that day in the council's time zone) or
`--after` counted on the council's calendar from `now`, so three months after 14:00 on 10
August is 14:00 on 10 November although the clocks went back in between. An unknown number or
cohort, a time already past, or a single resident who opted out or cannot be reached is
refused before anything is written. What the check-in asks is decided when it is due
(`outreach.scheduler`), not here; the same transaction locks each respondent's conversation
first, so two operators scheduling at once still leave one pending check-in each. The
dashboard's variant (`schedule_for`) runs in the caller's transaction and schedules only the
respondents its `within` condition holds (the member's team). Time is the `now` argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
class CheckinTarget:
    """Whom to schedule, by id (the dashboard's `CheckinRequest`): one respondent, or the
    members of one cohort."""

    respondent_id: int | None
    cohort_id: int | None
    at: str | None
    """As `CheckinRequest.at`."""
    after: str | None
    scheduled_by: str
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True)
class Scheduled:
    due_at: datetime
    """In UTC."""
    added: int
    """Respondents who had no pending check-in and now have one."""
    moved: int
    """Respondents who had a pending check-in, now due at `due_at`."""
    left_out: int
    """Cohort members not scheduled: opted out, or messages cannot reach them."""
    without_baseline: int
    """Of those scheduled, how many have not finished an assessment yet: unless they do by
    then, their check-in is skipped when it comes due."""
    cohort: str | None
    already: int = 0
    """Of `moved`, those whose pending check-in was due at `due_at` already: left as it was
    (who scheduled it, and when, included)."""
    was_due: datetime | None = None
    """The earliest time a check-in moved to `due_at` was due before (None: none moved)."""
    opted_out: int = 0
    """Of `left_out`, those who opted out."""
    unreachable: int = 0
    """Of `left_out`, those messages cannot reach (and not opted out)."""


def due_time(request: CheckinRequest | CheckinTarget, now: datetime) -> datetime:
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
    except OverflowError:  # a time with an offset at the very end of year 9999
        raise CheckinError(f"--at {request.at} is beyond the calendar") from None
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
        return _schedule(
            conn, request.scheduled_by, members, cohort_id, cohort_name, due, now, sa.true()
        )


def schedule_for(
    conn: sa.Connection,
    target: CheckinTarget,
    now: datetime,
    *,
    within: sa.ColumnElement[bool] | None = None,
) -> Scheduled:
    """Schedule (or move) the check-in of respondent `target.respondent_id`, or of each member
    of cohort `target.cohort_id`, in the caller's transaction. `within` is a condition on the
    respondents table: only the respondents it holds are scheduled, or counted (the dashboard
    passes the signed-in member's scope); None: everyone."""
    if (target.respondent_id is None) == (target.cohort_id is None):
        raise CheckinError("give one resident or one cohort")
    due = due_time(target, now)
    scope = sa.true() if within is None else within
    if target.respondent_id is not None:
        found = conn.execute(
            sa.select(respondents.c.id, respondents.c.opted_out, respondents.c.unreachable).where(
                respondents.c.id == target.respondent_id, scope
            )
        ).first()
        members = _reachable(found)
        cohort_id, cohort_name = None, None
    else:
        cohort_id = target.cohort_id
        cohort_name = conn.execute(
            sa.select(cohorts.c.name).where(cohorts.c.id == cohort_id)
        ).scalar_one_or_none()
        if cohort_name is None:
            raise CheckinError("there is no such cohort")
        members = sa.select(cohort_members.c.respondent_id).where(
            cohort_members.c.cohort_id == cohort_id
        )
    return _schedule(conn, target.scheduled_by, members, cohort_id, cohort_name, due, now, scope)


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
    return _reachable(found)


def _reachable(found: Any) -> sa.Select[tuple[int]]:
    """The one respondent `found`, refused when there is none or no check-in can go to them."""
    if found is None:
        raise CheckinError("there is no such resident")
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
    scheduled_by: str,
    members: sa.Select[tuple[int]],
    cohort_id: int | None,
    cohort_name: str | None,
    due: datetime,
    now: datetime,
    within: sa.ColumnElement[bool],
) -> Scheduled:
    r = respondents.c
    counted = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(r.opted_out),
            sa.func.count().filter(~r.opted_out & r.unreachable),
        )
        .select_from(respondents)
        .where(r.id.in_(members), within)
    ).one()
    everyone, opted_out, unreachable = counted
    if cohort_id is not None and everyone == 0:
        raise CheckinError(f"cohort {cohort_name!r} has no members yet")
    chosen = sa.select(r.id).where(r.id.in_(members), within, ~r.opted_out, ~r.unreachable)
    # Each respondent's turns lock their conversation: so does this, so that two operators
    # scheduling the same resident at once leave one pending check-in, not two.
    locked = conn.execute(
        sa.select(conversations.c.respondent_id)
        .where(conversations.c.respondent_id.in_(chosen))
        .order_by(conversations.c.respondent_id)
        .with_for_update()
    ).scalars()
    reachable = list(locked)
    was_due: dict[int, datetime] = {
        row.respondent_id: row.due_at
        for row in conn.execute(
            sa.select(checkins.c.respondent_id, checkins.c.due_at).where(
                checkins.c.status == PENDING, checkins.c.respondent_id.in_(chosen)
            )
        )
    }
    pending = set(was_due)
    already = sum(at == due for at in was_due.values())
    by = scheduled_by[:MAX_NAME]
    if len(pending) > already:
        conn.execute(
            sa.update(checkins)
            .where(
                checkins.c.status == PENDING,
                checkins.c.respondent_id.in_(chosen),
                checkins.c.due_at != due,
            )
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
    earlier = [at for at in was_due.values() if at != due]
    return Scheduled(
        due_at=due,
        added=len(added),
        moved=len(pending),
        left_out=everyone - len(reachable),
        without_baseline=without_baseline,
        cohort=cohort_name,
        already=already,
        was_due=min(earlier) if earlier else None,
        opted_out=opted_out,
        unreachable=unreachable,
    )
