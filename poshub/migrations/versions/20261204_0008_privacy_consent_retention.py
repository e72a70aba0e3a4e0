"""privacy consent retention

Consents per application (PIPL: the privacy notice, and the separate consent to send
identity and bank data to the verification provider); merchant closure with a
termination date, the retention schedule and the purge marks.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-04 13:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "application_consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("notice_version", sa.String(length=16), nullable=False),
        sa.Column("source_address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_application_consents_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_consents")),
    )
    with op.batch_alter_table("application_consents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_application_consents_application_id"), ["application_id"], unique=False
        )
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("terminated_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("closed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("closure_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_merchants_terminated_on"), ["terminated_on"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merchants_terminated_on"))
        batch_op.drop_column("purged_at")
        batch_op.drop_column("closure_reason")
        batch_op.drop_column("closed_by")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("terminated_on")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_column("purged_at")
    with op.batch_alter_table("application_consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_application_consents_application_id"))
    op.drop_table("application_consents")
