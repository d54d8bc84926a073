"""Enrolment: an outreach worker adds a resident, who is invited to the check by text.

The rule it keeps: one transaction enrols a resident (creating them if they never texted),
records who enrolled them and on what lawful basis, adds them to a cohort if one is named
(creating it), and queues the invitation the engine would send to their first message, held
to the council's quiet hours. No one is invited twice, or while they are opted out: someone
already talking to dibot is enrolled but not interrupted. Time is the `now` argument.

Teams (the dashboard, `dibot enrol --team`): an enrolment for a team gives a resident who has no
team to it and joins only that team's cohorts (a cohort it names that does not exist yet is made
in that team). A resident already in another team is refused with `ANOTHER_TEAM`, which says
nothing more about them; an admin's enrolment (`move_team`) moves them to the team the admin
picked instead (the dashboard's admins pick the team; it is their own unless they choose
another). An enrolment for no team (`dibot enrol` without `--team`) changes no one's team and
may join any cohort, as before teams. A request sent twice (a form submitted twice) is one
enrolment when it says so (`repeat_window`): nothing more is written, and the first one's
outcome comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from bot.engine import invite
from bot.state import State
from channels.identifiers import is_telegram_id
from flows.model import Flow
from outreach.outbound import queue_outreach
from outreach.phone import urn_for_phone
from outreach.quiet_hours import QuietHours
from storage.models import (
    Cohort,
    CohortMember,
    Conversation,
    Enrolment,
    OutboxEntry,
    Respondent,
    table,
)
from storage.repository import TurnStore, dialect_insert

cohorts = table(Cohort)
cohort_members = table(CohortMember)
enrolments = table(Enrolment)
respondents = table(Respondent)
outbox = table(OutboxEntry)
conversations = table(Conversation)

SMS_CHANNEL = "sms"
TELEGRAM_CHANNEL = "telegram"
MAX_NAME = 100
ANOTHER_TEAM = "This resident is already enrolled by another team: ask an admin"


class EnrolmentError(ValueError):
    """What was asked cannot be done; the message says what and why, never a phone number."""


@dataclass(frozen=True)
class EnrolmentRequest:
    phone: str | None
    telegram: str | None
    cohort: str | None
    initiative: str | None
    language: str | None
    enrolled_by: str
    lawful_basis: str
    team_id: int | None = None
    """The team enrolling them; None: no team is given, checked or changed."""
    move_team: bool = False
    """An admin's enrolment: a resident in another team moves to `team_id`, not refused."""
    repeat_window: timedelta | None = None
    """When given, the same request (same person enrolling, resident and cohort) made again
    within this long is the first one, not a second enrolment: a form sent twice."""


@dataclass(frozen=True)
class Enrolled:
    respondent_id: int
    new: bool
    """They had never texted and were not enrolled before."""
    invited: bool
    not_invited_because: str | None
    invitation_segments: int
    send_after: datetime | None
    """When quiet hours let the invitation go (None: at once)."""
    cohort: str | None
    repeated: bool = False
    """The request repeated one made within `repeat_window`: nothing was written, and the rest
    says what the first one did (`new` is then False)."""


def urn_of(request: EnrolmentRequest) -> tuple[str, str]:
    """(urn, channel): Telegram when a chat id is given (the bot can only write to someone who
    started it), else the phone number, normalised to E.164."""
    if request.telegram is not None:
        chat = request.telegram.strip()
        if not (chat.lstrip("-").isascii() and chat.lstrip("-").isdigit()):
            raise EnrolmentError("--telegram must be a Telegram chat id (digits)")
        if not is_telegram_id(int(chat)):
            raise EnrolmentError("--telegram is not a Telegram chat id: too long")
        return f"telegram:{int(chat)}", TELEGRAM_CHANNEL
    if request.phone is None:
        raise EnrolmentError("give --phone NUMBER (or --telegram CHAT_ID)")
    return urn_for_phone(request.phone), SMS_CHANNEL


def enrol(
    engine: sa.Engine,
    flow: Flow,
    request: EnrolmentRequest,
    quiet: QuietHours,
    now: datetime,
) -> Enrolled:
    urn, channel = urn_of(request)
    if request.language is not None and request.language not in flow.languages:
        raise EnrolmentError(
            f"--language {request.language!r} is not offered (offered: {', '.join(flow.languages)})"
        )
    for name, value in (("--cohort", request.cohort), ("--initiative", request.initiative)):
        if value is not None and not 0 < len(value.strip()) <= MAX_NAME:
            raise EnrolmentError(f"{name} must be 1 to {MAX_NAME} characters")
    store = TurnStore(engine.dialect.name)
    initial = State(
        language=request.language or flow.languages[0], language_chosen=bool(request.language)
    )
    with engine.begin() as conn:
        before = store.find_conversation(conn, urn)
        conversation = before or store.lock_conversation(conn, urn, flow, initial, now)
        state = State.from_json(conversation.state)
        _give_to_team(conn, request, conversation.respondent_id)
        cohort_id = _join_cohort(conn, request, conversation.respondent_id, now)
        repeated = _repeated(conn, request, conversation.respondent_id, cohort_id, now)
        if repeated is not None:
            return repeated
        reason = _not_invited_because(state, conversation.unreachable)
        invitation_id, segments, send_after = None, 0, None
        if reason is None:
            turn = invite(flow, state, now)
            store.save_conversation(
                conn, conversation, turn.state.to_json(), flow, conversation.assessment_id, now
            )
            (message,) = turn.outbound
            queued = queue_outreach(
                conn,
                respondent_id=conversation.respondent_id,
                channel=channel,
                message=message,
                kind="invitation",
                quiet=quiet,
                now=now,
                by=request.enrolled_by,
            )
            invitation_id, segments, send_after = (
                queued.outbox_id,
                queued.segments,
                queued.send_after,
            )
        conn.execute(
            sa.insert(enrolments).values(
                respondent_id=conversation.respondent_id,
                cohort_id=cohort_id,
                enrolled_by=request.enrolled_by[:MAX_NAME],
                lawful_basis=request.lawful_basis[:64],
                enrolled_at=now,
                invitation_id=invitation_id,
            )
        )
    return Enrolled(
        respondent_id=conversation.respondent_id,
        new=before is None and state.stage == "new",
        invited=invitation_id is not None,
        not_invited_because=reason,
        invitation_segments=segments,
        send_after=send_after,
        cohort=request.cohort.strip() if request.cohort else None,
    )


def _give_to_team(conn: sa.Connection, request: EnrolmentRequest, respondent_id: int) -> None:
    """The resident to the request's team if they have none (or an admin moves them);
    EnrolmentError if another team has them."""
    if request.team_id is None:
        return
    team_id = conn.execute(
        sa.select(respondents.c.team_id).where(respondents.c.id == respondent_id)
    ).scalar_one()
    if team_id == request.team_id:
        return
    if team_id is not None and not request.move_team:
        raise EnrolmentError(ANOTHER_TEAM)
    conn.execute(
        sa.update(respondents)
        .where(respondents.c.id == respondent_id)
        .values(team_id=request.team_id)
    )


def _repeated(
    conn: sa.Connection,
    request: EnrolmentRequest,
    respondent_id: int,
    cohort_id: int | None,
    now: datetime,
) -> Enrolled | None:
    """What the same request did if it was made within `repeat_window`, else None."""
    if request.repeat_window is None:
        return None
    same_cohort = (
        enrolments.c.cohort_id.is_(None)
        if cohort_id is None
        else enrolments.c.cohort_id == cohort_id
    )
    earlier = conn.execute(
        sa.select(enrolments.c.invitation_id, outbox.c.segments, outbox.c.first_due_at)
        .join_from(enrolments, outbox, outbox.c.id == enrolments.c.invitation_id, isouter=True)
        .where(
            enrolments.c.respondent_id == respondent_id,
            enrolments.c.enrolled_by == request.enrolled_by[:MAX_NAME],
            same_cohort,
            enrolments.c.enrolled_at >= now - request.repeat_window,
            enrolments.c.enrolled_at <= now,
        )
        .order_by(enrolments.c.id.desc())
        .limit(1)
    ).first()
    if earlier is None:
        return None
    invited = earlier.invitation_id is not None
    reason = None
    if not invited:
        unreachable, state = conn.execute(
            sa.select(respondents.c.unreachable, conversations.c.state)
            .join_from(respondents, conversations)
            .where(respondents.c.id == respondent_id)
        ).one()
        reason = _not_invited_because(State.from_json(state), unreachable)
    first_due = earlier.first_due_at
    return Enrolled(
        respondent_id=respondent_id,
        new=False,
        invited=invited,
        not_invited_because=reason,
        invitation_segments=earlier.segments or 0,
        send_after=first_due if invited and first_due is not None and first_due > now else None,
        cohort=request.cohort.strip() if request.cohort else None,
        repeated=True,
    )


def _not_invited_because(state: State, unreachable: bool) -> str | None:
    if state.opted_out:
        return "they opted out (they can text START)"
    if unreachable:
        return "messages cannot reach them"
    if state.stage == "declined":
        return "they said no to the check (they can text START)"
    if state.stage != "new":  # someone enrolled at the same moment by another request too
        return "they are already talking to dibot"
    return None


def _join_cohort(
    conn: sa.Connection, request: EnrolmentRequest, respondent_id: int, now: datetime
) -> int | None:
    if request.cohort is None:
        return None
    name = request.cohort.strip()
    insert = dialect_insert(conn.dialect.name)
    conn.execute(
        insert(cohorts)
        .values(name=name, initiative=request.initiative, created_at=now, team_id=request.team_id)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    cohort_id, team_id = conn.execute(
        sa.select(cohorts.c.id, cohorts.c.team_id).where(cohorts.c.name == name)
    ).one()
    if request.team_id is not None and team_id != request.team_id:
        raise EnrolmentError(f"cohort {name!r} is not this team's: pick one of the team's cohorts")
    if request.initiative is not None:
        conn.execute(
            sa.update(cohorts)
            .where(cohorts.c.id == cohort_id, cohorts.c.initiative.is_(None))
            .values(initiative=request.initiative)
        )
    conn.execute(
        insert(cohort_members)
        .values(cohort_id=cohort_id, respondent_id=respondent_id, added_at=now)
        .on_conflict_do_nothing(index_elements=["cohort_id", "respondent_id"])
    )
    return int(cohort_id)
