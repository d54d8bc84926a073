"""The residents list (`GET /respondents`): the residents a member of staff may see, newest
first, 50 a page, found by status, cohort, when they last wrote, or their whole phone number.

The rules it keeps:
- a page is a query (`list_page`), pure functions (`read_filters`, `read_search`, `shown`) and a
  template; the query reaches respondents only through `respondent_scope` and cohorts only
  through `cohort_scope`, so another team's residents never appear and another team's cohort id
  in the URL answers 404, as a missing one does;
- paging is by keyset: a page's links carry the id at its edge (`before`, `after`), never an
  OFFSET, so the thousandth page costs what the first does, and rows added meanwhile are
  neither skipped nor shown twice;
- a status is worked out in SQL from one list of rules (`status_rules`) over what is stored
  (opted out, unreachable, the conversation's current assessment, completed assessments, the
  invitation), so filtering by it (`has_status`) and showing it (`status_case`) never disagree;
- URNs are decrypted only for the rows shown, and shown masked (`masked_urn`); a number typed
  in the search is read as `dibot enrol` reads it and found by its keyed digest;
- a query value that makes no sense (a page edge "abc", a huge number, an unknown status) is
  treated as absent, never a 500; a search that cannot be a number says why;
- a number is searched for by POST and answered at once, never put in an address (the browser's
  history, a proxy's log): the search form posts, a search by cohort name is sent back to the
  GET page, and a number in a GET address is refused with the reason;
- each view of the list writes one audit line naming its filters (never the number searched
  for), just after the read-only transaction that read the list.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse
from wtforms import Form, SelectField, StringField

from bot.state import State
from channels.identifiers import is_telegram_id
from dashboard.accounts import StaffMember
from dashboard.site import ADMIN, Site, cohort_scope, respondent_scope
from flows.model import Flow, Question
from outreach.phone import PhoneNumberError, masked_urn, urn_for_phone
from outreach.quiet_hours import parse_timezone
from storage.database import read_only
from storage.models import (
    Assessment,
    Cohort,
    CohortMember,
    Conversation,
    Enrolment,
    Respondent,
    Team,
    table,
)
from storage.privacy import Keys, keys_of, load_privacy

PAGE_SIZE = 50
MAX_ID = 2**63 - 1
"""The largest id PostgreSQL's BIGINT holds: a page edge beyond it is no page edge."""
ID_TEXT = re.compile(r"[0-9]{1,19}")
MAX_SEARCH = 100
NUMBER_LIKE = re.compile(r"[\d\s+()\-.]+")
"""What a search is read as a number from: digits (any script, so that a wrong one is named)
and the punctuation people type in numbers."""
AUDIT_ACTION = "list respondents"

STATUSES: dict[str, str] = {
    "not_started": "Not started",
    "invited": "Invited",
    "in_progress": "In progress",
    "completed": "Completed",
    "opted_out": "Opted out",
    "unreachable": "Unreachable",
}
"""Status value -> what the page calls it; in the order a resident usually goes through them."""
STATUS_TAGS = {
    "not_started": "govuk-tag--grey",
    "invited": "govuk-tag--light-blue",
    "in_progress": "govuk-tag--blue",
    "completed": "govuk-tag--green",
    "opted_out": "govuk-tag--orange",
    "unreachable": "govuk-tag--red",
}
CONTACTS: dict[str, str] = {
    "7d": "In the last 7 days",
    "30d": "In the last 30 days",
    "over30d": "More than 30 days ago",
    "never": "Never",
}
"""When the resident last wrote to us: value -> label."""

respondents = table(Respondent)
conversations = table(Conversation)
assessments = table(Assessment)
cohorts = table(Cohort)
members = table(CohortMember)
enrolments = table(Enrolment)
teams = table(Team)

current = assessments.alias("current_assessment")
"""The assessment the conversation's answers go to (the latest one started)."""
finished = assessments.alias("finished_assessment")


# --- the query ------------------------------------------------------------------------------


def status_rules() -> list[tuple[str, sa.ColumnElement[bool]]]:
    """(status, when it holds) in order: a respondent has the first status whose condition
    holds. Every condition is true or false, never NULL, so its negation is its opposite."""
    in_progress = (
        current.c.id.is_not(None)
        & current.c.completed_at.is_(None)
        & current.c.abandoned_at.is_(None)
    )
    completed = (
        sa.exists()
        .where(finished.c.respondent_id == respondents.c.id, finished.c.completed_at.is_not(None))
        .correlate(respondents)
    )
    invited = (  # and has not written since: one EXISTS, so that NOT it is an anti-join too
        sa.exists()
        .where(
            enrolments.c.respondent_id == respondents.c.id,
            enrolments.c.invitation_id.is_not(None),
            conversations.c.last_inbound_at.is_(None),
        )
        .correlate(respondents, conversations)
    )
    return [
        ("opted_out", respondents.c.opted_out.is_(True)),
        ("unreachable", respondents.c.unreachable.is_(True)),
        ("in_progress", in_progress),
        ("completed", completed),
        ("invited", invited),
        ("not_started", sa.true()),
    ]


def status_case() -> sa.ColumnElement[str]:
    """Each respondent's status (for the rows shown)."""
    rules = status_rules()
    return sa.case(*((holds, name) for name, holds in rules[:-1]), else_=rules[-1][0])


def has_status(status: str) -> sa.ColumnElement[bool]:
    """Whether a respondent's status is `status`: its rule holds and no earlier one does. (The
    same rules as `status_case`, written as a WHERE clause the planner can use: PostgreSQL
    turns each EXISTS into a semi- or anti-join instead of hashing whole tables.)"""
    conditions: list[sa.ColumnElement[bool]] = []
    for name, holds in status_rules():
        if name == status:
            return sa.and_(*conditions, holds)
        conditions.append(sa.not_(holds))
    raise ValueError(f"no status {status!r}")


@dataclass(frozen=True)
class Search:
    """What the search box asked for, read: nothing, residents with one of `urns`, residents of
    cohorts whose names contain `fragment`, or a `problem` with what was typed."""

    text: str = ""
    urns: tuple[str, ...] = ()
    fragment: str | None = None
    problem: str | None = None
    refused_in_address: bool = False
    """A number came in a GET address: refused, not looked up."""

    @property
    def by_number(self) -> bool:
        return bool(self.urns)

    @property
    def private(self) -> bool:
        """What was typed is (or may be) someone's number: it must not go into an address."""
        return (bool(self.text) and self.fragment is None) or self.refused_in_address


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    cohort_id: int | None = None
    contact: str | None = None
    search: Search = field(default_factory=Search)
    before: int | None = None
    """Show the residents added before this id (the next page)."""
    after: int | None = None
    """Show the residents added after this id (the previous page)."""

    @property
    def narrowed(self) -> bool:
        """Whether anything but the page edge narrows the list."""
        return bool(self.status or self.cohort_id or self.contact or self.search.text.strip())

    def query_values(self) -> dict[str, str]:
        """The filters as the page's query string has them (without the page edge)."""
        values = {
            "status": self.status or "",
            "cohort": str(self.cohort_id) if self.cohort_id else "",
            "contact": self.contact or "",
            "q": self.search.text,
        }
        return {name: value for name, value in values.items() if value}

    def describe(self) -> str:
        """For the audit log: the filters, never the number searched for."""
        parts = [f"{name}={value}" for name, value in self.query_values().items() if name != "q"]
        if self.search.by_number:
            parts.append("search=a phone number or chat id")
        elif self.search.fragment is not None:
            words = re.sub(r"\d", "•", self.search.fragment[:50])  # never a number typed in
            parts.append(f"search=cohort name containing {words!r}")
        elif self.search.problem is not None:
            parts.append("search=not a number")
        if self.before is not None:
            parts.append(f"before={self.before}")
        elif self.after is not None:
            parts.append(f"after={self.after}")
        return "; ".join(parts) or "all"


def read_id(text: str | None) -> int | None:
    """A positive id from a query value; None for anything else ("abc", "-1", "1e9", huge)."""
    if text is None or not ID_TEXT.fullmatch(text):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def read_search(text: str) -> Search:
    """What a search asks for. Phone numbers are stored encrypted, so a number is found whole:
    read as `dibot enrol` reads it (07700 900123, +44 7700 900123, 0044…), or as a Telegram chat
    id when it is digits only. Anything with letters looks for cohorts by name."""
    text = text.strip()
    if not text:
        return Search()
    if len(text) > MAX_SEARCH:
        return Search(text[:MAX_SEARCH], problem=f"Search for at most {MAX_SEARCH} characters")
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in text):
        shown = "".join(char for char in text if unicodedata.category(char) not in ("Cc", "Cs"))
        return Search(
            shown,
            problem="Search for letters, digits and spaces: what you typed has "
            "control characters in it",
        )
    if not NUMBER_LIKE.fullmatch(text):
        return Search(text, fragment=text)
    urns: list[str] = []
    problem = None
    try:
        urns.append(urn_for_phone(text))
    except PhoneNumberError as error:
        problem = str(error)
    digits = text.removeprefix("-")
    if digits.isascii() and digits.isdigit() and is_telegram_id(int(text)):
        urns.append(f"telegram:{int(text)}")
    if not urns:
        return Search(
            text,
            problem="Enter a whole phone number, like 07700 900123, or a Telegram chat id "
            f"({problem})",
        )
    return Search(text, urns=tuple(urns))


def read_filters(args: Mapping[str, str], visible_cohorts: Sequence[int]) -> Filters:
    """The page's query string, each value that makes no sense left out. A cohort id the member
    may not see (or that does not exist) ends the request with 404."""
    status = args.get("status")
    contact = args.get("contact")
    cohort_id = read_id(args.get("cohort"))
    if cohort_id is not None and cohort_id not in visible_cohorts:
        abort(404)
    before = read_id(args.get("before"))
    return Filters(
        status=status if status in STATUSES else None,
        cohort_id=cohort_id,
        contact=contact if contact in CONTACTS else None,
        search=read_search(args.get("q", "")),
        before=before,
        after=read_id(args.get("after")) if before is None else None,
    )


@dataclass(frozen=True)
class ListedRow:
    id: int
    urn_cipher: str
    team: str | None
    last_inbound_at: datetime | None
    status: str
    state: str | None
    kind: str | None


@dataclass(frozen=True)
class Page:
    rows: tuple[ListedRow, ...]
    cohorts: Mapping[int, tuple[str, ...]]
    has_previous: bool
    has_next: bool
    matched_cohorts: tuple[str, ...] = ()
    """For a search by cohort name: the names of the cohorts it found."""


def _conditions(
    member: StaffMember,
    filters: Filters,
    now: datetime,
    digests: Sequence[bytes],
    cohort_ids: Sequence[int] | None,
) -> list[sa.ColumnElement[bool]]:
    where = [respondent_scope(member)]
    if filters.status is not None:
        where.append(has_status(filters.status))
    if filters.cohort_id is not None:
        where.append(_in_cohorts([filters.cohort_id]))
    heard = conversations.c.last_inbound_at
    if filters.contact == "7d":
        where.append(heard >= now - timedelta(days=7))
    elif filters.contact == "30d":
        where.append(heard >= now - timedelta(days=30))
    elif filters.contact == "over30d":
        where.append(heard < now - timedelta(days=30))
    elif filters.contact == "never":
        where.append(heard.is_(None))
    if filters.search.urns:
        where.append(respondents.c.urn_digest.in_(digests))
    if cohort_ids is not None:
        where.append(_in_cohorts(cohort_ids))
    return where


def _in_cohorts(cohort_ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """Whether a respondent is in one of the cohorts: an IN, not an EXISTS, so that SQLite
    walks the cohort's members (in id order) rather than every respondent; a small cohort of
    old residents takes a few rows' work, not 100,000 probes."""
    return respondents.c.id.in_(
        sa.select(members.c.respondent_id).where(members.c.cohort_id.in_(cohort_ids))
    )


def _joined() -> sa.FromClause:
    """Respondents with what the filters and statuses read: their conversation and its
    current assessment."""
    return respondents.outerjoin(
        conversations, conversations.c.respondent_id == respondents.c.id
    ).outerjoin(current, current.c.id == conversations.c.assessment_id)


def _ids(
    conn: sa.Connection,
    where: Sequence[sa.ColumnElement[bool]],
    *,
    newest_first: bool,
    limit: int,
) -> list[int]:
    rid = respondents.c.id
    return list(
        conn.execute(
            sa.select(rid)
            .select_from(_joined())
            .where(*where)
            .order_by(rid.desc() if newest_first else rid)
            .limit(limit)
        ).scalars()
    )


def _rows(conn: sa.Connection, ids: Sequence[int]) -> tuple[ListedRow, ...]:
    """What the table shows of the respondents `ids`, in that order. (A query of its own: the
    status of 50 rows, not of every row the page's query looked at.)"""
    if not ids:
        return ()
    found = conn.execute(
        sa.select(
            respondents.c.id,
            respondents.c.urn_cipher,
            teams.c.name.label("team"),
            conversations.c.last_inbound_at,
            status_case().label("status"),
            conversations.c.state,
            current.c.kind,
        )
        .select_from(_joined().outerjoin(teams, teams.c.id == respondents.c.team_id))
        .where(respondents.c.id.in_(ids))
    ).all()
    by_id = {row.id: ListedRow(*row) for row in found}
    return tuple(by_id[rid] for rid in ids if rid in by_id)


def list_page(conn: sa.Connection, member: StaffMember, filters: Filters, now: datetime) -> Page:
    """One page of the residents `member` may see that match `filters`, newest first."""
    digests: list[bytes] = []
    if filters.search.urns:
        privacy = load_privacy(conn, keys_of(conn))
        digests = [privacy.digest(urn) for urn in filters.search.urns]
    cohort_ids: list[int] | None = None
    matched: tuple[str, ...] = ()
    if filters.search.fragment is not None:
        found = conn.execute(
            sa.select(cohorts.c.id, cohorts.c.name)
            .where(
                cohort_scope(member),
                cohorts.c.name.icontains(filters.search.fragment, autoescape=True),
            )
            .order_by(cohorts.c.name)
        ).all()
        cohort_ids = [row.id for row in found]
        matched = tuple(row.name for row in found)
    if filters.search.problem is not None or cohort_ids == []:
        return Page((), {}, False, False, matched)
    where = _conditions(member, filters, now, digests, cohort_ids)
    rid = respondents.c.id
    if filters.after is not None:
        ids = _ids(conn, [*where, rid > filters.after], newest_first=False, limit=PAGE_SIZE + 1)
        has_previous = len(ids) > PAGE_SIZE
        ids = ids[:PAGE_SIZE][::-1]
        has_next = bool(ids) and bool(
            _ids(conn, [*where, rid < ids[-1]], newest_first=True, limit=1)
        )
    else:
        edge = [rid < filters.before] if filters.before is not None else []
        ids = _ids(conn, [*where, *edge], newest_first=True, limit=PAGE_SIZE + 1)
        has_next = len(ids) > PAGE_SIZE
        ids = ids[:PAGE_SIZE]
        has_previous = (
            filters.before is not None
            and bool(ids)
            and bool(_ids(conn, [*where, rid > ids[0]], newest_first=False, limit=1))
        )
    listed = _rows(conn, ids)
    return Page(listed, _cohorts_of(conn, member, listed), has_previous, has_next, matched)


def _cohorts_of(
    conn: sa.Connection, member: StaffMember, rows: Sequence[ListedRow]
) -> dict[int, tuple[str, ...]]:
    """The cohorts (that `member` may see) of the residents shown."""
    if not rows:
        return {}
    found: dict[int, list[str]] = {}
    for respondent_id, name in conn.execute(
        sa.select(members.c.respondent_id, cohorts.c.name)
        .join_from(members, cohorts, cohorts.c.id == members.c.cohort_id)
        .where(members.c.respondent_id.in_([row.id for row in rows]), cohort_scope(member))
        .order_by(cohorts.c.name)
    ):
        found.setdefault(respondent_id, []).append(name)
    return {key: tuple(names) for key, names in found.items()}


def visible_cohorts(conn: sa.Connection, member: StaffMember) -> list[tuple[int, str]]:
    """(id, name) of the cohorts `member` may see, by name."""
    rows = conn.execute(
        sa.select(cohorts.c.id, cohorts.c.name).where(cohort_scope(member)).order_by(cohorts.c.name)
    ).all()
    return [(row.id, row.name) for row in rows]


# --- what the page shows --------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """One row of the table, as a person reads it."""

    id: int
    resident: str
    status: str
    status_tag: str
    status_text: str
    cohorts: tuple[str, ...]
    last_heard: str
    team: str


def progress(flow: Flow, state_json: str | None) -> tuple[int, int] | None:
    """(question number, of how many) where the conversation is, as the engine counts it
    ("Q5 of 22"); None when the state names no question this flow has."""
    if state_json is None:
        return None
    try:
        state = State.from_json(state_json)
    except (ValueError, TypeError):
        return None
    mode = flow.modes.get(state.mode or "")
    question = state.question
    if mode is None or question is None or question not in mode.positions:
        return None
    for step in mode.steps[mode.positions[question] :]:
        if isinstance(step, Question):
            return step.number, mode.total
    return mode.total, mode.total


def status_text(status: str, kind: str | None, where: tuple[int, int] | None) -> str:
    label = STATUSES.get(status, status)
    if status != "in_progress":
        return label
    if kind == "checkin":
        label = "Check-in in progress"
    return f"{label} (Q{where[0]} of {where[1]})" if where else label


def local_time(at: datetime | None, zone: ZoneInfo) -> str:
    """ "1 Dec 2026, 11:00" in the council's time zone; "Never" for no time."""
    if at is None:
        return "Never"
    local = at.astimezone(zone)
    return f"{local.day} {local:%b %Y, %H:%M}"


def shown(page: Page, keys: Keys, flow: Flow, zone: ZoneInfo) -> list[Shown]:
    """The page's rows as the table shows them: each URN decrypted and masked at once."""
    return [
        Shown(
            id=row.id,
            resident=masked_urn(keys.decrypt(row.urn_cipher)),
            status=row.status,
            status_tag=STATUS_TAGS.get(row.status, "govuk-tag--grey"),
            status_text=status_text(
                row.status,
                row.kind,
                progress(flow, row.state) if row.status == "in_progress" else None,
            ),
            cohorts=page.cohorts.get(row.id, ()),
            last_heard=local_time(row.last_inbound_at, zone),
            team=row.team or "No team",
        )
        for row in page.rows
    ]


# --- the form and the route -----------------------------------------------------------------


class FilterForm(Form):  # type: ignore[misc]  # WTForms is untyped
    """The filters, posted (a number typed must not go into an address) and working without JS. The
    choices are set per request (`filter_form`), as plain (value, label) pairs."""

    q = StringField("Search")
    status = SelectField("Status", choices=[], validate_choice=False)
    cohort = SelectField("Cohort", choices=[], validate_choice=False)
    contact = SelectField("Last heard from", choices=[], validate_choice=False)


def filter_form(filters: Filters, cohort_choices: Sequence[tuple[int, str]]) -> FilterForm:
    """The form as the filters in force are: a value that was left out shows as "Any"."""
    form = FilterForm()
    form.q.data = filters.search.text
    form.status.choices = [("", "Any status"), *STATUSES.items()]
    form.status.data = filters.status or ""
    form.cohort.choices = [("", "Any cohort"), *((str(i), name) for i, name in cohort_choices)]
    form.cohort.data = str(filters.cohort_id) if filters.cohort_id else ""
    form.contact.choices = [("", "Any time"), *CONTACTS.items()]
    form.contact.data = filters.contact or ""
    if filters.search.problem is not None:
        form.q.errors = [filters.search.problem]
    return form


NUMBER_IN_ADDRESS = (
    "Search for a phone number with the search box on this page: a number is never put in the "
    "page’s address"
)


def register(pages: Blueprint, site: Site) -> None:
    @pages.get("/respondents", endpoint="respondents")
    @site.staff_page
    def list_respondents(member: StaffMember) -> str:
        return list_view(member, request.args, searched=False)

    @pages.post("/respondents", endpoint="respondents_search")
    @site.staff_page
    def search_respondents(member: StaffMember) -> BaseResponse | str:
        """The search form: a number is answered here; anything else is sent to the GET page,
        whose address may be kept and shared."""
        if read_search(request.form.get("q", "")).private:
            return list_view(member, request.form, searched=True)
        fields = ("q", "status", "cohort", "contact")
        values: dict[str, Any] = {name: request.form.get(name, "") for name in fields}
        return redirect(url_for(".respondents", **{k: v for k, v in values.items() if v}))

    def list_view(member: StaffMember, args: Mapping[str, str], *, searched: bool) -> str:
        runtime = site.runtime
        zone = parse_timezone(runtime.config.outreach.timezone)
        with site.engine.connect() as connection:
            conn = read_only(connection)
            choices = visible_cohorts(conn, member)
            filters = read_filters(args, [cohort_id for cohort_id, _ in choices])
            if filters.search.private and not searched:
                filters = replace(
                    filters, search=Search(problem=NUMBER_IN_ADDRESS, refused_in_address=True)
                )
            page = list_page(conn, member, filters, site.now())
            rows = shown(page, keys_of(conn), runtime.flow, zone)
        site.audit_view(member, AUDIT_ACTION, detail=filters.describe())
        values: dict[str, Any] = dict(filters.query_values())
        if filters.search.private:
            values.pop("q", None)
        previous_href = (
            url_for(".respondents", **values, after=rows[0].id) if page.has_previous else None
        )
        next_href = url_for(".respondents", **values, before=rows[-1].id) if page.has_next else None
        return render_template(
            "respondents.html",
            form=filter_form(filters, choices),
            filters=filters,
            page=page,
            rows=rows,
            admin=member.role == ADMIN,
            previous_href=previous_href,
            next_href=next_href,
            first_href=url_for(".respondents", **values),
        )
