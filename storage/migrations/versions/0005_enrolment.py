"""Enrolment by outreach workers: cohorts (an enrolment drive, a device loan scheme…) with an
initiative and dates, the respondents in each, and who enrolled whom on what lawful basis.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cohorts",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("initiative", sa.String(length=100), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohorts")),
        sa.UniqueConstraint("name", name=op.f("uq_cohorts_name")),
    )
    op.create_table(
        "cohort_members",
        sa.Column("cohort_id", ID, nullable=False),
        sa.Column("respondent_id", ID, nullable=False),
        sa.Column("added_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort_id"],
            ["cohorts.id"],
            name=op.f("fk_cohort_members_cohort_id_cohorts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["respondent_id"],
            ["respondents.id"],
            name=op.f("fk_cohort_members_respondent_id_respondents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cohort_id", "respondent_id", name=op.f("pk_cohort_members")),
    )
    op.create_index(op.f("ix_cohort_members_respondent_id"), "cohort_members", ["respondent_id"])
    op.create_table(
        "enrolments",
        sa.Column("id", ID, nullable=False),
        sa.Column("respondent_id", ID, nullable=False),
        sa.Column("cohort_id", ID, nullable=True),
        sa.Column("enrolled_by", sa.String(length=100), nullable=False),
        sa.Column("lawful_basis", sa.String(length=64), nullable=False),
        sa.Column("enrolled_at", TIME, nullable=False),
        sa.Column("invitation_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["respondent_id"],
            ["respondents.id"],
            name=op.f("fk_enrolments_respondent_id_respondents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["cohort_id"],
            ["cohorts.id"],
            name=op.f("fk_enrolments_cohort_id_cohorts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolments")),
    )
    op.create_index(op.f("ix_enrolments_respondent_id"), "enrolments", ["respondent_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_enrolments_respondent_id"), table_name="enrolments")
    op.drop_table("enrolments")
    op.drop_index(op.f("ix_cohort_members_respondent_id"), table_name="cohort_members")
    op.drop_table("cohort_members")
    op.drop_table("cohorts")
