"""Enrol a resident from the dashboard: `GET/POST /enrol`.

The rule it keeps: the same rules as `dibot enrol` (`outreach.enrolment.enrol`, the configured
quiet hours and lawful basis, the runtime's flow), for the signed-in member's team: the
resident goes to that team (an admin picks the team, and may move a resident there from
another), and joins one of that team's cohorts only. A number is never repeated back in an
error, only why it cannot be used; the outcome (invited now, waiting for quiet hours until a
local time, or not invited and why) is said in plain words after a redirect, with the number
masked. The form sent twice is one enrolment (`REPEAT_WINDOW`). Every enrolment is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SelectField, StringField
from wtforms.validators import InputRequired

from channels.identifiers import is_telegram_id
from dashboard.accounts import StaffMember
from dashboard.site import ADMIN, Site, cohort_scope, cohorts
from flows.model import Flow
from outreach.enrolment import Enrolled, EnrolmentError, EnrolmentRequest, enrol
from outreach.phone import PhoneNumberError, masked_urn, parse_phone
from outreach.quiet_hours import parse_quiet_hours
from storage.database import read_only
from storage.models import Team, table

REPEAT_WINDOW = timedelta(minutes=10)
"""The same enrolment by the same member within this long is the form sent twice."""
LET_THEM_CHOOSE = ""
NO_COHORT = ""
ACCEPTED_NUMBERS = "Enter a UK mobile number, like 07700 900123"
MAX_SHOWN_INPUT = 64
"""A typed number longer than this is not shown back in the form."""

teams = table(Team)


class EnrolForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    phone = StringField("Mobile phone number")
    telegram = StringField("Or their Telegram chat id")
    language = RadioField("Language for their texts", choices=[], validate_choice=False)
    team = SelectField("Team", choices=[], validate_choice=False)
    cohort = SelectField("Cohort", choices=[], validate_choice=False)
    agreed = BooleanField(
        "The resident agreed to be contacted about the digital inclusion check",
        validators=[InputRequired("Confirm that the resident agreed to be contacted")],
    )


@dataclass(frozen=True)
class CohortChoice:
    id: int
    name: str
    team_id: int
    team: str


@dataclass(frozen=True)
class Contact:
    """What the form gave to reach the resident: a phone number or a Telegram chat id."""

    phone: str | None
    telegram: str | None
    masked: str


def contact_of(phone_text: str, telegram_text: str) -> tuple[Contact | None, str, str]:
    """(the contact, the field at fault, what is wrong): a number that can be texted, or a
    Telegram chat id; the problem never quotes what was typed."""
    phone_text, telegram_text = phone_text.strip(), telegram_text.strip()
    if phone_text and telegram_text:
        return None, "telegram", "Give a mobile number or a Telegram chat id, not both"
    if telegram_text:
        digits = telegram_text.removeprefix("-")
        if not (digits.isascii() and digits.isdigit()) or not is_telegram_id(int(telegram_text)):
            return None, "telegram", "Enter a Telegram chat id: digits only, like 123456789"
        urn = f"telegram:{int(telegram_text)}"
        return Contact(None, telegram_text, masked_urn(urn)), "", ""
    if not phone_text:
        return None, "phone", f"{ACCEPTED_NUMBERS} (or a Telegram chat id)"
    try:
        number = parse_phone(phone_text)
    except PhoneNumberError as problem:
        said = str(problem)
        verb = "" if said.startswith("has ") else "is "
        return None, "phone", f"{ACCEPTED_NUMBERS}: this one {verb}{said}"
    if not number.can_receive_sms:
        return None, "phone", f"{ACCEPTED_NUMBERS}: this is a landline, which cannot get texts"
    return Contact(phone_text, None, masked_urn(number.urn)), "", ""


def local_time_words(at: datetime, zone: ZoneInfo) -> str:
    """ "9am on Wednesday 2 December 2026", in the council's time zone (GOV.UK style)."""
    local = at.astimezone(zone)
    hour = local.hour % 12 or 12
    minutes = f":{local.minute:02d}" if local.minute else ""
    half = "am" if local.hour < 12 else "pm"
    return f"{hour}{minutes}{half} on {local:%A} {local.day} {local:%B %Y}"


def outcome_words(done: Enrolled, masked: str, zone: ZoneInfo) -> str:
    """What the enrolment did, in a sentence or two a worker reads after sending the form."""
    cohort = f" in cohort {done.cohort}" if done.cohort else ""
    if done.repeated:
        said = (
            f"{masked} was enrolled{cohort} a moment ago (the form was sent twice): "
            "nothing more was done."
        )
    else:
        said = f"{masked} is enrolled{cohort}."
    if not done.invited:
        return f"{said} They were not invited because {done.not_invited_because}."
    if done.send_after is not None:
        return (
            f"{said} The invitation waits for quiet hours: "
            f"it goes at {local_time_words(done.send_after, zone)}."
        )
    return f"{said} They are invited now: the invitation is on its way."


def cohort_choices(conn: sa.Connection, member: StaffMember) -> list[CohortChoice]:
    """The cohorts `member` may enrol into: their team's (an admin: every team's)."""
    rows = conn.execute(
        sa.select(cohorts.c.id, cohorts.c.name, cohorts.c.team_id, teams.c.name.label("team"))
        .join_from(cohorts, teams, teams.c.id == cohorts.c.team_id)
        .where(cohort_scope(member))
        .order_by(cohorts.c.name)
    ).all()
    return [CohortChoice(row.id, row.name, row.team_id, row.team) for row in rows]


def team_choices(conn: sa.Connection) -> list[tuple[int, str]]:
    rows = conn.execute(sa.select(teams.c.id, teams.c.name).order_by(teams.c.name)).all()
    return [(row.id, row.name) for row in rows]


def _language_choices(flow: Flow) -> list[tuple[str, str]]:
    choices = [(code, flow.language_names.get(code, code)) for code in flow.languages]
    if len(choices) > 1:
        choices.append((LET_THEM_CHOOSE, "Let them choose (their first text asks)"))
    return choices


def _set_choices(
    form: EnrolForm,
    member: StaffMember,
    flow: Flow,
    found: list[CohortChoice],
    team_list: list[tuple[int, str]],
) -> None:
    admin = member.role == ADMIN
    form.language.choices = _language_choices(flow)
    if form.language.data is None:
        form.language.data = LET_THEM_CHOOSE if len(flow.languages) > 1 else flow.languages[0]
    form.cohort.choices = [(NO_COHORT, "No cohort")] + [
        (str(choice.id), f"{choice.name} (team {choice.team})" if admin else choice.name)
        for choice in found
    ]
    form.team.choices = [(str(team_id), name) for team_id, name in team_list]
    if not form.team.data:
        form.team.data = str(member.team_id)


def _check_form(
    form: EnrolForm,
    member: StaffMember,
    found: list[CohortChoice],
    team_list: list[tuple[int, str]],
) -> tuple[int, CohortChoice | None] | None:
    """(team id, cohort) the form asks for, or None with the fields' errors set."""
    ok = True
    team_id = member.team_id
    if member.role == ADMIN:
        picked = {str(tid): tid for tid, _ in team_list}.get(str(form.team.data))
        if picked is None:
            form.team.errors.append("Choose a team")
            ok = False
        else:
            team_id = picked
    cohort: CohortChoice | None = None
    if form.cohort.data not in (None, NO_COHORT):
        cohort = {str(choice.id): choice for choice in found}.get(str(form.cohort.data))
        if cohort is None:
            form.cohort.errors.append("Choose one of your team's cohorts, or no cohort")
            ok = False
        elif cohort.team_id != team_id:
            form.cohort.errors.append(
                f"That cohort is team {cohort.team}'s: choose team {cohort.team}, or another cohort"
            )
            ok = False
    offered = {value for value, _ in form.language.choices}
    if len(offered) > 1 and form.language.data not in offered:
        form.language.errors.append("Choose the language for their texts")
        ok = False
    return (team_id, cohort) if ok else None


def register(pages: Blueprint, site: Site) -> None:
    runtime = site.runtime
    outreach = runtime.config.outreach
    zone = ZoneInfo(outreach.timezone)
    quiet = parse_quiet_hours(outreach.quiet_hours, outreach.quiet_days, outreach.timezone)

    @pages.route("/enrol", methods=["GET", "POST"], endpoint="enrol")
    @site.staff_page
    def enrol_page(member: StaffMember) -> ResponseReturnValue:
        flow = runtime.flow
        with site.engine.connect() as conn:
            conn = read_only(conn)
            found = cohort_choices(conn, member)
            team_list = team_choices(conn) if member.role == ADMIN else []
        form = EnrolForm()
        _set_choices(form, member, flow, found, team_list)
        if not form.is_submitted():
            asked = request.args.get("cohort", NO_COHORT)
            form.cohort.data = asked if asked in dict(form.cohort.choices) else NO_COHORT
        else:
            valid = form.validate()
            contact, field, problem = contact_of(form.phone.data or "", form.telegram.data or "")
            if contact is None:
                getattr(form, field).errors.append(problem)
            chosen = _check_form(form, member, found, team_list)
            if valid and contact is not None and chosen is not None:
                team_id, cohort = chosen
                asking = EnrolmentRequest(
                    phone=contact.phone,
                    telegram=contact.telegram,
                    cohort=cohort.name if cohort else None,
                    initiative=None,
                    language=(form.language.data or None) if len(flow.languages) > 1 else None,
                    enrolled_by=member.email,
                    lawful_basis=outreach.lawful_basis,
                    team_id=team_id,
                    move_team=member.role == ADMIN,
                    repeat_window=REPEAT_WINDOW,
                )
                try:
                    done = enrol(site.engine, flow, asking, quiet, site.now())
                except (EnrolmentError, PhoneNumberError) as refused:
                    (form.telegram if contact.telegram else form.phone).errors.append(str(refused))
                else:
                    words = outcome_words(done, contact.masked, zone)
                    with site.engine.begin() as conn:
                        site.audit(
                            conn,
                            member,
                            "enrol",
                            respondent_id=done.respondent_id,
                            detail=_audit_detail(done),
                        )
                    flash(words)
                    return redirect(url_for(".respondent", respondent_id=done.respondent_id))
            if len(form.phone.data or "") > MAX_SHOWN_INPUT:
                form.phone.data = ""
            if len(form.telegram.data or "") > MAX_SHOWN_INPUT:
                form.telegram.data = ""
        return render_template(
            "enrol.html",
            form=form,
            admin=member.role == ADMIN,
            languages=len(flow.languages) > 1,
            lawful_basis=outreach.lawful_basis.replace("_", " "),
            has_cohorts=bool(found),
        )


def _audit_detail(done: Enrolled) -> str:
    parts: list[str] = []
    if done.repeated:
        parts.append("form sent twice, nothing more done")
    if done.cohort:
        parts.append(f"cohort {done.cohort}")
    if not done.invited:
        parts.append(f"not invited: {done.not_invited_because}")
    elif done.send_after is not None:
        parts.append(f"invitation waits until {done.send_after.isoformat()}")
    else:
        parts.append("invited")
    return "; ".join(parts)
