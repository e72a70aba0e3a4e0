"""mobile verification

The applicant proves the mobile number with a one-time SMS code before any other message
goes to it (``applications.mobile_verified_at``; ``mobile_challenges`` keeps only a keyed
hash of each code). Applications are counted per mobile number and per source address
for the rate limits; wrong access codes on the tracking login per source address.

Applications that exist before this revision start unproved: they get no SMS until the
applicant confirms the number on the tracking page.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 13:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mobile_verified_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("source_address", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_applications_mobile_created_at", ["mobile", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_applications_source_address_created_at",
            ["source_address", "created_at"],
            unique=False,
        )
    op.create_table(
        "mobile_challenges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.String(length=32), nullable=False),
        sa.Column("mobile", sa.String(length=11), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("source_address", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_mobile_challenges_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mobile_challenges")),
    )
    with op.batch_alter_table("mobile_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mobile_challenges_application_id"), ["application_id"], unique=False
        )
        batch_op.create_index(
            "ix_mobile_challenges_mobile_sent_at", ["mobile", "sent_at"], unique=False
        )
        batch_op.create_index(
            "ix_mobile_challenges_source_address_sent_at",
            ["source_address", "sent_at"],
            unique=False,
        )
    op.create_table(
        "access_code_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_code_failures")),
    )
    with op.batch_alter_table("access_code_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_access_code_failures_source_address_at", ["source_address", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("access_code_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_access_code_failures_source_address_at")
    op.drop_table("access_code_failures")
    with op.batch_alter_table("mobile_challenges", schema=None) as batch_op:
        batch_op.drop_index("ix_mobile_challenges_source_address_sent_at")
        batch_op.drop_index("ix_mobile_challenges_mobile_sent_at")
        batch_op.drop_index(batch_op.f("ix_mobile_challenges_application_id"))
    op.drop_table("mobile_challenges")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index("ix_applications_source_address_created_at")
        batch_op.drop_index("ix_applications_mobile_created_at")
        batch_op.drop_column("source_address")
        batch_op.drop_column("mobile_verified_at")
