"""Staff accounts in the database: adding them, logging in with throttling, password changes,
and the audit log.

The rule it keeps: after `LOCK_AFTER_FAILURES` failed logins for one email within
`FAILURE_WINDOW` (or `ADDRESS_LOCK_AFTER_FAILURES` from one remote address), every attempt under
it is refused for `LOCKOUT`, with the same answer as a wrong password. Passwords are verified
outside any transaction (Argon2 takes tens of milliseconds; SQLite's write lock must not wait on
it). Times come from the caller (`now`), never from a clock here.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dashboard.passwords import (
    PasswordRuleError,
    check_new_password,
    hash_password,
    needs_rehash,
    verify_against_nothing,
    verify_password,
)
from storage.database import read_only
from storage.models import STAFF_ROLES, AuditEntry, LoginThrottle, Staff, StaffSession, Team

LOCK_AFTER_FAILURES = 5
ADDRESS_LOCK_AFTER_FAILURES = 20
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
MAX_EMAIL_LENGTH = 254
MAX_TEAM_LENGTH = 100
EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")

staff_table = cast(sa.Table, Staff.__table__)
teams_table = cast(sa.Table, Team.__table__)
throttle_table = cast(sa.Table, LoginThrottle.__table__)
audit_table = cast(sa.Table, AuditEntry.__table__)
sessions_table = cast(sa.Table, StaffSession.__table__)


class AccountError(ValueError):
    """An account that cannot be added or changed as asked; the message says why in one line."""


@dataclass(frozen=True)
class StaffMember:
    id: int
    email: str
    role: str
    team_id: int
    team: str
    password_changed_at: datetime


def normal_email(text: str) -> str:
    """The email lower-cased, if it has an email's shape."""
    email = text.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL_SHAPE.match(email):
        raise AccountError(f"{text.strip()!r} is not an email address")
    return email


_member = sa.select(
    staff_table.c.id,
    staff_table.c.email,
    staff_table.c.role,
    staff_table.c.team_id,
    teams_table.c.name.label("team"),
    staff_table.c.password_changed_at,
    staff_table.c.password_hash,
    staff_table.c.disabled,
).select_from(staff_table.join(teams_table))


def _as_member(row: Any) -> StaffMember:
    mapping = row._mapping
    return StaffMember(
        id=mapping["id"],
        email=mapping["email"],
        role=mapping["role"],
        team_id=mapping["team_id"],
        team=mapping["team"],
        password_changed_at=mapping["password_changed_at"],
    )


def add_staff(
    engine: sa.Engine, *, email: str, team: str, role: str, password: str, now: datetime
) -> StaffMember:
    """A new account (its team made if new); AccountError for a bad email, team, role or
    password, or an email that already has an account."""
    address = normal_email(email)
    team_name = team.strip()
    if not 1 <= len(team_name) <= MAX_TEAM_LENGTH:
        raise AccountError(f"a team name has 1 to {MAX_TEAM_LENGTH} characters")
    if role not in STAFF_ROLES:
        raise AccountError(f"role must be {' or '.join(STAFF_ROLES)}, not {role!r}")
    try:
        check_new_password(password)
    except PasswordRuleError as error:
        raise AccountError(str(error)) from None
    password_hash = hash_password(password)
    try:
        with engine.begin() as conn:
            team_id = conn.execute(
                sa.select(teams_table.c.id).where(teams_table.c.name == team_name)
            ).scalar_one_or_none()
            if team_id is None:
                team_id = conn.execute(
                    sa.insert(teams_table)
                    .values(name=team_name, created_at=now)
                    .returning(teams_table.c.id)
                ).scalar_one()
            staff_id = conn.execute(
                sa.insert(staff_table)
                .values(
                    email=address,
                    team_id=team_id,
                    role=role,
                    password_hash=password_hash,
                    created_at=now,
                    password_changed_at=now,
                    disabled=False,
                )
                .returning(staff_table.c.id)
            ).scalar_one()
            record(conn, "staff_added", now=now, staff_id=staff_id, detail=f"{role}, {team_name}")
    except IntegrityError:
        raise AccountError(f"{address} already has an account") from None
    return StaffMember(staff_id, address, role, team_id, team_name, now)


def record(
    conn: sa.Connection,
    action: str,
    *,
    now: datetime,
    staff_id: int | None = None,
    respondent_id: int | None = None,
    detail: str = "",
) -> None:
    """One line in the audit log."""
    conn.execute(
        sa.insert(audit_table).values(
            at=now, staff_id=staff_id, action=action, respondent_id=respondent_id, detail=detail
        )
    )


def signed_in_member(engine: sa.Engine, staff_id: int) -> StaffMember | None:
    """The enabled account with this id, else None."""
    with engine.connect() as conn:
        row = read_only(conn).execute(_member.where(staff_table.c.id == staff_id)).first()
    if row is None or row.disabled:
        return None
    return _as_member(row)


def _throttle_keys(email: str, remote_address: str) -> dict[str, int]:
    """Each key the attempt counts under, with the failures that lock it."""
    return {
        f"email:{email}"[:300]: LOCK_AFTER_FAILURES,
        f"address:{remote_address}"[:300]: ADDRESS_LOCK_AFTER_FAILURES,
    }


def log_in(
    engine: sa.Engine, email: str, password: str, *, remote_address: str, now: datetime
) -> StaffMember | None:
    """The member whose email and password these are, unless throttled; None otherwise (the
    caller says the same thing whatever the reason). Recorded in the audit log either way."""
    address = email.strip().lower()[:MAX_EMAIL_LENGTH]
    keys = _throttle_keys(address, remote_address)
    with engine.connect() as conn:
        conn = read_only(conn)
        locked = conn.execute(
            sa.select(sa.func.count())
            .select_from(throttle_table)
            .where(throttle_table.c.key.in_(list(keys)), throttle_table.c.locked_until > now)
        ).scalar_one()
        row = conn.execute(_member.where(staff_table.c.email == address)).first()
    if row is None or row.disabled:
        verify_against_nothing(password)
        verified = False
    else:
        verified = verify_password(row.password_hash, password)
    staff_id = None if row is None else row.id
    where = f"from {remote_address}"
    with engine.begin() as conn:
        if locked:
            record(conn, "login_refused", now=now, staff_id=staff_id, detail=f"throttled {where}")
            return None
        if not verified:
            _count_failure(conn, keys, now)
            reason = (
                "no such account"
                if row is None
                else ("account disabled" if row.disabled else "wrong password")
            )
            record(conn, "login_failed", now=now, staff_id=staff_id, detail=f"{reason} {where}")
            return None
        assert row is not None
        if needs_rehash(row.password_hash):
            conn.execute(
                sa.update(staff_table)
                .where(staff_table.c.id == row.id)
                .values(password_hash=hash_password(password))
            )
        conn.execute(sa.delete(throttle_table).where(throttle_table.c.key == f"email:{address}"))
        record(conn, "login", now=now, staff_id=row.id, detail=where)
    return _as_member(row)


def _count_failure(conn: sa.Connection, keys: dict[str, int], now: datetime) -> None:
    """One more failure under each key: a new window when the last one is over, a lockout when
    a window reaches its key's limit. Rows of windows long over are removed as it goes."""
    conn.execute(
        sa.delete(throttle_table).where(
            throttle_table.c.window_started_at < now - FAILURE_WINDOW - LOCKOUT,
            sa.or_(throttle_table.c.locked_until.is_(None), throttle_table.c.locked_until < now),
        )
    )
    for key, limit in keys.items():
        row = conn.execute(
            sa.select(throttle_table.c.failures, throttle_table.c.window_started_at).where(
                throttle_table.c.key == key
            )
        ).first()
        if row is None:
            conn.execute(
                sa.insert(throttle_table).values(
                    key=key, failures=1, window_started_at=now, locked_until=None
                )
            )
            continue
        in_window = row.window_started_at > now - FAILURE_WINDOW
        failures = row.failures + 1 if in_window else 1
        conn.execute(
            sa.update(throttle_table)
            .where(throttle_table.c.key == key)
            .values(
                failures=failures,
                window_started_at=row.window_started_at if in_window else now,
                locked_until=now + LOCKOUT if failures >= limit else None,
            )
        )


def change_password(
    engine: sa.Engine, member: StaffMember, current: str, new: str, *, now: datetime
) -> datetime:
    """Set a new password when `current` is right and `new` keeps the rules: the time of the
    change (sessions signed in before it end). AccountError says what is wrong."""
    with engine.connect() as conn:
        password_hash = (
            read_only(conn)
            .execute(sa.select(staff_table.c.password_hash).where(staff_table.c.id == member.id))
            .scalar_one()
        )
    if not verify_password(password_hash, current):
        with engine.begin() as conn:
            record(conn, "password_change_failed", now=now, staff_id=member.id)
        raise AccountError("Your current password is not right")
    try:
        check_new_password(new)
    except PasswordRuleError as error:
        message = str(error)
        raise AccountError(message[0].upper() + message[1:]) from None
    new_hash = hash_password(new)
    with engine.begin() as conn:
        conn.execute(
            sa.update(staff_table)
            .where(staff_table.c.id == member.id)
            .values(password_hash=new_hash, password_changed_at=now)
        )
        record(conn, "password_changed", now=now, staff_id=member.id)
    return now


# --- sessions, kept on the server ------------------------------------------------------------


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(engine: sa.Engine, staff_id: int, now: datetime) -> str:
    """A new session for the member: the random token its cookie holds."""
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(sessions_table).values(
                id=_session_id(token), staff_id=staff_id, created_at=now, ended_at=None
            )
        )
    return token


def session_is_live(engine: sa.Engine, token: str, staff_id: int) -> bool:
    """The session was opened for this member and has not been ended."""
    with engine.connect() as conn:
        found = (
            read_only(conn)
            .execute(
                sa.select(sessions_table.c.ended_at).where(
                    sessions_table.c.id == _session_id(token),
                    sessions_table.c.staff_id == staff_id,
                )
            )
            .first()
        )
    return found is not None and found.ended_at is None


def end_sessions(
    engine: sa.Engine,
    staff_id: int,
    now: datetime,
    *,
    only: str | None = None,
    but: str | None = None,
) -> None:
    """End the member's session `only`, or every one of theirs `but` the one given."""
    ended = sa.update(sessions_table).where(
        sessions_table.c.staff_id == staff_id, sessions_table.c.ended_at.is_(None)
    )
    if only is not None:
        ended = ended.where(sessions_table.c.id == _session_id(only))
    if but is not None:
        ended = ended.where(sessions_table.c.id != _session_id(but))
    with engine.begin() as conn:
        conn.execute(ended.values(ended_at=now))
