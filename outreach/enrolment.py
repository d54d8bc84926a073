"""Enrolment: an outreach worker adds a resident, who is invited to the check by text.

The rule it keeps: one transaction enrols a resident (creating them if they never texted),
records who enrolled them and on what lawful basis, adds them to a cohort if one is named
(creating it), and queues the invitation the engine would send to their first message, held
to the council's quiet hours. No one is invited twice, or while they are opted out: someone
already talking to dibot is enrolled but not interrupted. Time is the `now` argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from bot.engine import invite
from bot.state import State
from channels.identifiers import is_telegram_id
from flows.model import Flow
from outreach.outbound import queue_outreach
from outreach.phone import urn_for_phone
from outreach.quiet_hours import QuietHours
from storage.models import Cohort, CohortMember, Enrolment, table
from storage.repository import TurnStore, dialect_insert

cohorts = table(Cohort)
cohort_members = table(CohortMember)
enrolments = table(Enrolment)

SMS_CHANNEL = "sms"
TELEGRAM_CHANNEL = "telegram"
MAX_NAME = 100


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
        reason = _not_invited_because(before is None, state, conversation.unreachable)
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
        cohort_id = _join_cohort(conn, request, conversation.respondent_id, now)
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
        new=before is None,
        invited=invitation_id is not None,
        not_invited_because=reason,
        invitation_segments=segments,
        send_after=send_after,
        cohort=request.cohort.strip() if request.cohort else None,
    )


def _not_invited_because(new: bool, state: State, unreachable: bool) -> str | None:
    if state.opted_out:
        return "they opted out (they can text START)"
    if unreachable:
        return "messages cannot reach them"
    if state.stage == "declined":
        return "they said no to the check (they can text START)"
    if not new and state.stage != "new":
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
        .values(name=name, initiative=request.initiative, created_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    cohort_id: int = conn.execute(
        sa.select(cohorts.c.id).where(cohorts.c.name == name)
    ).scalar_one()
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
    return cohort_id
