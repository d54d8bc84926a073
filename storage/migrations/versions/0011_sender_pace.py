"""One sending rate a number, shared by every worker: `sender_pace` holds, for each sender (the
from number or Messaging Service), when its next text may go.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sender_pace",
        sa.Column("sender", sa.String(length=64), primary_key=True),
        sa.Column("free_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recent", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sender_pace")
