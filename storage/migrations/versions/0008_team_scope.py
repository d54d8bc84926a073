"""The dashboard's team scope and assisted assessments: each respondent and cohort may belong
to a team (a worker sees only their own team's), and an assessment records the member of staff
who filled it in with the resident.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    for table in ("respondents", "cohorts"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("team_id", ID, nullable=True))
            batch.create_foreign_key(
                op.f(f"fk_{table}_team_id_teams"), "teams", ["team_id"], ["id"], ondelete="SET NULL"
            )
            batch.create_index(f"ix_{table}_team", ["team_id", "id"])
    with op.batch_alter_table("assessments") as assessments:
        assessments.add_column(sa.Column("assisted_by", sa.String(length=254), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assessments") as assessments:
        assessments.drop_column("assisted_by")
    for table in ("cohorts", "respondents"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_team")
            batch.drop_constraint(op.f(f"fk_{table}_team_id_teams"), type_="foreignkey")
            batch.drop_column("team_id")
