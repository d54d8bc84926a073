"""Outbox claims are leases: rows carry `lease_until` and `lease_token`, and two new states,
"claimed" (held, nothing sent yet) and "unknown" (may have gone, never resent).

A row left "sending" by an older dibot has no lease and may have reached the provider: it
becomes "unknown", where staff see it. The downgrade turns "claimed" rows back to "pending"
and "unknown" ones to "failed" (the error says why).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
STATUSES = "status IN ('pending', 'claimed', 'sending', 'sent', 'failed', 'unknown')"
OLD_STATUSES = "status IN ('pending', 'sending', 'sent', 'failed')"
outbox = sa.table("outbox", sa.column("status", sa.String()), sa.column("error", sa.Text()))


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("lease_until", TIME, nullable=True))
        batch.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))
        batch.drop_constraint(op.f("ck_outbox_status"), type_="check")
        batch.create_check_constraint(op.f("ck_outbox_status"), sa.text(STATUSES))
    op.execute(
        outbox.update()
        .where(outbox.c.status == "sending")
        .values(status="unknown", error="left sending by an earlier dibot: not resent")
    )


def downgrade() -> None:
    op.execute(outbox.update().where(outbox.c.status == "claimed").values(status="pending"))
    op.execute(
        outbox.update()
        .where(outbox.c.status == "unknown")
        .values(status="failed", error="not confirmed, not resent")
    )
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(op.f("ck_outbox_status"), type_="check")
        batch.create_check_constraint(op.f("ck_outbox_status"), sa.text(OLD_STATUSES))
        batch.drop_column("lease_token")
        batch.drop_column("lease_until")
