"""Check-ins on the dashboard: what is due, what went out and what became of it, and scheduling
them for one resident or a cohort.

The rules it keeps:
- a worker sees and schedules only their own team's residents (an admin, everyone's), through
  `respondent_scope`, `respondent_or_404` and `cohort_or_404`: another team's respondent, cohort
  or paging cursor in a URL answers 404, like one that does not exist;
- the list is by state (due, sent, failed, skipped), counted per state and keyset-paged
  `PAGE` rows at a time (due: the next first; the others: the latest first), so it stays quick
  with tens of thousands of check-ins; each row says in plain words what became of it (the
  outbox row's send and delivery status, or why it was skipped or is held), with the resident's
  number masked and every time in the council's time zone;
- scheduling follows `dibot checkin`'s rules (`outreach.checkins.schedule_for`), in one
  transaction with its audit line, and says what it did after a redirect (POST/redirect/GET);
  a date is a GOV.UK date input, read here with the Design System's error messages.
A page is a query (`_rows`, `_counts`), pure functions (`describe`, `outcome_message`,
`read_when`) and a template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import StringField

from dashboard.accounts import StaffMember
from dashboard.site import Site, cohort_or_404, cohort_scope, respondent_or_404, respondent_scope
from outreach.checkins import CheckinError, CheckinTarget, Scheduled, schedule_for
from outreach.phone import masked_urn
from outreach.quiet_hours import QuietHours, next_send_time, parse_quiet_hours, parse_timezone
from outreach.timing import After, add_after, parse_at
from storage.database import read_only
from storage.models import (
    Assessment,
    Checkin,
    Cohort,
    FollowUpThread,
    OutboxEntry,
    Respondent,
    table,
)
from storage.privacy import keys_of
from storage.repository import open_thread

checkins = table(Checkin)
outbox = table(OutboxEntry)
respondents = table(Respondent)
cohorts = table(Cohort)
assessments = table(Assessment)
threads = table(FollowUpThread)

PAGE = 50
STATES = ("due", "sent", "failed", "skipped")
STATE_NAMES = {"due": "Due", "sent": "Sent", "failed": "Failed", "skipped": "Skipped"}
AFTER_CHOICES = (
    ("1m", "In 1 month"),
    ("3m", "In 3 months"),
    ("6m", "In 6 months"),
    ("12m", "In 12 months"),
)
ON_A_DATE = "date"
FURTHEST = After(120, "m")
"""The latest a check-in may be: ten years from today."""
MAX_AUDIT_DETAIL = 200

# --- the states, in SQL ----------------------------------------------------------------------

_send_status = sa.func.coalesce(outbox.c.status, "")
_delivery = sa.func.coalesce(outbox.c.delivery_status, "")
_invited = checkins.c.status == "invited"
_went_wrong = _send_status.in_(("failed", "unknown")) | _delivery.in_(("undelivered", "failed"))
STATE_WHERE: dict[str, sa.ColumnElement[bool]] = {
    "due": checkins.c.status == "scheduled",
    "sent": _invited & ~_went_wrong,
    "failed": _invited & _went_wrong,
    "skipped": checkins.c.status == "skipped",
}
_sent_key = sa.func.coalesce(checkins.c.invited_at, checkins.c.due_at)
SORT_KEY: dict[str, sa.ColumnElement[datetime]] = {
    "due": checkins.c.due_at,
    "sent": _sent_key,
    "failed": _sent_key,
    "skipped": checkins.c.due_at,
}
NEWEST_FIRST = {"due": False, "sent": True, "failed": True, "skipped": True}
_state_of = sa.case(
    *((condition, name) for name, condition in STATE_WHERE.items()), else_="other"
).label("state")

_finished_baseline = (
    sa.exists()
    .where(
        assessments.c.respondent_id == checkins.c.respondent_id,
        assessments.c.kind == "baseline",
        assessments.c.completed_at.is_not(None),
    )
    .label("has_baseline")
)


_answered = (
    sa.select(sa.func.min(assessments.c.completed_at))
    .where(
        assessments.c.respondent_id == checkins.c.respondent_id,
        assessments.c.kind == "checkin",
        assessments.c.baseline_id == checkins.c.baseline_id,
        assessments.c.started_at >= checkins.c.invited_at,
    )
    .scalar_subquery()
    .label("answered_at")
)
"""When they finished the check-in assessment it invited them to (None: not yet)."""


def _thread_open(now: datetime) -> sa.Label[bool]:
    return (
        sa.exists()
        .where(threads.c.respondent_id == checkins.c.respondent_id, *open_thread(now))
        .label("thread_open")
    )


def _listing(member: StaffMember, now: datetime) -> sa.Select[Any]:
    return (
        sa.select(
            checkins.c.id,
            checkins.c.respondent_id,
            checkins.c.due_at,
            checkins.c.status,
            checkins.c.skip_reason,
            checkins.c.scheduled_by,
            checkins.c.invited_at,
            cohorts.c.id.label("cohort_id"),
            cohorts.c.name.label("cohort"),
            respondents.c.urn_cipher,
            respondents.c.opted_out,
            respondents.c.unreachable,
            outbox.c.status.label("send_status"),
            outbox.c.next_attempt_at,
            outbox.c.attempts,
            outbox.c.error.label("send_error"),
            outbox.c.delivery_status,
            outbox.c.delivery_error_code,
            _finished_baseline,
            _answered,
            _thread_open(now),
        )
        .join_from(checkins, respondents, respondents.c.id == checkins.c.respondent_id)
        .join(outbox, outbox.c.id == checkins.c.outbox_id, isouter=True)
        .join(cohorts, cohorts.c.id == checkins.c.cohort_id, isouter=True)
        .where(respondent_scope(member))
    )


def _counts(conn: sa.Connection, member: StaffMember) -> dict[str, int]:
    rows = conn.execute(
        sa.select(_state_of, sa.func.count())
        .select_from(checkins)
        .join(respondents, respondents.c.id == checkins.c.respondent_id)
        .join(outbox, outbox.c.id == checkins.c.outbox_id, isouter=True)
        .where(respondent_scope(member))
        .group_by(_state_of)
    ).all()
    found = {str(state): int(number) for state, number in rows}
    return {state: found.get(state, 0) for state in STATES}


def _rows(
    conn: sa.Connection, member: StaffMember, state: str, after: int | None, now: datetime
) -> list[Any]:
    """Up to PAGE + 1 check-ins in `state`, in the state's order, from after check-in `after`
    (the keyset cursor: 404 when the member may not see it)."""
    key = SORT_KEY[state]
    query = _listing(member, now).where(STATE_WHERE[state])
    if after is not None:
        mark = conn.execute(
            sa.select(key, checkins.c.id)
            .join_from(checkins, respondents, respondents.c.id == checkins.c.respondent_id)
            .where(checkins.c.id == after, respondent_scope(member))
        ).first()
        if mark is None:
            abort(404)
        at, last = mark
        if NEWEST_FIRST[state]:
            query = query.where(sa.or_(key < at, sa.and_(key == at, checkins.c.id < last)))
        else:
            query = query.where(sa.or_(key > at, sa.and_(key == at, checkins.c.id > last)))
    order = (key.desc(), checkins.c.id.desc()) if NEWEST_FIRST[state] else (key, checkins.c.id)
    return list(conn.execute(query.order_by(*order).limit(PAGE + 1)).all())


def _respondent_checkins(
    conn: sa.Connection, member: StaffMember, respondent_id: int, now: datetime
) -> list[Any]:
    query = _listing(member, now).where(checkins.c.respondent_id == respondent_id)
    return list(conn.execute(query.order_by(checkins.c.due_at.desc(), checkins.c.id.desc())))


# --- what a row says (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    tag: str
    """A word or two, for a GOV.UK tag."""
    colour: str
    """The tag's colour modifier ("blue", "green", "red", "grey", "yellow", "orange")."""
    words: str
    """What became of it, in a sentence."""


DELIVERY_ERRORS = {
    30003: "their phone was off or out of signal",
    30004: "the message was blocked",
    30005: "the number is unknown or no longer in use",
    30006: "the number cannot take texts (a landline?)",
    30007: "the network filtered it as spam",
    30008: "the network gave no reason",
}
SKIP_REASONS = {
    "opted out": "They opted out (texted STOP)",
    "messages cannot reach them": "Messages cannot reach them",
    "no finished baseline assessment to follow": (
        "No baseline to follow: they had not finished a first assessment"
    ),
    "they said no to the check": "They said no to the check",
    "they have not agreed to take part": "They had not agreed to take part",
}
PHONE_LIKE = re.compile(r"\+?\d[\d\s().-]{6,}\d")


def when(moment: datetime, zone: ZoneInfo) -> str:
    """ "3 March 2027 at 10am", "1 June 2027 at 4:35pm", in the council's time zone."""
    local = moment.astimezone(zone)
    hour = local.hour % 12 or 12
    minutes = f":{local.minute:02d}" if local.minute else ""
    return f"{day_text(local.date())} at {hour}{minutes}{'am' if local.hour < 12 else 'pm'}"


def day_text(day: date) -> str:
    return f"{day.day} {day:%B} {day.year}"


def send_failure(error: str | None) -> str:
    """Why the outbox gave up on a row, in plain words, never with a phone number: Twilio's
    own words (after the reason) can name it."""
    text = (error or "").strip()
    if text in ("opted out", "opted out (Twilio 21610)"):
        return "they opted out (texted STOP)"
    if text == "unreachable":
        return "messages cannot reach them"
    if text.startswith("not a phone number"):
        return "they have no phone number to text"
    reason = text.split("): ", 1)[0] + ")" if "): " in text else text
    return PHONE_LIKE.sub("•••", reason) or "no reason kept"


def describe(row: Any, now: datetime, quiet: QuietHours, zone: ZoneInfo) -> Status:
    """What became of a check-in, from its row in `_listing`."""
    if row.status == "scheduled":
        return _due(row, now, quiet, zone)
    if row.status == "skipped":
        reason = row.skip_reason or "no reason kept"
        return Status("Skipped", "grey", SKIP_REASONS.get(reason, reason[:1].upper() + reason[1:]))
    if row.status != "invited":
        return Status(row.status.capitalize(), "grey", "")
    if row.send_status is None:
        shown = Status("Sent", "blue", "Invitation queued; no record of its sending is kept")
    else:
        shown = _sent(row, now, zone)
    if row.answered_at is None:
        return shown
    return Status(
        shown.tag, shown.colour, f"{shown.words}. They answered it {when(row.answered_at, zone)}"
    )


def _due(row: Any, now: datetime, quiet: QuietHours, zone: ZoneInfo) -> Status:
    if row.opted_out:
        return Status("Due", "yellow", "Will be skipped: they opted out (texted STOP)")
    if row.unreachable:
        return Status("Due", "yellow", "Will be skipped: messages cannot reach them")
    warning = (
        ""
        if row.has_baseline
        else " It will be skipped unless they finish a first assessment before then."
    )
    if row.due_at > now:
        goes = next_send_time(quiet, row.due_at)
        if goes != row.due_at:
            return Status(
                "Due", "blue", f"Quiet hours hold it until {when(goes, zone)}.{warning}".strip()
            )
        return Status("Due", "blue", f"Goes when due.{warning}")
    if not quiet.allows(now):
        return Status(
            "Held", "yellow", f"Quiet hours hold it until {when(next_send_time(quiet, now), zone)}"
        )
    if row.thread_open:
        return Status("Held", "yellow", "Waiting: a follow-up conversation with them is open")
    return Status("Due now", "blue", f"Goes at the next run of the scheduler.{warning}")


def _sent(row: Any, now: datetime, zone: ZoneInfo) -> Status:
    status = row.send_status
    if status == "pending":
        if row.attempts:
            retry = f"trying again {when(row.next_attempt_at, zone)}"
            return Status("Sending", "yellow", f"Not taken yet: {retry}")
        if row.next_attempt_at > now:
            held = when(row.next_attempt_at, zone)
            return Status("Waiting", "yellow", f"Quiet hours hold it until {held}")
        return Status("Waiting", "yellow", "Waiting to be sent")
    if status in ("claimed", "sending"):
        return Status("Sending", "yellow", "Being sent now")
    if status == "unknown":
        return Status(
            "Not confirmed", "orange", "It may have gone: not confirmed, and not sent again"
        )
    if status == "failed":
        error = row.send_error or ""
        if error.startswith("gave up after"):
            tries = error.split(":", 1)[0].removeprefix("gave up after ")
            return Status("Given up", "red", f"Given up after {tries}: {send_failure(error)}")
        return Status("Failed", "red", f"Not sent: {send_failure(error)}")
    delivery = row.delivery_status
    if delivery in ("delivered", "read"):
        return Status("Delivered", "green", "Delivered to their phone")
    if delivery in ("undelivered", "failed"):
        code = row.delivery_error_code
        why = DELIVERY_ERRORS.get(code, "the network gave no reason") if code else "no reason"
        said = f" (error {code})" if code else ""
        return Status("Not delivered", "red", f"Not delivered: {why}{said}")
    return Status("Sent", "blue", "Sent; no delivery report yet")


# --- forms -----------------------------------------------------------------------------------


class WhenForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    """When a check-in is due: one of `WHEN_CHOICES` (read by `read_when`, not by WTForms:
    the errors are the Design System's), and the date's three parts."""

    when = StringField("When should the check-in be?")
    day = StringField("Day")
    month = StringField("Month")
    year = StringField("Year")


WHEN_CHOICES = (*AFTER_CHOICES, (ON_A_DATE, "On a date"))


@dataclass(frozen=True)
class When:
    at: str | None
    after: str | None


def read_when(form: WhenForm, now: datetime, zone: ZoneInfo) -> When | None:
    """The time the form asks for, or None with the fields' errors set (GOV.UK's wording)."""
    choice = (form.when.data or "").strip()
    if choice in dict(AFTER_CHOICES):
        return When(at=None, after=choice)
    if choice != ON_A_DATE:
        form.when.errors = ["Select when the check-in should be"]
        return None
    parts = {
        "day": (form.day.data or "").strip(),
        "month": (form.month.data or "").strip(),
        "year": (form.year.data or "").strip(),
    }
    missing = [name for name, value in parts.items() if not value]
    if len(missing) == len(parts):
        form.day.errors = ["Enter the date of the check-in"]
        return None
    if missing:
        getattr(form, missing[0]).errors = [f"The date of the check-in must include a {missing[0]}"]
        return None
    wrong = [
        name
        for name, value in parts.items()
        if not (value.isascii() and value.isdigit()) or (name != "year" and len(value) > 2)
    ]
    if wrong:
        getattr(form, wrong[0]).errors = ["The date of the check-in must be a real date"]
        return None
    if len(parts["year"]) != 4:
        form.year.errors = ["Year must include 4 numbers"]
        return None
    try:
        day = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except ValueError:
        form.day.errors = ["The date of the check-in must be a real date"]
        return None
    due = parse_at(day.isoformat(), zone)
    if due <= now:
        form.day.errors = ["The date of the check-in must be in the future"]
        return None
    furthest = add_after(now, FURTHEST, zone)
    if due > furthest:
        limit = day_text(furthest.astimezone(zone).date())
        form.year.errors = [f"The date of the check-in must be on or before {limit}"]
        return None
    return When(at=day.isoformat(), after=None)


def outcome_message(done: Scheduled, zone: ZoneInfo, quiet: QuietHours, *, one: bool) -> str:
    """What scheduling did, for the flash after the redirect."""
    due = when(done.due_at, zone)
    goes = next_send_time(quiet, done.due_at)
    held = f" (quiet hours: it goes {when(goes, zone)})" if goes != done.due_at else ""
    if one:
        if done.already:
            text = f"They already have a check-in due {due}: nothing changed"
        elif done.moved:
            before = f" from {when(done.was_due, zone)}" if done.was_due else ""
            text = f"Their check-in has moved{before} to {due}{held}"
        else:
            text = f"Scheduled a check-in for {due}{held}"
        if done.without_baseline:
            text += (
                ". They have not finished a first assessment yet: the check-in is skipped "
                "when due unless they have by then"
            )
        return text
    scheduled = done.added + done.moved - done.already
    parts = [f"Scheduled {_count(scheduled, 'check-in')} for {due}{held}"]
    if done.moved - done.already:
        parts.append(f"{done.moved - done.already} of them moved from an earlier time")
    if done.already:
        parts.append(f"{done.already} already had a check-in due then (not changed)")
    if done.without_baseline:
        parts.append(
            f"{done.without_baseline} with no completed baseline yet: skipped when due "
            "unless they finish one by then"
        )
    left_out = []
    if done.opted_out:
        left_out.append(f"{done.opted_out} opted out")
    if done.unreachable:
        left_out.append(f"{done.unreachable} cannot be reached")
    if left_out:
        parts.append(f"{done.opted_out + done.unreachable} not scheduled: {', '.join(left_out)}")
    return "; ".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


# --- the pages -------------------------------------------------------------------------------


def register(pages: Blueprint, site: Site) -> None:
    outreach = site.runtime.config.outreach

    def zone() -> ZoneInfo:
        return parse_timezone(outreach.timezone)

    def quiet() -> QuietHours:
        return parse_quiet_hours(outreach.quiet_hours, outreach.quiet_days, outreach.timezone)

    def list_page(
        member: StaffMember,
        form: WhenForm,
        *,
        cohort_id: int | None,
        error: str | None = None,
    ) -> ResponseReturnValue:
        state = request.args.get("state", "due")
        if state not in STATES:
            abort(404)
        after = _int_arg("after")
        now = site.now()
        with site.engine.connect() as connection:
            conn = read_only(connection)
            chosen = cohort_or_404(conn, member, cohort_id) if cohort_id is not None else None
            choices = conn.execute(
                sa.select(cohorts.c.id, cohorts.c.name)
                .where(cohort_scope(member))
                .order_by(cohorts.c.name, cohorts.c.id)
            ).all()
            counts = _counts(conn, member)
            found = _rows(conn, member, state, after, now)
            shown = found[:PAGE]
            keys = keys_of(conn)
        site.audit_view(member, "view check-ins", detail=f"{state}: {len(shown)} shown")
        picker = [{"value": "", "text": "Choose a cohort", "selected": chosen is None}] + [
            {
                "value": str(row.id),
                "text": row.name,
                "selected": chosen is not None and chosen.id == row.id,
            }
            for row in choices
        ]
        listed = [_view(row, keys, now, quiet(), zone()) for row in shown]
        more = (
            url_for("dashboard.checkins", state=state, after=shown[-1].id)
            if len(found) > PAGE
            else None
        )
        return render_template(
            "checkins.html",
            state=state,
            state_names=STATE_NAMES,
            counts=counts,
            rows=listed,
            more=more,
            first_page=after is not None,
            picker=picker,
            cohort=chosen,
            has_cohorts=bool(choices),
            form=form,
            when_choices=WHEN_CHOICES,
            error=error,
            error_field="when",
            timezone=outreach.timezone,
            newest_first=NEWEST_FIRST[state],
            page_size=PAGE,
        )

    @pages.get("/checkins", endpoint="checkins")
    @site.staff_page
    def checkin_list(member: StaffMember) -> ResponseReturnValue:
        cohort_id = _int_arg("cohort")
        return list_page(member, WhenForm(formdata=None), cohort_id=cohort_id)

    @pages.post("/cohorts/<int:cohort_id>/checkins", endpoint="cohort_checkins")
    @site.staff_page
    def cohort_checkins(member: StaffMember, cohort_id: int) -> ResponseReturnValue:
        form = WhenForm()
        now = site.now()
        with site.engine.connect() as connection:
            cohort_or_404(read_only(connection), member, cohort_id)
        chosen = read_when(form, now, zone()) if form.validate_on_submit() else None
        if chosen is None:
            return list_page(member, form, cohort_id=cohort_id)
        target = CheckinTarget(
            respondent_id=None,
            cohort_id=cohort_id,
            at=chosen.at,
            after=chosen.after,
            scheduled_by=member.email,
            timezone=outreach.timezone,
        )
        try:
            with site.engine.begin() as conn:
                cohort = cohort_or_404(conn, member, cohort_id)
                done = schedule_for(conn, target, now, within=respondent_scope(member))
                site.audit(
                    conn,
                    member,
                    "schedule check-in",
                    detail=_audit_detail(f"cohort {cohort.id} {cohort.name!r}", done),
                )
        except CheckinError as problem:
            return list_page(member, form, cohort_id=cohort_id, error=_sentence(str(problem)))
        flash(f"{cohort.name}: {outcome_message(done, zone(), quiet(), one=False)}")
        return redirect(url_for("dashboard.checkins", cohort=cohort_id))

    def respondent_page(
        member: StaffMember, respondent_id: int, form: WhenForm, error: str | None = None
    ) -> ResponseReturnValue:
        now = site.now()
        with site.engine.connect() as connection:
            conn = read_only(connection)
            person = respondent_or_404(conn, member, respondent_id)
            found = _respondent_checkins(conn, member, respondent_id, now)
            keys = keys_of(conn)
            has_baseline = conn.execute(
                sa.select(
                    sa.exists().where(
                        assessments.c.respondent_id == respondent_id,
                        assessments.c.kind == "baseline",
                        assessments.c.completed_at.is_not(None),
                    )
                )
            ).scalar()
        site.audit_view(member, "view check-ins", respondent_id=respondent_id)
        listed = [_view(row, keys, now, quiet(), zone()) for row in found]
        pending = next((row for row in listed if row.status == "scheduled"), None)
        return render_template(
            "checkin_respondent.html",
            person=person,
            masked=masked_urn(keys.decrypt(person.urn_cipher)),
            rows=listed,
            pending=pending,
            has_baseline=has_baseline,
            form=form,
            when_choices=WHEN_CHOICES,
            error=error,
            error_field="when",
            timezone=outreach.timezone,
        )

    @pages.get("/respondents/<int:respondent_id>/checkins", endpoint="respondent_checkins_form")
    @site.staff_page
    def respondent_checkins_form(member: StaffMember, respondent_id: int) -> ResponseReturnValue:
        return respondent_page(member, respondent_id, WhenForm(formdata=None))

    @pages.post("/respondents/<int:respondent_id>/checkins", endpoint="respondent_checkins")
    @site.staff_page
    def respondent_checkins(member: StaffMember, respondent_id: int) -> ResponseReturnValue:
        form = WhenForm()
        now = site.now()
        with site.engine.connect() as connection:
            respondent_or_404(read_only(connection), member, respondent_id)
        chosen = read_when(form, now, zone()) if form.validate_on_submit() else None
        if chosen is None:
            return respondent_page(member, respondent_id, form)
        target = CheckinTarget(
            respondent_id=respondent_id,
            cohort_id=None,
            at=chosen.at,
            after=chosen.after,
            scheduled_by=member.email,
            timezone=outreach.timezone,
        )
        try:
            with site.engine.begin() as conn:
                respondent_or_404(conn, member, respondent_id)
                done = schedule_for(conn, target, now, within=respondent_scope(member))
                site.audit(
                    conn,
                    member,
                    "schedule check-in",
                    respondent_id=respondent_id,
                    detail=_audit_detail("one resident", done),
                )
        except CheckinError as problem:
            return respondent_page(member, respondent_id, form, error=_sentence(str(problem)))
        flash(outcome_message(done, zone(), quiet(), one=True))
        return redirect(url_for("dashboard.respondent_checkins_form", respondent_id=respondent_id))


@dataclass(frozen=True)
class Listed:
    """A check-in as a table row shows it."""

    id: int
    respondent_id: int
    resident: str
    due: str
    status: str
    shown: Status
    cohort: str | None
    scheduled_by: str
    invited: str | None


def _view(row: Any, keys: Any, now: datetime, quiet: QuietHours, zone: ZoneInfo) -> Listed:
    return Listed(
        id=row.id,
        respondent_id=row.respondent_id,
        resident=masked_urn(keys.decrypt(row.urn_cipher)),
        due=when(row.due_at, zone),
        status=row.status,
        shown=describe(row, now, quiet, zone),
        cohort=row.cohort,
        scheduled_by=row.scheduled_by,
        invited=when(row.invited_at, zone) if row.invited_at else None,
    )


def _int_arg(name: str) -> int | None:
    """A whole-number query argument; absent or empty is None, anything else odd is 404."""
    value = request.args.get(name, "")
    if value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        abort(404)
    return int(value)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _audit_detail(what: str, done: Scheduled) -> str:
    detail = (
        f"{what}: due {done.due_at.isoformat()}, {done.added} new, {done.moved} moved, "
        f"{done.left_out} left out"
    )
    return detail[:MAX_AUDIT_DETAIL]
