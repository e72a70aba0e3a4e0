"""onboarding compliance: settlement account type, ID card expiry, agent, beneficial owners

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 13:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "account_type", sa.String(length=10), nullable=False, server_default="personal"
            )
        )
        batch_op.add_column(sa.Column("id_expiry", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("id_long_term", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("applied_by_agent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("agent_name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("agent_id_number_enc", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("agent_id_number_token", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("agent_id_number_masked", sa.String(length=18), nullable=True)
        )
    # Until now an enterprise's account had to be in its name: a unit account.
    op.execute("UPDATE applications SET account_type = 'unit' WHERE applicant_kind = 'enterprise'")

    op.create_table(
        "application_beneficial_owners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("id_number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("id_number_token", sa.String(length=64), nullable=False),
        sa.Column("id_number_masked", sa.String(length=18), nullable=False),
        sa.Column("basis", sa.String(length=10), nullable=False),
        sa.Column("share_percent", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_application_beneficial_owners_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_beneficial_owners")),
    )
    with op.batch_alter_table("application_beneficial_owners", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_application_beneficial_owners_application_id"),
            ["application_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_application_beneficial_owners_id_number_token"),
            ["id_number_token"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("application_beneficial_owners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_application_beneficial_owners_id_number_token"))
        batch_op.drop_index(batch_op.f("ix_application_beneficial_owners_application_id"))
    op.drop_table("application_beneficial_owners")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_column("agent_id_number_masked")
        batch_op.drop_column("agent_id_number_token")
        batch_op.drop_column("agent_id_number_enc")
        batch_op.drop_column("agent_name")
        batch_op.drop_column("applied_by_agent")
        batch_op.drop_column("id_long_term")
        batch_op.drop_column("id_expiry")
        batch_op.drop_column("account_type")
