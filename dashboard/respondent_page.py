"""The respondent page, `GET /respondents/<id>`: everything known of one resident.

The rule it keeps: the page is a query (`read_respondent`), a pure function (`respondent_view`)
and a template. The respondent is reached only through `respondent_or_404` (another team's
resident answers 404, exactly like an id that does not exist); it is read in a read-only
transaction and its audit line ("view respondent") written before it is shown. Every number
comes from `scoring/` (the profile per heading, the ranked priorities and the message they make,
gains against the baseline); nothing here scores. Questions and answers are shown in the flow's
English for staff, whatever the resident's language (which is said); the phone number is shown
only masked; every time is in the council's time zone (`[outreach] timezone`). Odd data is said,
never a crash: a conversation state that cannot be read, an answer to a question (or an option)
this version of the flow does not have, a number the keys cannot decrypt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, render_template, request
from markupsafe import Markup

from bot.state import State, StateError
from dashboard.accounts import StaffMember
from dashboard.charts import PairedBars, percent, skill_interest_chart
from dashboard.site import Site, respondent_or_404
from flows.model import Flow, Question, Scale, Texts
from outreach.phone import masked_urn
from outreach.quiet_hours import parse_timezone
from scoring import (
    Gains,
    Priority,
    Profile,
    change_line,
    gains,
    priorities,
    priorities_message,
    profile,
)
from scoring.message import join_names
from storage import timeline
from storage.database import read_only
from storage.models import (
    Answer,
    Assessment,
    Checkin,
    Cohort,
    CohortMember,
    Conversation,
    Enrolment,
    FollowUpThread,
    OutboxEntry,
    Team,
    table,
)
from storage.outbox import SUPERSEDED_ERROR
from storage.privacy import Keys, PrivacyKeyError, keys_of
from storage.repository import open_thread

AUDIT_ACTION = "view respondent"
SHOWN_MESSAGES = 200
"""The latest messages shown at first; `?messages=all` shows every one."""
STAFF_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "cy": "Welsh"}
LAWFUL_BASES = {
    "consent": "consent",
    "contract": "contract",
    "legal_obligation": "legal obligation",
    "vital_interests": "vital interests",
    "public_task": "public task",
    "legitimate_interests": "legitimate interests",
}
MODE_NAMES = {"quick": "quick check", "full": "full assessment"}
KIND_NAMES = {"baseline": "First check", "checkin": "Check-in"}
CHANNEL_NAMES = {"sms": "SMS", "telegram": "Telegram", "terminal": "Terminal"}
OUT_KINDS = {
    "reply": "reply",
    "invitation": "invitation",
    "followup": "follow-up",
    "reminder": "reminder",
    "checkin": "check-in invitation",
}
STAGES = {
    "new": "invited, has not replied",
    "language": "choosing a language",
    "consent": "reading the privacy notice, has not agreed yet",
    "mode": "agreed, choosing quick check or full assessment",
    "asking": "answering questions",
    "paused": "said LATER: they carry on when they next text",
    "resume": "back after a long gap, asked to carry on or start again",
    "restart": "asked to start again, confirming",
    "checkin": "invited to a check-in, has not started it",
    "done": "finished",
    "declined": "said no at the privacy notice",
}

assessments = table(Assessment)
answers = table(Answer)
checkins = table(Checkin)
cohorts = table(Cohort)
cohort_members = table(CohortMember)
conversations = table(Conversation)
enrolments = table(Enrolment)
outbox = table(OutboxEntry)
teams = table(Team)
threads = table(FollowUpThread)


# --- what the query reads ------------------------------------------------------------------


@dataclass(frozen=True)
class StoredAnswer:
    question: str
    option: int | None
    """None: skipped."""


@dataclass(frozen=True)
class StoredAssessment:
    id: int
    kind: str
    mode: str
    started_at: datetime
    completed_at: datetime | None
    abandoned_at: datetime | None
    skills_basis: str | None
    baseline_id: int | None
    assisted_by: str | None
    answers: tuple[StoredAnswer, ...]

    def chosen(self) -> dict[str, int]:
        """Question key -> option number, for the questions answered (not skipped)."""
        return {a.question: a.option for a in self.answers if a.option is not None}


@dataclass(frozen=True)
class StoredCheckin:
    due_at: datetime
    status: str
    skip_reason: str | None
    invited_at: datetime | None
    scheduled_by: str
    cohort: str | None
    outbox_id: int | None


@dataclass(frozen=True)
class Waiting:
    """An outbox row not yet handed over: when it may go, and how often it was tried."""

    next_attempt_at: datetime
    attempts: int


@dataclass(frozen=True)
class RespondentRecord:
    """What the database holds about one respondent, decrypted, nothing worked out yet."""

    id: int
    urn: str | None
    """None when it cannot be decrypted with the keys this service has."""
    language: str
    consented_at: datetime | None
    opted_out: bool
    opted_out_at: datetime | None
    unreachable: bool
    created_at: datetime
    team: str | None
    cohorts: tuple[tuple[str, str | None], ...]
    enrolments: tuple[tuple[datetime, str, str, str | None], ...]
    """(when, by whom, lawful basis, cohort)."""
    assessments: tuple[StoredAssessment, ...]
    """Oldest first."""
    state: str | None
    """The conversation's saved state (JSON); None: no conversation."""
    last_inbound_at: datetime | None
    thread: tuple[datetime, str, datetime] | None
    """The open follow-up thread: (opened, by whom, closes)."""
    messages: tuple[timeline.TimelineItem, ...]
    waiting: Mapping[int, Waiting]
    checkins: tuple[StoredCheckin, ...]


def read_respondent(conn: sa.Connection, row: Any, keys: Keys, now: datetime) -> RespondentRecord:
    """Everything the page shows of the respondent `row` (from `respondent_or_404`)."""
    rid = row.id
    try:
        urn: str | None = keys.decrypt(row.urn_cipher)
    except PrivacyKeyError:
        urn = None
    team = None
    if row.team_id is not None:
        team = conn.execute(sa.select(teams.c.name).where(teams.c.id == row.team_id)).scalar()
    cohort_rows = conn.execute(
        sa.select(cohorts.c.name, cohorts.c.initiative)
        .join_from(cohort_members, cohorts, cohort_members.c.cohort_id == cohorts.c.id)
        .where(cohort_members.c.respondent_id == rid)
        .order_by(cohorts.c.name)
    ).all()
    enrolment_rows = conn.execute(
        sa.select(
            enrolments.c.enrolled_at,
            enrolments.c.enrolled_by,
            enrolments.c.lawful_basis,
            cohorts.c.name,
        )
        .join_from(enrolments, cohorts, enrolments.c.cohort_id == cohorts.c.id, isouter=True)
        .where(enrolments.c.respondent_id == rid)
        .order_by(enrolments.c.enrolled_at, enrolments.c.id)
    ).all()
    conversation = conn.execute(
        sa.select(conversations.c.state, conversations.c.last_inbound_at).where(
            conversations.c.respondent_id == rid
        )
    ).first()
    thread = conn.execute(
        sa.select(threads.c.opened_at, threads.c.opened_by, threads.c.closes_at)
        .where(threads.c.respondent_id == rid, *open_thread(now))
        .order_by(threads.c.opened_at.desc())
        .limit(1)
    ).first()
    waiting = conn.execute(
        sa.select(outbox.c.id, outbox.c.next_attempt_at, outbox.c.attempts).where(
            outbox.c.respondent_id == rid, outbox.c.status == "pending"
        )
    ).all()
    checkin_rows = conn.execute(
        sa.select(
            checkins.c.due_at,
            checkins.c.status,
            checkins.c.skip_reason,
            checkins.c.invited_at,
            checkins.c.scheduled_by,
            cohorts.c.name,
            checkins.c.outbox_id,
        )
        .join_from(checkins, cohorts, checkins.c.cohort_id == cohorts.c.id, isouter=True)
        .where(checkins.c.respondent_id == rid)
        .order_by(checkins.c.due_at, checkins.c.id)
    ).all()
    return RespondentRecord(
        id=rid,
        urn=urn,
        language=row.language,
        consented_at=row.consented_at,
        opted_out=row.opted_out,
        opted_out_at=row.opted_out_at,
        unreachable=row.unreachable,
        created_at=row.created_at,
        team=team,
        cohorts=tuple((r.name, r.initiative) for r in cohort_rows),
        enrolments=tuple((r[0], r[1], r[2], r[3]) for r in enrolment_rows),
        assessments=_read_assessments(conn, rid),
        state=None if conversation is None else conversation.state,
        last_inbound_at=None if conversation is None else conversation.last_inbound_at,
        thread=None if thread is None else (thread.opened_at, thread.opened_by, thread.closes_at),
        messages=tuple(timeline.read(conn, rid, keys)),
        waiting={r.id: Waiting(r.next_attempt_at, r.attempts) for r in waiting},
        checkins=tuple(StoredCheckin(*r) for r in checkin_rows),
    )


def _read_assessments(conn: sa.Connection, respondent_id: int) -> tuple[StoredAssessment, ...]:
    rows = conn.execute(
        sa.select(assessments)
        .where(assessments.c.respondent_id == respondent_id)
        .order_by(assessments.c.started_at, assessments.c.id)
    ).all()
    found: dict[int, list[StoredAnswer]] = {row.id: [] for row in rows}
    for answer in conn.execute(
        sa.select(answers.c.assessment_id, answers.c.question, answers.c.option)
        .join_from(answers, assessments, answers.c.assessment_id == assessments.c.id)
        .where(assessments.c.respondent_id == respondent_id)
        .order_by(answers.c.id)
    ):
        found[answer.assessment_id].append(StoredAnswer(answer.question, answer.option))
    return tuple(
        StoredAssessment(
            id=row.id,
            kind=row.kind,
            mode=row.mode,
            started_at=row.started_at,
            completed_at=row.completed_at,
            abandoned_at=row.abandoned_at,
            skills_basis=row.skills_basis,
            baseline_id=row.baseline_id,
            assisted_by=row.assisted_by,
            answers=tuple(found[row.id]),
        )
        for row in rows
    )


# --- what the page shows -------------------------------------------------------------------


@dataclass(frozen=True)
class Tag:
    text: str
    colour: str
    """A govuk-tag colour modifier ("green", "red"…); the text always says it too."""


@dataclass(frozen=True)
class HeadingRow:
    heading: str
    skill: str
    interest: str
    basis: str
    """What the heading's numbers rest on: "8 skills", "quick check answer"…"""


@dataclass(frozen=True)
class ProfileView:
    source: str
    """Which assessment the profile is of."""
    chart: Markup
    rows: tuple[HeadingRow, ...]
    basics_index: str
    not_asked: bool
    """They skipped the skills (no device or connection): skills are not asked, not zero."""


@dataclass(frozen=True)
class PriorityLine:
    rank: int
    name: str
    heading: str
    skill: str
    interest: str


@dataclass(frozen=True)
class PrioritiesView:
    sent: bool
    """The assessment is finished, so the resident was sent these."""
    basics: str
    """"a device and internet access" when basics are missing, else ""."""
    barriers: str
    top: tuple[PriorityLine, ...]
    more: tuple[PriorityLine, ...]
    verdict: str
    """When nothing stands out: doing well, or no one thing stood out."""
    message: str
    """Their priorities message, in English."""


@dataclass(frozen=True)
class AnswerRow:
    question: str
    answer: str
    skipped: bool = False


@dataclass(frozen=True)
class AnswerGroup:
    title: str
    rows: tuple[AnswerRow, ...]
    note: str = ""
    """Said instead of rows when it has none: "Not asked…", "Not answered yet"."""


@dataclass(frozen=True)
class AssessmentView:
    id: int
    title: str
    details: tuple[tuple[str, str], ...]
    groups: tuple[AnswerGroup, ...]
    answered: int
    skipped: int


@dataclass(frozen=True)
class MessageView:
    at: str
    direction: str
    channel: str
    kind: str
    text: str | None
    status: Tag | None


@dataclass(frozen=True)
class CheckinView:
    due: str
    status: str
    scheduled_by: str
    cohort: str


@dataclass(frozen=True)
class GainView:
    title: str
    sentence: str
    rows: tuple[tuple[str, str, str], ...]
    """(heading, skills compared, mean change in points)."""


@dataclass(frozen=True)
class RespondentView:
    id: int
    masked: str
    tag: Tag
    summary: tuple[tuple[str, str], ...]
    thread: str
    language_note: str
    profile: ProfileView | None
    priorities: PrioritiesView | None
    assessments: tuple[AssessmentView, ...]
    messages: tuple[MessageView, ...]
    message_count: int
    checkins: tuple[CheckinView, ...]
    gains: tuple[GainView, ...]
    zone: str


def respondent_view(
    flow: Flow, record: RespondentRecord, zone: ZoneInfo, now: datetime, *, all_messages: bool
) -> RespondentView:
    """The page for `record`: pure, from the flow, the record, the time zone and `now`."""
    state, state_problem = _state(record.state)
    latest = record.assessments[-1] if record.assessments else None
    shown = _profile_source(record.assessments)
    messages = record.messages if all_messages else record.messages[-SHOWN_MESSAGES:]
    by_outbox = {m.outbox_id: m for m in record.messages if m.outbox_id is not None}
    return RespondentView(
        id=record.id,
        masked=masked_urn(record.urn) if record.urn else "number unreadable",
        tag=_tag(record, latest, state),
        summary=_summary(flow, record, latest, state, state_problem, zone),
        thread=_thread(record, zone),
        language_note=_language_note(flow, record.language),
        profile=None if shown is None else _profile_view(flow, shown, zone),
        priorities=None if shown is None else _priorities_view(flow, shown, record, zone),
        assessments=tuple(_assessment_view(flow, a, zone) for a in reversed(record.assessments)),
        messages=tuple(_message_view(m, record.waiting, zone, now) for m in messages),
        message_count=len(record.messages),
        checkins=tuple(
            _checkin_view(c, by_outbox, record.waiting, zone, now) for c in record.checkins
        ),
        gains=_gains(flow, record.assessments, zone),
        zone=zone.key,
    )


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """ "2 March 2027, 10:00 GMT" in the council's zone."""
    here = moment.astimezone(zone)
    return f"{here.day} {here:%B %Y, %H:%M %Z}"


def _month(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%B %Y}"


def _en(texts: Texts) -> str:
    return texts.get(STAFF_LANGUAGE) or next(iter(texts.values()), "")


def _state(saved: str | None) -> tuple[State | None, str]:
    if saved is None:
        return None, "no conversation yet"
    try:
        return State.from_json(saved), ""
    except (StateError, ValueError, TypeError):
        return None, "its saved state could not be read: it starts again when they next text"


def _tag(record: RespondentRecord, latest: StoredAssessment | None, state: State | None) -> Tag:
    if record.opted_out:
        return Tag("Opted out", "red")
    if record.unreachable:
        return Tag("Unreachable", "orange")
    if record.consented_at is None:
        if state is not None and state.stage == "declined":
            return Tag("Said no", "grey")
        return Tag("Not started", "blue")
    if latest is not None and latest.completed_at is not None:
        return Tag("Completed", "green")
    if latest is not None and latest.abandoned_at is None:
        return Tag("In progress", "yellow")
    return Tag("Consented", "turquoise")


def _summary(
    flow: Flow,
    record: RespondentRecord,
    latest: StoredAssessment | None,
    state: State | None,
    state_problem: str,
    zone: ZoneInfo,
) -> tuple[tuple[str, str], ...]:
    rows = [
        ("Language", _language(flow, record.language)),
        ("Team", record.team or "No team: they started by texting in (admins only)"),
        (
            "Cohorts",
            ", ".join(
                f"{name} ({initiative})" if initiative else name
                for name, initiative in record.cohorts
            )
            or "None",
        ),
    ]
    enrolled = [
        f"{local_time(at, zone)} by {by}, lawful basis: {LAWFUL_BASES.get(basis, basis)}"
        + (f", cohort {cohort}" if cohort else "")
        for at, by, basis, cohort in record.enrolments
    ]
    rows.append(("Enrolled", "; ".join(enrolled) or "Never: they texted first"))
    if record.consented_at is not None:
        consent = f"Given {local_time(record.consented_at, zone)}"
    elif state is not None and state.stage == "declined":
        consent = "Not given: they said no"
    else:
        consent = "Not given yet"
    rows.append(("Consent", consent))
    if record.opted_out:
        since = f" since {local_time(record.opted_out_at, zone)}" if record.opted_out_at else ""
        rows.append(("Opted out", f"Yes{since}: nothing is sent until they text START"))
    else:
        rows.append(("Opted out", "No"))
    rows.append(
        (
            "Reachable",
            "No: messages cannot reach them (until they write again)"
            if record.unreachable
            else "Yes",
        )
    )
    rows.append(("Assessment", _progress(latest, zone)))
    conversation = state_problem or STAGES.get(state.stage if state else "", "")
    rows.append(("Conversation", conversation[:1].upper() + conversation[1:]))
    last = record.last_inbound_at
    rows.append(("Last message from them", local_time(last, zone) if last else "None yet"))
    return tuple(rows)


def _progress(latest: StoredAssessment | None, zone: ZoneInfo) -> str:
    if latest is None:
        return "Not started"
    what = f"{KIND_NAMES.get(latest.kind, latest.kind)}, {_mode(latest.mode)}"
    answered = sum(a.option is not None for a in latest.answers)
    skipped = len(latest.answers) - answered
    counted = f"{answered} answered, {skipped} skipped"
    if latest.completed_at is not None:
        return f"Completed {local_time(latest.completed_at, zone)} ({what}; {counted})"
    if latest.abandoned_at is not None:
        return f"Not finished: set aside {local_time(latest.abandoned_at, zone)} ({what})"
    return f"In progress since {local_time(latest.started_at, zone)} ({what}; {counted} so far)"


def _mode(mode: str) -> str:
    return MODE_NAMES.get(mode, mode or "mode not chosen")


def _language(flow: Flow, code: str) -> str:
    own = flow.language_names.get(code)
    english = LANGUAGE_NAMES.get(code)
    if english and own and own != english:
        return f"{english} ({own})"
    return english or own or code


def _language_note(flow: Flow, code: str) -> str:
    if code == STAFF_LANGUAGE:
        return ""
    return (
        f"They use dibot in {_language(flow, code)}. Questions and answers are shown here in "
        "English; the messages are as they were sent."
    )


def _thread(record: RespondentRecord, zone: ZoneInfo) -> str:
    if record.thread is None:
        return ""
    opened, by, closes = record.thread
    return (
        f"A follow-up conversation is open: {by} wrote {local_time(opened, zone)}. The bot stays "
        f"quiet and their texts wait for a worker until {local_time(closes, zone)}."
    )


# --- the profile and priorities ------------------------------------------------------------


def _profile_source(found: Sequence[StoredAssessment]) -> StoredAssessment | None:
    """The latest finished assessment, else the latest with any answer."""
    for assessment in reversed(found):
        if assessment.completed_at is not None:
            return assessment
    for assessment in reversed(found):
        if any(a.option is not None for a in assessment.answers):
            return assessment
    return None


def scorable(flow: Flow, chosen: Mapping[str, int]) -> dict[str, int]:
    """The answers this flow can score: a question it no longer has, or a number its scale
    does not have (data from another version of the flow), is left out, never a crash."""
    kept = {}
    for key, number in chosen.items():
        question = flow.questions.get(key)
        if question is None:
            continue
        if any(option.number == number for option in flow.scale_of(question).options):
            kept[key] = number
    return kept


def respondent_profile(flow: Flow, assessment: StoredAssessment) -> Profile:
    return profile(flow, scorable(flow, assessment.chosen()))


def _profile_view(flow: Flow, assessment: StoredAssessment, zone: ZoneInfo) -> ProfileView:
    scored = respondent_profile(flow, assessment)
    not_asked = assessment.skills_basis == "not_asked"
    missing = "not asked" if not_asked else "not answered"
    groups = []
    rows = []
    for heading, score in zip(flow.headings, scored.headings, strict=True):
        name = _en(heading.title)
        groups.append(PairedBars(name, score.skill, score.interest, missing))
        rows.append(
            HeadingRow(
                heading=name,
                skill=missing if score.skill is None else percent(score.skill),
                interest=missing if score.interest is None else percent(score.interest),
                basis=_basis(scored, heading.id),
            )
        )
    title = _assessment_title(assessment, zone)
    source = title[:1].lower() + title[1:]
    chart = skill_interest_chart(
        groups,
        chart_id=f"profile-{assessment.id}",
        title="Skill and interest per heading",
        summary=(
            f"From their {source}. Each heading's skill and confidence, and interest and "
            "motivation, as a share of the most they could score."
        ),
    )
    index = scored.basics_index
    return ProfileView(
        source=source,
        chart=chart,
        rows=tuple(rows),
        basics_index="not answered" if index is None else percent(index),
        not_asked=not_asked,
    )


def _basis(scored: Profile, heading_id: str) -> str:
    items = [u for u in scored.units if u.heading == heading_id and u.id != heading_id]
    if items:
        return f"{len(items)} skill{'s' * (len(items) != 1)}"
    if scored.unit(heading_id) is not None:
        return "quick check answer"
    return "nothing answered"


def _priorities_view(
    flow: Flow, assessment: StoredAssessment, record: RespondentRecord, zone: ZoneInfo
) -> PrioritiesView:
    scored = respondent_profile(flow, assessment)
    ranked = priorities(flow, scored)
    top = flow.priority.top
    lines = tuple(_priority_line(flow, rank, p) for rank, p in enumerate(ranked, 1))
    basics = [_en(flow.item(i).short) for i in scored.missing_basics]
    barriers = [_en(flow.item(i).short) for i in scored.barriers]
    message = priorities_message(
        flow, scored, STAFF_LANGUAGE, change=_change(flow, assessment, record, zone)
    )
    verdict = ""
    if not (basics or barriers or ranked):
        if flow.text("priorities_none", STAFF_LANGUAGE) in message.splitlines():
            verdict = (
                "Doing well: confident with every skill they answered; nothing stands out that "
                "they need help with now."
            )
        else:
            verdict = (
                "No one thing to learn stood out from their answers (too few answered, or "
                "nothing they are keen to learn): worth a conversation."
            )
    return PrioritiesView(
        sent=assessment.completed_at is not None,
        basics=join_names(flow, STAFF_LANGUAGE, basics) if basics else "",
        barriers=join_names(flow, STAFF_LANGUAGE, barriers) if barriers else "",
        top=lines[:top],
        more=lines[top:],
        verdict=verdict,
        message=message,
    )


def _change(
    flow: Flow, assessment: StoredAssessment, record: RespondentRecord, zone: ZoneInfo
) -> str:
    baseline = _baseline_of(assessment, record.assessments)
    if baseline is None:
        return ""
    since = _month(baseline.completed_at or baseline.started_at, zone)
    before = scorable(flow, baseline.chosen())
    return change_line(flow, before, scorable(flow, assessment.chosen()), since, STAFF_LANGUAGE)


def _baseline_of(
    assessment: StoredAssessment, found: Sequence[StoredAssessment]
) -> StoredAssessment | None:
    if assessment.kind != "checkin" or assessment.baseline_id is None:
        return None
    return next((a for a in found if a.id == assessment.baseline_id), None)


def _priority_line(flow: Flow, rank: int, found: Priority) -> PriorityLine:
    """Named as the resident's message names it (`short`), with the heading it belongs to."""
    heading = _en(flow.heading(found.heading).title)
    if found.unit == found.heading:
        name = _en(flow.heading(found.heading).short)
        topic = "" if name == heading else f", {heading}"
        where = f"the whole topic{topic}, from the quick check"
    else:
        name, where = _en(flow.item(found.unit).short), heading
    interest = (
        "not asked"
        if found.interest is None
        else _score_label(flow.scales["interest"], found.interest)
    )
    return PriorityLine(
        rank=rank,
        name=name,
        heading=where,
        skill=_score_label(flow.scales["skill"], found.skill),
        interest=interest,
    )


def _score_label(scale: Scale, score: int) -> str:
    for option in scale.options:
        if option.score == score:
            return _en(option.label)
    return f"score {score}"


# --- every answer ----------------------------------------------------------------------------


def _assessment_title(assessment: StoredAssessment, zone: ZoneInfo) -> str:
    """ "First check, quick check, started 2 March 2027, 10:00 GMT"."""
    kind = KIND_NAMES.get(assessment.kind, assessment.kind)
    return f"{kind}, {_mode(assessment.mode)}, started {local_time(assessment.started_at, zone)}"


def _assessment_view(flow: Flow, assessment: StoredAssessment, zone: ZoneInfo) -> AssessmentView:
    details = [("Mode", _mode(assessment.mode).capitalize())]
    if assessment.completed_at is not None:
        details.append(("Finished", local_time(assessment.completed_at, zone)))
    elif assessment.abandoned_at is not None:
        details.append(("Finished", f"No: set aside {local_time(assessment.abandoned_at, zone)}"))
    else:
        details.append(("Finished", "No: in progress"))
    if assessment.assisted_by:
        details.append(("Filled in with", f"a member of staff: {assessment.assisted_by}"))
    if assessment.kind == "checkin":
        details.append(("Compares with", "their first check (same questions)"))
    if assessment.skills_basis == "not_asked":
        details.append(("Skills", "Not asked: no device or connection, and they chose to skip"))
    elif assessment.skills_basis == "as_if":
        details.append(("Skills", "Answered as if they had a device and a connection"))
    return AssessmentView(
        id=assessment.id,
        title=_assessment_title(assessment, zone),
        details=tuple(details),
        groups=_answer_groups(flow, assessment),
        answered=sum(a.option is not None for a in assessment.answers),
        skipped=sum(a.option is None for a in assessment.answers),
    )


def _answer_groups(flow: Flow, assessment: StoredAssessment) -> tuple[AnswerGroup, ...]:
    stored = {a.question: a for a in assessment.answers}
    order = {key: index for index, key in enumerate(flow.questions)}
    by_group: dict[str, list[AnswerRow]] = {}
    unknown: list[AnswerRow] = []
    for key in sorted(stored, key=lambda k: (order.get(k, len(order)), k)):
        question = flow.questions.get(key)
        if question is None:
            unknown.append(_unknown_row(stored[key]))
            continue
        by_group.setdefault(_group_of(question), []).append(_row(flow, question, stored[key]))
    finished = assessment.completed_at is not None
    skills_note = (
        "Not asked: they have no device or connection and chose to skip the skills"
        if assessment.skills_basis == "not_asked"
        else ("Not asked" if finished else "Not answered yet")
    )
    empty = "Not asked" if finished else "Not answered yet"
    groups = [
        AnswerGroup(title, tuple(by_group.get(section, ())), empty)
        for section, title in (
            ("basics", "Basics"),
            ("blockers", "What makes it hard to go online"),
        )
    ]
    for heading in flow.headings:
        rows = tuple(by_group.get(heading.id, ()))
        groups.append(AnswerGroup(_en(heading.title), rows, skills_note))
    if unknown:
        groups.append(
            AnswerGroup("Questions not in this version of the questionnaire", tuple(unknown))
        )
    return tuple(groups)


def _group_of(question: Question) -> str:
    if question.section == "skills" and question.heading is not None:
        return question.heading
    return question.section


def _row(flow: Flow, question: Question, answer: StoredAnswer) -> AnswerRow:
    text = _en(question.text)
    if answer.option is None:
        return AnswerRow(text, "Skipped", skipped=True)
    scale = flow.scale_of(question)
    try:
        return AnswerRow(text, _en(scale.option(answer.option).label))
    except KeyError:
        return AnswerRow(text, f"Option {answer.option} (not on this scale)")


def _unknown_row(answer: StoredAnswer) -> AnswerRow:
    if answer.option is None:
        return AnswerRow(answer.question, "Skipped", skipped=True)
    return AnswerRow(answer.question, f"Option {answer.option}")


# --- messages, check-ins and gains -------------------------------------------------------------


def _message_view(
    item: timeline.TimelineItem, waiting: Mapping[int, Waiting], zone: ZoneInfo, now: datetime
) -> MessageView:
    if item.direction == "in":
        direction = "From them"
        kind = "held for a worker" if item.kind == "held" else "message"
        status = None
    else:
        direction = "To them"
        kind = OUT_KINDS.get(item.kind, item.kind)
        if item.by:
            kind = f"{kind} by {item.by}"
        status = delivery(item, waiting.get(item.outbox_id or -1), zone, now)
    return MessageView(
        at=local_time(item.at, zone),
        direction=direction,
        channel=CHANNEL_NAMES.get(item.channel, item.channel),
        kind=kind,
        text=item.text,
        status=status,
    )


def delivery(
    item: timeline.TimelineItem, waiting: Waiting | None, zone: ZoneInfo, now: datetime
) -> Tag:
    """What became of an outgoing message, in words."""
    code = f" (error {item.delivery_error_code})" if item.delivery_error_code is not None else ""
    if item.outbox_id is None:
        return Tag("Sent as the reply", "grey")
    status = item.send_status
    if status is None:
        return Tag("No record of sending", "grey")
    if status == "pending":
        if waiting is not None and waiting.next_attempt_at > now:
            when = local_time(waiting.next_attempt_at, zone)
            if waiting.attempts == 0:
                return Tag(f"Waiting for quiet hours: goes {when}", "blue")
            return Tag(f"Waiting to try again {when}", "yellow")
        return Tag("Waiting to send", "blue")
    if status in ("claimed", "sending"):
        return Tag("Sending", "blue")
    if status == "failed":
        if item.send_error == SUPERSEDED_ERROR:
            return Tag("Not sent: they had written to us since it was queued", "grey")
        if item.send_error in ("opted out", "unreachable"):
            return Tag(f"Given up: {item.send_error}", "red")
        reason = f": {item.send_error}" if item.send_error else ""
        return Tag(f"Failed{reason}", "red")
    if status == "unknown":
        return Tag("Not confirmed: it may have gone, and is not sent again", "orange")
    provider = item.delivery_status
    if provider == "delivered":
        return Tag("Delivered", "green")
    if provider == "read":
        return Tag("Read", "green")
    if provider == "undelivered":
        return Tag(f"Not delivered{code}", "red")
    if provider == "failed":
        return Tag(f"Failed at the provider{code}", "red")
    return Tag("Sent", "turquoise")


def _checkin_view(
    checkin: StoredCheckin,
    by_outbox: Mapping[int, timeline.TimelineItem],
    waiting: Mapping[int, Waiting],
    zone: ZoneInfo,
    now: datetime,
) -> CheckinView:
    if checkin.status == "scheduled":
        status = "Scheduled"
    elif checkin.status == "invited":
        when = local_time(checkin.invited_at, zone) if checkin.invited_at else "at an unknown time"
        status = f"Invitation sent {when}"
        sent = by_outbox.get(checkin.outbox_id) if checkin.outbox_id is not None else None
        if sent is not None:
            status += f": {delivery(sent, waiting.get(checkin.outbox_id or -1), zone, now).text}"
    elif checkin.status == "skipped":
        status = f"Skipped: {checkin.skip_reason or 'no reason kept'}"
    else:
        status = checkin.status.capitalize()
    return CheckinView(
        due=local_time(checkin.due_at, zone),
        status=status,
        scheduled_by=checkin.scheduled_by,
        cohort=checkin.cohort or "",
    )


def _gains(flow: Flow, found: Sequence[StoredAssessment], zone: ZoneInfo) -> tuple[GainView, ...]:
    views = []
    for assessment in found:
        baseline = _baseline_of(assessment, found)
        if baseline is None or assessment.completed_at is None:
            continue
        compared = gains(
            flow, scorable(flow, baseline.chosen()), scorable(flow, assessment.chosen())
        )
        since = _month(baseline.completed_at or baseline.started_at, zone)
        views.append(
            GainView(
                title=f"Check-in finished {local_time(assessment.completed_at, zone)}",
                sentence=gain_sentence(compared, since),
                rows=tuple(
                    (
                        _en(flow.heading(h.heading).title),
                        str(h.compared),
                        "" if h.gain is None else f"{h.gain:+.2f}",
                    )
                    for h in compared.headings
                    if h.compared
                ),
            )
        )
    return tuple(reversed(views))


def gain_sentence(compared: Gains, since: str) -> str:
    """ "More confident with 7 things since March 2027; less with 1; the same with 4 (on
    average +0.50 points on a 0 to 4 scale)."""
    units = compared.units
    if compared.overall is None:
        return f"No skill was answered both in {since} and now."
    better = sum(unit.gain > 0 for unit in units)
    worse = sum(unit.gain < 0 for unit in units)
    same = len(units) - better - worse
    return (
        f"More confident with {better} thing{'s' * (better != 1)} since {since}; "
        f"less with {worse}; the same with {same} "
        f"(on average {compared.overall:+.2f} points a skill)."
    )


# --- the route ---------------------------------------------------------------------------------


def register(pages: Blueprint, site: Site) -> None:
    @pages.get("/respondents/<int:respondent_id>", endpoint="respondent")
    @site.staff_page
    def respondent(member: StaffMember, respondent_id: int) -> str:
        now = site.now()
        with site.engine.connect() as connection:
            conn = read_only(connection)
            row = respondent_or_404(conn, member, respondent_id)
            record = read_respondent(conn, row, keys_of(conn), now)
        site.audit_view(member, AUDIT_ACTION, respondent_id=respondent_id)
        runtime = site.runtime
        zone = parse_timezone(runtime.config.outreach.timezone)
        view = respondent_view(
            runtime.flow, record, zone, now, all_messages=request.args.get("messages") == "all"
        )
        return render_template("respondent.html", page=view, shown_messages=SHOWN_MESSAGES)
