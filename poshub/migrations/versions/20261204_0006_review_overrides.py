"""review overrides

Approving over failed or pending checks needs a risk officer's second approval: one
``application_overrides`` row per request. Decisions keep the internal note apart from
the message to the applicant (``applications.decision_message``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 13:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decision_message", sa.Text(), nullable=True))

    op.create_table(
        "application_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("check_run", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_application_overrides_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["staff_users.id"],
            name=op.f("fk_application_overrides_requested_by_id_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["staff_users.id"],
            name=op.f("fk_application_overrides_decided_by_id_staff_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_overrides")),
    )
    with op.batch_alter_table("application_overrides", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_application_overrides_application_id"), ["application_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_application_overrides_status"), ["status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("application_overrides", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_application_overrides_status"))
        batch_op.drop_index(batch_op.f("ix_application_overrides_application_id"))
    op.drop_table("application_overrides")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_column("decision_message")
