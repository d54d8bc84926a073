"""What every dashboard page shares: who is signed in, which respondents and cohorts they may
reach, and the audit log.

The rule it keeps: a page reaches a respondent or a cohort only through `respondent_scope`,
`cohort_scope`, `respondent_or_404` or `cohort_or_404`, which limit an outreach worker to their
own team's (an admin sees every team's) and answer 404 for anything else, exactly as for an id
that does not exist; and every page that shows or exports a respondent's personal data writes
one line to the audit log before it answers: in the transaction that changes something
(`Site.audit`), or, for a page that only reads, just after its read-only transaction
(`Site.audit_view`), so a page never holds SQLite's write lock while it reads and decrypts. If
the line cannot be written, the page is not shown.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import abort, g, redirect, request, url_for
from flask.typing import ResponseReturnValue

from dashboard.accounts import StaffMember, record
from dibot.runtime import Runtime
from storage.models import Cohort, Respondent, table

ADMIN = "admin"
MAX_ID = 2**63 - 1
"""The largest id a table holds (BIGINT): a larger one in a URL is missing, not an error."""

respondents = table(Respondent)
cohorts = table(Cohort)

Now = Callable[[], datetime]
StaffView = Callable[..., ResponseReturnValue]


def respondent_scope(member: StaffMember) -> sa.ColumnElement[bool]:
    """The respondents `member` may see: their team's, or everyone's for an admin."""
    if member.role == ADMIN:
        return sa.true()
    return respondents.c.team_id == member.team_id


def cohort_scope(member: StaffMember) -> sa.ColumnElement[bool]:
    """The cohorts `member` may see and add residents to: their team's, or all for an admin."""
    if member.role == ADMIN:
        return sa.true()
    return cohorts.c.team_id == member.team_id


def respondent_or_404(conn: sa.Connection, member: StaffMember, respondent_id: int) -> Any:
    """The respondent's row, if `member` may see it; else the request ends with 404."""
    if not 0 < respondent_id <= MAX_ID:
        abort(404)
    row = conn.execute(
        sa.select(respondents).where(respondents.c.id == respondent_id, respondent_scope(member))
    ).first()
    if row is None:
        abort(404)
    return row


def cohort_or_404(conn: sa.Connection, member: StaffMember, cohort_id: int) -> Any:
    """The cohort's row, if `member` may see it; else the request ends with 404."""
    if not 0 < cohort_id <= MAX_ID:
        abort(404)
    row = conn.execute(
        sa.select(cohorts).where(cohorts.c.id == cohort_id, cohort_scope(member))
    ).first()
    if row is None:
        abort(404)
    return row


@dataclass(frozen=True)
class Site:
    """The runtime, the clock and the signed-in member, for every page module's `register`."""

    runtime: Runtime
    now: Now
    signed_in: Callable[[], StaffMember | None]

    @property
    def engine(self) -> sa.Engine:
        return self.runtime.engine

    def staff_page(self, view: StaffView) -> StaffView:
        """`view(member, **url_values)` for a signed-in member; anyone else goes to the login
        page, which brings them back here after."""

        @functools.wraps(view)
        def page(**values: Any) -> ResponseReturnValue:
            member = self.signed_in()
            if member is None:
                back = request.full_path.rstrip("?") if request.path != "/" else None
                return redirect(url_for("dashboard.login", next=back))
            g.member = member
            return view(member, **values)

        return page

    def admin_page(self, view: StaffView) -> StaffView:
        """As `staff_page`, for admins only (anyone else signed in gets 404)."""

        @functools.wraps(view)
        def admin_only(member: StaffMember, **values: Any) -> ResponseReturnValue:
            if member.role != ADMIN:
                abort(404)
            return view(member, **values)

        return self.staff_page(admin_only)

    def audit(
        self,
        conn: sa.Connection,
        member: StaffMember,
        action: str,
        *,
        respondent_id: int | None = None,
        detail: str = "",
    ) -> None:
        """One line in the audit log: `member` did `action` (for example "view respondent",
        "export", "send follow-up"), to `respondent_id` if it concerns one."""
        record(
            conn,
            action,
            now=self.now(),
            staff_id=member.id,
            respondent_id=respondent_id,
            detail=detail,
        )

    def audit_view(
        self,
        member: StaffMember,
        action: str,
        *,
        respondent_id: int | None = None,
        detail: str = "",
    ) -> None:
        """`audit` in a short transaction of its own, after a page's read-only one."""
        with self.engine.begin() as conn:
            self.audit(conn, member, action, respondent_id=respondent_id, detail=detail)
