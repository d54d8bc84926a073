"""Cohorts and their initiatives: `GET/POST /cohorts` (the list, and a new cohort) and
`GET /cohorts/<id>` (who is in one).

The rule it keeps: a member sees their team's cohorts (an admin every team's) through
`cohort_scope`/`cohort_or_404`, another team's cohort answering 404; the residents counted and
listed in a cohort are only those the member may see (`respondent_scope`), their numbers
masked, and listing them is audited ("view cohort"). A cohort made here belongs to the
member's own team (an admin's too). Names are unique across every team (the database says
so), so a name taken anywhere is refused with a plain error; dates are optional, an end never
before a start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import StringField

from bot.state import State, StateError
from dashboard.accounts import StaffMember
from dashboard.site import (
    ADMIN,
    Site,
    cohort_or_404,
    cohort_scope,
    cohorts,
    respondent_scope,
    respondents,
)
from outreach.phone import masked_urn
from storage.database import read_only
from storage.models import Assessment, CohortMember, Conversation, Team, table
from storage.privacy import keys_of

MAX_NAME = 100
PAGE_SIZE = 100
MAX_ID = 2**63 - 1
"""The largest id a database holds: a larger one in a URL is not found, not an overflow."""
DATE_PARTS = ("day", "month", "year")

members = table(CohortMember)
assessments = table(Assessment)
conversations = table(Conversation)
teams = table(Team)


class CohortForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    name = StringField("Cohort name")
    initiative = StringField("Initiative")
    starts_day = StringField("Day")
    starts_month = StringField("Month")
    starts_year = StringField("Year")
    ends_day = StringField("Day")
    ends_month = StringField("Month")
    ends_year = StringField("Year")


@dataclass(frozen=True)
class DateProblem:
    field: str
    """The part at fault ("starts_day"…), which the error summary links to."""
    message: str


def date_of(prefix: str, label: str, form: CohortForm) -> date | DateProblem | None:
    """The date typed in a GOV.UK date input (`prefix`_day, _month, _year): None when all three
    are empty, else the date, or what is wrong in the Design System's words."""
    parts = {part: (getattr(form, f"{prefix}_{part}").data or "").strip() for part in DATE_PARTS}
    missing = [part for part in DATE_PARTS if not parts[part]]
    if len(missing) == len(DATE_PARTS):
        return None
    if missing:
        return DateProblem(
            f"{prefix}_{missing[0]}", f"{label} must include a {' and '.join(missing)}"
        )
    for part in DATE_PARTS:
        if not (parts[part].isascii() and parts[part].isdigit()) or len(parts[part]) > 4:
            return DateProblem(f"{prefix}_{part}", f"{label} must be a real date")
    if len(parts["year"]) != 4:
        return DateProblem(f"{prefix}_year", "Year must include 4 numbers")
    try:
        return date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except ValueError:
        return DateProblem(f"{prefix}_day", f"{label} must be a real date")


@dataclass(frozen=True)
class NewCohort:
    name: str
    initiative: str
    starts_on: date | None
    ends_on: date | None


def checked_cohort(form: CohortForm) -> NewCohort | None:
    """The cohort the form describes, or None with the errors on its fields."""
    name = (form.name.data or "").strip()
    initiative = (form.initiative.data or "").strip()
    if not name:
        form.name.errors.append("Enter a name for the cohort")
    elif len(name) > MAX_NAME:
        form.name.errors.append(f"Cohort name must be {MAX_NAME} characters or fewer")
    if not initiative:
        form.initiative.errors.append("Enter the initiative, for example Device loans")
    elif len(initiative) > MAX_NAME:
        form.initiative.errors.append(f"Initiative must be {MAX_NAME} characters or fewer")
    ok = not (form.name.errors or form.initiative.errors)
    starts = date_of("starts", "Start date", form)
    ends = date_of("ends", "End date", form)
    for found in (starts, ends):
        if isinstance(found, DateProblem):
            getattr(form, found.field).errors.append(found.message)
            ok = False
    if isinstance(starts, date) and isinstance(ends, date) and ends < starts:
        form.ends_day.errors.append("End date must be the same as or after the start date")
        ok = False
    if not ok or isinstance(starts, DateProblem) or isinstance(ends, DateProblem):
        return None
    return NewCohort(name, initiative, starts, ends)


def _completed(respondent_id: Any) -> sa.ColumnElement[bool]:
    return (
        sa.select(assessments.c.id)
        .where(
            assessments.c.respondent_id == respondent_id,
            assessments.c.kind == "baseline",
            assessments.c.completed_at.is_not(None),
        )
        .exists()
    )


def cohort_rows(conn: sa.Connection, member: StaffMember) -> list[Any]:
    """Each cohort the member may see, with the residents in it they may see and how many of
    those completed their assessment."""
    counts = (
        sa.select(
            members.c.cohort_id,
            sa.func.count().label("residents"),
            sa.func.sum(sa.case((_completed(members.c.respondent_id), 1), else_=0)).label(
                "completed"
            ),
        )
        .join_from(members, respondents, respondents.c.id == members.c.respondent_id)
        .where(respondent_scope(member))
        .group_by(members.c.cohort_id)
        .subquery()
    )
    return list(
        conn.execute(
            sa.select(
                cohorts,
                teams.c.name.label("team"),
                sa.func.coalesce(counts.c.residents, 0).label("residents"),
                sa.func.coalesce(counts.c.completed, 0).label("completed"),
            )
            .join_from(cohorts, teams, teams.c.id == cohorts.c.team_id, isouter=True)
            .join(counts, counts.c.cohort_id == cohorts.c.id, isouter=True)
            .where(cohort_scope(member))
            .order_by(cohorts.c.name)
        ).all()
    )


STAGE_WORDS = {
    "new": ("Not invited yet", "grey"),
    "language": ("Invited, not started", "light-blue"),
    "consent": ("Invited, not started", "light-blue"),
    "declined": ("Said no", "orange"),
    "done": ("Completed", "green"),
}


def member_status(
    *, opted_out: bool, unreachable: bool, stage: str | None, completed: bool
) -> tuple[str, str]:
    """(words, GOV.UK tag colour) for where a resident is: opted out and unreachable first
    (nothing can be sent), then a finished assessment, then the conversation's stage."""
    if opted_out:
        return "Opted out", "red"
    if unreachable:
        return "Cannot be reached", "red"
    if completed:
        return "Completed", "green"
    if stage is None:
        return "Not invited yet", "grey"
    return STAGE_WORDS.get(stage, ("In progress", "blue"))


@dataclass(frozen=True)
class MemberLine:
    respondent_id: int
    masked: str
    status: str
    colour: str
    added_at: str


def _stage(state: str | None) -> str | None:
    if state is None:
        return None
    try:
        return State.from_json(state).stage
    except (StateError, ValueError):
        return None


def cohort_members(
    conn: sa.Connection, member: StaffMember, cohort_id: int, page: int, zone: ZoneInfo
) -> tuple[int, list[MemberLine]]:
    """(how many the member may see, those on `page`), oldest in the cohort first."""
    visible = sa.and_(members.c.cohort_id == cohort_id, respondent_scope(member))
    total = conn.execute(
        sa.select(sa.func.count())
        .select_from(members.join(respondents, respondents.c.id == members.c.respondent_id))
        .where(visible)
    ).scalar_one()
    rows = conn.execute(
        sa.select(
            respondents.c.id,
            respondents.c.urn_cipher,
            respondents.c.opted_out,
            respondents.c.unreachable,
            conversations.c.state,
            _completed(respondents.c.id).label("completed"),
            members.c.added_at,
        )
        .join_from(members, respondents, respondents.c.id == members.c.respondent_id)
        .join(conversations, conversations.c.respondent_id == respondents.c.id, isouter=True)
        .where(visible)
        .order_by(members.c.added_at, respondents.c.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    keys = keys_of(conn)
    lines = []
    for row in rows:
        words, colour = member_status(
            opted_out=row.opted_out,
            unreachable=row.unreachable,
            stage=_stage(row.state),
            completed=bool(row.completed),
        )
        added: datetime = row.added_at
        lines.append(
            MemberLine(
                row.id,
                masked_urn(keys.decrypt(row.urn_cipher)),
                words,
                colour,
                _day(added.astimezone(zone).date()),
            )
        )
    return int(total), lines


def _day(day: date) -> str:
    """ "2 December 2026"."""
    return f"{day.day} {day:%B %Y}"


def _page_number(text: str | None) -> int:
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 9:
        return 1
    return max(1, int(text))


def register(pages: Blueprint, site: Site) -> None:
    zone = ZoneInfo(site.runtime.config.outreach.timezone)

    def listing(member: StaffMember, form: CohortForm) -> str:
        with site.engine.connect() as conn:
            rows = cohort_rows(read_only(conn), member)
        return render_template("cohorts.html", form=form, rows=rows, admin=member.role == ADMIN)

    @pages.route("/cohorts", methods=["GET", "POST"], endpoint="cohorts")
    @site.staff_page
    def cohorts_page(member: StaffMember) -> ResponseReturnValue:
        form = CohortForm()
        if not form.is_submitted():
            return listing(member, form)
        form.validate()
        new = checked_cohort(form)
        if new is not None:
            try:
                with site.engine.begin() as conn:
                    cohort_id = conn.execute(
                        sa.insert(cohorts)
                        .values(
                            name=new.name,
                            initiative=new.initiative,
                            starts_on=new.starts_on,
                            ends_on=new.ends_on,
                            created_at=site.now(),
                            team_id=member.team_id,
                        )
                        .returning(cohorts.c.id)
                    ).scalar_one()
                    site.audit(conn, member, "add cohort", detail=f"cohort {cohort_id}")
            except IntegrityError:
                form.name.errors.append(
                    "There is already a cohort with this name (names are shared by every "
                    "team): choose another name"
                )
            else:
                flash(f"Cohort {new.name} added, for the initiative {new.initiative}")
                return redirect(url_for(".cohort", cohort_id=cohort_id))
        return listing(member, form)

    @pages.get(f"/cohorts/<int(min=1, max={MAX_ID}):cohort_id>", endpoint="cohort")
    @site.staff_page
    def cohort_page(member: StaffMember, cohort_id: int) -> ResponseReturnValue:
        page = _page_number(request.args.get("page"))
        with site.engine.connect() as connection:
            conn = read_only(connection)
            cohort = cohort_or_404(conn, member, cohort_id)
            team = conn.execute(
                sa.select(teams.c.name).where(teams.c.id == cohort.team_id)
            ).scalar_one_or_none()
            total, lines = cohort_members(conn, member, cohort_id, page, zone)
        site.audit_view(
            member,
            "view cohort",
            detail=f"cohort {cohort_id}, page {page}, {len(lines)} residents listed",
        )
        pages_count = max(1, -(-total // PAGE_SIZE))
        return render_template(
            "cohort.html",
            cohort=cohort,
            team=team,
            total=total,
            lines=lines,
            page=page,
            pages_count=pages_count,
        )
