"""working days

The working-day calendar operations can edit (poshub/core/workdays.py): one row per
date, published (chinese-calendar or a loaded State Council schedule), provisional
(statutory rules, no schedule yet) or manual. The table starts empty here;
``poshub db upgrade`` seeds chinese-calendar's years after migrating, so that the
migration stays fast and test databases do not carry ~8,000 rows.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "working_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("is_working", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_working_days")),
    )


def downgrade() -> None:
    op.drop_table("working_days")
