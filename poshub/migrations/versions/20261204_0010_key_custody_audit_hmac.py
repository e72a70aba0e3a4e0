"""key custody and keyed audit chain

Transport keys formed under dual control and key-export requests approved by a second
person (``poshub.terminals.custody``); a ``version`` on every audit row.

Audit rows: existing rows are version 1 (plain SHA-256) and stay so. Re-chaining them
with the HMAC would need the KEK, which migrations never see, so the chain keeps them as
a verified legacy prefix and every row written from now on by a process holding the KEK
is version 2 (HMAC-SHA256 under a key derived from it). ``poshub audit verify`` refuses a
version-1 row after a version-2 one; the anchors outside the database
(``poshub.core.anchors``) protect the legacy prefix from then on. The column is added with
a plain ALTER TABLE (no table copy), so the append-only triggers stay in place.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 13:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "audit_log",
        sa.Column("version", sa.SmallInteger(), server_default="1", nullable=False),
    )
    op.create_table(
        "transport_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kcv", sa.String(length=6), nullable=True),
        sa.Column("key_block", sa.Text(), nullable=True),
        sa.Column("first_component_enc", sa.LargeBinary(), nullable=True),
        sa.Column("first_component_kcv", sa.String(length=6), nullable=False),
        sa.Column("first_custodian_id", sa.Integer(), nullable=False),
        sa.Column("second_custodian_id", sa.Integer(), nullable=True),
        sa.Column("second_component_kcv", sa.String(length=6), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["first_custodian_id"],
            ["staff_users.id"],
            name=op.f("fk_transport_keys_first_custodian_id_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["second_custodian_id"],
            ["staff_users.id"],
            name=op.f("fk_transport_keys_second_custodian_id_staff_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transport_keys")),
        sa.UniqueConstraint("kcv", name=op.f("uq_transport_keys_kcv")),
    )
    with op.batch_alter_table("transport_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transport_keys_status"), ["status"], unique=False)
    op.create_table(
        "key_export_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("terminal_key_id", sa.Integer(), nullable=False),
        sa.Column("transport_key_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_key_export_requests_terminal_id_terminals"),
        ),
        sa.ForeignKeyConstraint(
            ["terminal_key_id"],
            ["terminal_keys.id"],
            name=op.f("fk_key_export_requests_terminal_key_id_terminal_keys"),
        ),
        sa.ForeignKeyConstraint(
            ["transport_key_id"],
            ["transport_keys.id"],
            name=op.f("fk_key_export_requests_transport_key_id_transport_keys"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["staff_users.id"],
            name=op.f("fk_key_export_requests_requested_by_id_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["approved_by_id"],
            ["staff_users.id"],
            name=op.f("fk_key_export_requests_approved_by_id_staff_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_export_requests")),
    )
    with op.batch_alter_table("key_export_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_key_export_requests_terminal_id"), ["terminal_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_key_export_requests_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("key_export_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_key_export_requests_status"))
        batch_op.drop_index(batch_op.f("ix_key_export_requests_terminal_id"))
    op.drop_table("key_export_requests")
    with op.batch_alter_table("transport_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transport_keys_status"))
    op.drop_table("transport_keys")
    # A plain ALTER TABLE on both databases (SQLite 3.35+), so the append-only triggers
    # stay. Keyed rows written meanwhile no longer verify under the old code.
    op.drop_column("audit_log", "version")
