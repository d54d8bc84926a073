"""Smaller turns once retention has passed: an answer's provider message id is removed with its
typed text (so the column may be empty), and the timeline is indexed by respondent alone (a
respondent's few hundred entries are sorted by time when read; the time in the index took a
fifth of what a turn kept).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.alter_column(
            "provider_message_id", existing_type=sa.String(length=128), nullable=True
        )
    op.drop_index("ix_timeline_respondent_at", table_name="timeline")
    op.create_index(op.f("ix_timeline_respondent_id"), "timeline", ["respondent_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_timeline_respondent_id"), table_name="timeline")
    op.create_index("ix_timeline_respondent_at", "timeline", ["respondent_id", "at"])
    op.execute("UPDATE answers SET provider_message_id = '' WHERE provider_message_id IS NULL")
    with op.batch_alter_table("answers") as batch:
        batch.alter_column(
            "provider_message_id", existing_type=sa.String(length=128), nullable=False
        )
