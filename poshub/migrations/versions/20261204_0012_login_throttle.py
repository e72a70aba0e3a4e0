"""login throttle

Failed logins are counted per (source address, account) and per source address in
``staff_login_throttle``, no longer per account: the account-wide lock-out
(``staff_users.failed_logins`` and ``locked_until``) let anybody lock a staff member out
by guessing, and is gone.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-04 13:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_login_throttle",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_staff_login_throttle")),
    )
    # Plain ALTER TABLE (SQLite 3.35+ and PostgreSQL): a batch copy of staff_users would
    # drop the table its sessions and roles reference.
    op.execute("ALTER TABLE staff_users DROP COLUMN failed_logins")
    op.execute("ALTER TABLE staff_users DROP COLUMN locked_until")


def downgrade() -> None:
    op.execute("ALTER TABLE staff_users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0")
    op.add_column("staff_users", sa.Column("locked_until", sa.DateTime(timezone=True)))
    op.drop_table("staff_login_throttle")
