"""The outbound side: why each outbox row is sent, by whom, and what the provider said of its
delivery; assessments that are check-ins and the baseline they follow; scheduled check-ins;
reminders counted per conversation; follow-up threads; and each respondent's timeline.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("outbox") as outbox:
        outbox.add_column(
            sa.Column("kind", sa.String(length=16), server_default="reply", nullable=False)
        )
        outbox.add_column(sa.Column("first_due_at", TIME, nullable=True))
        outbox.add_column(sa.Column("sent_by", sa.String(length=100), nullable=True))
        outbox.add_column(sa.Column("segments", sa.Integer(), nullable=True))
        outbox.add_column(sa.Column("delivery_status", sa.String(length=16), nullable=True))
        outbox.add_column(sa.Column("delivery_error_code", sa.Integer(), nullable=True))
        outbox.add_column(sa.Column("delivery_updated_at", TIME, nullable=True))
        outbox.create_index("ix_outbox_provider_message_id", ["provider_message_id"])
        # The claim's "first in line" anti-join looks up a respondent's earlier rows: with
        # this index PostgreSQL takes 24 ms a claim over 10,000 due rows before any ANALYZE
        # (10 s with the old index on respondent_id alone), which this one replaces.
        outbox.drop_index("ix_outbox_respondent_id")
        outbox.create_index("ix_outbox_in_line", ["respondent_id", "channel", "id"])
    with op.batch_alter_table("assessments") as assessments:
        assessments.add_column(
            sa.Column("kind", sa.String(length=16), server_default="baseline", nullable=False)
        )
        assessments.add_column(sa.Column("baseline_id", ID, nullable=True))
        assessments.create_foreign_key(
            op.f("fk_assessments_baseline_id_assessments"),
            "assessments",
            ["baseline_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("conversations") as conversations:
        conversations.add_column(sa.Column("last_inbound_at", TIME, nullable=True))
        conversations.add_column(
            sa.Column("reminders_sent", sa.Integer(), server_default="0", nullable=False)
        )
        conversations.create_index(
            "ix_conversations_reminders", ["reminders_sent", "last_inbound_at"]
        )
    # Conversations from before: their last change is the best guess of their last text.
    op.execute("UPDATE conversations SET last_inbound_at = updated_at")
    op.create_table(
        "checkins",
        sa.Column("id", ID, nullable=False),
        sa.Column("respondent_id", ID, nullable=False),
        sa.Column("cohort_id", ID, nullable=True),
        sa.Column("due_at", TIME, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("skip_reason", sa.String(length=200), nullable=True),
        sa.Column("baseline_id", ID, nullable=True),
        sa.Column("outbox_id", ID, nullable=True),
        sa.Column("scheduled_by", sa.String(length=100), nullable=False),
        sa.Column("scheduled_at", TIME, nullable=False),
        sa.Column("invited_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["respondent_id"],
            ["respondents.id"],
            name=op.f("fk_checkins_respondent_id_respondents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["cohort_id"],
            ["cohorts.id"],
            name=op.f("fk_checkins_cohort_id_cohorts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["baseline_id"],
            ["assessments.id"],
            name=op.f("fk_checkins_baseline_id_assessments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkins")),
    )
    op.create_index(op.f("ix_checkins_respondent_id"), "checkins", ["respondent_id"])
    op.create_index("ix_checkins_due", "checkins", ["status", "due_at"])
    op.create_table(
        "threads",
        sa.Column("id", ID, nullable=False),
        sa.Column("respondent_id", ID, nullable=False),
        sa.Column("opened_by", sa.String(length=100), nullable=False),
        sa.Column("opened_at", TIME, nullable=False),
        sa.Column("closes_at", TIME, nullable=False),
        sa.Column("closed_at", TIME, nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["respondent_id"],
            ["respondents.id"],
            name=op.f("fk_threads_respondent_id_respondents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_threads")),
    )
    op.create_index(op.f("ix_threads_respondent_id"), "threads", ["respondent_id"])
    op.create_table(
        "timeline",
        sa.Column("id", ID, nullable=False),
        sa.Column("respondent_id", ID, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text_cipher", sa.Text(), nullable=True),
        sa.Column("thread_id", ID, nullable=True),
        sa.Column("outbox_id", ID, nullable=True),
        sa.Column("by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["respondent_id"],
            ["respondents.id"],
            name=op.f("fk_timeline_respondent_id_respondents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["threads.id"],
            name=op.f("fk_timeline_thread_id_threads"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeline")),
    )
    op.create_index("ix_timeline_respondent_at", "timeline", ["respondent_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_timeline_respondent_at", table_name="timeline")
    op.drop_table("timeline")
    op.drop_index(op.f("ix_threads_respondent_id"), table_name="threads")
    op.drop_table("threads")
    op.drop_index("ix_checkins_due", table_name="checkins")
    op.drop_index(op.f("ix_checkins_respondent_id"), table_name="checkins")
    op.drop_table("checkins")
    with op.batch_alter_table("conversations") as conversations:
        conversations.drop_index("ix_conversations_reminders")
        conversations.drop_column("reminders_sent")
        conversations.drop_column("last_inbound_at")
    with op.batch_alter_table("assessments") as assessments:
        assessments.drop_constraint(
            op.f("fk_assessments_baseline_id_assessments"), type_="foreignkey"
        )
        assessments.drop_column("baseline_id")
        assessments.drop_column("kind")
    with op.batch_alter_table("outbox") as outbox:
        outbox.drop_index("ix_outbox_provider_message_id")
        outbox.drop_index("ix_outbox_in_line")
        outbox.create_index("ix_outbox_respondent_id", ["respondent_id"])
        for column in (
            "delivery_updated_at",
            "delivery_error_code",
            "delivery_status",
            "segments",
            "sent_by",
            "first_due_at",
            "kind",
        ):
            outbox.drop_column(column)
