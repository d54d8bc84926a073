"""Personal data at rest: URNs encrypted and found by a keyed hash, typed text encrypted.

Creates `privacy_keys` with a new lookup key (wrapped with `[privacy] encryption_key`), replaces
`respondents.urn` by `urn_cipher` (Fernet) and `urn_digest` (HMAC-SHA256 under the lookup
key), and encrypts every `answers.raw` still held. It needs the keys, which `storage.migrate`
hands over; when it rewrote clear values, `storage.migrate.upgrade` then compacts the database
(SQLite: VACUUM and a truncated WAL; PostgreSQL: VACUUM FULL of the two tables), so no page
keeps them.
The downgrade decrypts them back.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op

from storage.migrate import COMPACT_ATTRIBUTE, KEYS_ATTRIBUTE
from storage.privacy import Keys, Privacy, create_lookup_key, load_privacy

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000

respondents = sa.table(
    "respondents",
    sa.column("id", sa.Integer()),
    sa.column("urn", sa.String()),
    sa.column("urn_cipher", sa.Text()),
    sa.column("urn_digest", sa.LargeBinary()),
)
answers = sa.table("answers", sa.column("id", sa.Integer()), sa.column("raw", sa.Text()))


def _keys() -> Keys:
    provider = context.config.attributes.get(KEYS_ATTRIBUTE)
    if provider is None:
        raise RuntimeError("migration 0003 needs the encryption keys: run `dibot db upgrade`")
    keys: Keys = provider()
    return keys


def _require_foreign_keys_off(connection: sa.Connection) -> None:
    """Rebuilding `respondents` on SQLite drops it: with foreign keys on, that would delete
    every answer, conversation and message too. `storage.migrate.migrating` turns them off."""
    if (
        connection.dialect.name == "sqlite"
        and connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    ):
        raise RuntimeError(
            "migration 0003 on SQLite needs foreign keys off (run `dibot db upgrade`): "
            "rebuilding respondents would delete everyone's answers"
        )


def upgrade() -> None:
    connection = op.get_bind()
    _require_foreign_keys_off(connection)
    op.create_table(
        "privacy_keys",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("wrapped", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_privacy_keys")),
    )
    privacy = create_lookup_key(connection, _keys())
    with op.batch_alter_table("respondents") as batch:
        batch.add_column(sa.Column("urn_cipher", sa.Text(), nullable=True))
        batch.add_column(sa.Column("urn_digest", sa.LargeBinary(length=32), nullable=True))
    rewritten = _rewrite(connection, respondents.c.urn, lambda urn: _sealed_urn(privacy, urn))
    with op.batch_alter_table("respondents") as batch:
        batch.drop_constraint("uq_respondents_urn", type_="unique")
        batch.drop_column("urn")
        batch.alter_column("urn_cipher", existing_type=sa.Text(), nullable=False)
        batch.alter_column("urn_digest", existing_type=sa.LargeBinary(length=32), nullable=False)
        batch.create_unique_constraint(op.f("uq_respondents_urn_digest"), ["urn_digest"])
    rewritten += _rewrite_raw(connection, privacy.keys.encrypt)
    if rewritten:  # clear values were there: no page may keep them
        context.config.attributes[COMPACT_ATTRIBUTE] = ["respondents", "answers"]


def downgrade() -> None:
    connection = op.get_bind()
    _require_foreign_keys_off(connection)
    privacy = load_privacy(connection, _keys())
    with op.batch_alter_table("respondents") as batch:
        batch.add_column(sa.Column("urn", sa.String(length=100), nullable=True))
    _rewrite(connection, respondents.c.urn_cipher, lambda cipher: {"urn": privacy.decrypt(cipher)})
    with op.batch_alter_table("respondents") as batch:
        batch.drop_constraint("uq_respondents_urn_digest", type_="unique")
        batch.drop_column("urn_digest")
        batch.drop_column("urn_cipher")
        batch.alter_column("urn", existing_type=sa.String(length=100), nullable=False)
        batch.create_unique_constraint(op.f("uq_respondents_urn"), ["urn"])
    _rewrite_raw(connection, privacy.decrypt)
    op.drop_table("privacy_keys")


def _sealed_urn(privacy: Privacy, urn: str) -> dict[str, object]:
    return {"urn_cipher": privacy.encrypt(urn), "urn_digest": privacy.digest(urn)}


def _rewrite(
    connection: sa.Connection,
    source: sa.ColumnElement[str],
    values: Callable[[str], dict[str, object]],
) -> int:
    """Every respondent's `source` value through `values`, a batch of rows at a time; how
    many rows."""
    last = total = 0
    while True:
        rows = connection.execute(
            sa.select(respondents.c.id, source)
            .where(respondents.c.id > last)
            .order_by(respondents.c.id)
            .limit(BATCH)
        ).all()
        if rows:
            changes = [(row_id, values(value)) for row_id, value in rows]
            names = list(changes[0][1])
            connection.execute(
                sa.update(respondents)
                .where(respondents.c.id == sa.bindparam("row_id"))
                .values({name: sa.bindparam(f"new_{name}") for name in names}),
                [
                    {"row_id": row_id, **{f"new_{name}": new[name] for name in names}}
                    for row_id, new in changes
                ],
            )
        total += len(rows)
        if len(rows) < BATCH:
            return total
        last = rows[-1][0]


def _rewrite_raw(connection: sa.Connection, convert: Callable[[str], str]) -> int:
    """Every `answers.raw` still held through `convert`, a batch at a time; how many."""
    last = total = 0
    while True:
        rows = connection.execute(
            sa.select(answers.c.id, answers.c.raw)
            .where(answers.c.id > last, answers.c.raw.is_not(None))
            .order_by(answers.c.id)
            .limit(BATCH)
        ).all()
        if rows:
            connection.execute(
                sa.update(answers)
                .where(answers.c.id == sa.bindparam("row_id"))
                .values(raw=sa.bindparam("new_raw")),
                [{"row_id": row_id, "new_raw": convert(raw)} for row_id, raw in rows],
            )
        total += len(rows)
        if len(rows) < BATCH:
            return total
        last = rows[-1][0]
