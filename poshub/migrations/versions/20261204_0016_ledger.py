"""ledger

The double-entry ledger (poshub/settlement/models.py): accounts, journal entries (one per
source event, the idempotency key) and their signed integer-fen lines. Entries and lines
are append-only: triggers refuse UPDATE and DELETE on both, so a correction is a new
adjusting entry.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 18:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("ledger_entries", "ledger_lines")
_MESSAGE = "the ledger is append-only: post an adjusting entry instead"
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _triggers() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        op.execute(
            "CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{_MESSAGE}'; END $$"
        )
    for table in APPEND_ONLY:
        for event in ("UPDATE", "DELETE"):
            name = f"{table}_no_{event.lower()}"
            if sqlite:
                op.execute(
                    f"CREATE TRIGGER {name} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
                )
            else:
                op.execute(
                    f"CREATE TRIGGER {name} BEFORE {event} ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
                )


def _drop_triggers() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in APPEND_ONLY:
        for event in ("update", "delete"):
            op.execute(
                f"DROP TRIGGER IF EXISTS {table}_no_{event}" + ("" if sqlite else f" ON {table}")
            )
    if not sqlite:
        op.execute("DROP FUNCTION IF EXISTS ledger_append_only()")


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("normal_side", sa.String(length=6), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
    )
    op.create_index(op.f("ix_ledger_accounts_kind"), "ledger_accounts", ["kind"], unique=False)
    op.create_table(
        "ledger_entries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("source_event", sa.String(length=64), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("source_event", name=op.f("uq_ledger_entries_source_event")),
    )
    op.create_index(
        "ix_ledger_entries_business_date", "ledger_entries", ["business_date"], unique=False
    )
    op.create_table(
        "ledger_lines",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("entry_id", BIG_ID, nullable=False),
        sa.Column("account_id", BIG_ID, nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_lines_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_ledger_lines_entry_id_ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_lines")),
    )
    op.create_index(op.f("ix_ledger_lines_entry_id"), "ledger_lines", ["entry_id"], unique=False)
    op.create_index(
        op.f("ix_ledger_lines_account_id"), "ledger_lines", ["account_id"], unique=False
    )
    _triggers()


def downgrade() -> None:
    _drop_triggers()
    op.drop_index(op.f("ix_ledger_lines_account_id"), table_name="ledger_lines")
    op.drop_index(op.f("ix_ledger_lines_entry_id"), table_name="ledger_lines")
    op.drop_table("ledger_lines")
    op.drop_index("ix_ledger_entries_business_date", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index(op.f("ix_ledger_accounts_kind"), table_name="ledger_accounts")
    op.drop_table("ledger_accounts")
