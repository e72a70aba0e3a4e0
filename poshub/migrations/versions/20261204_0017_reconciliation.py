"""reconciliation

The reconciliation exceptions queue (poshub/settlement/models.py): one row per difference
between our journal and the network's clearing file, or between a terminal's batch totals
and the host's, for operations to resolve. Unique per (business date, kind, RRN), so
reconciling a day again adds nothing twice.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reconciliation_exceptions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("rrn", sa.String(length=24), nullable=False),
        sa.Column("mid", sa.String(length=15), nullable=True),
        sa.Column("tid", sa.String(length=8), nullable=True),
        sa.Column("our_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("network_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_note", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_exceptions")),
        sa.UniqueConstraint(
            "business_date",
            "kind",
            "rrn",
            name=op.f("uq_reconciliation_exceptions_business_date"),
        ),
    )
    op.create_index(
        "ix_reconciliation_exceptions_status",
        "reconciliation_exceptions",
        ["status", "business_date"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_reconciliation_exceptions_status", table_name="reconciliation_exceptions")
    op.drop_table("reconciliation_exceptions")
