"""risk control

Risk control's tables (poshub/risk/models.py): rule versions, limits and their change
requests, the counters that enforce limits, alerts, cases and their evidence, freezes
and settlement holds, blocked cards, merchant risk grades and external list checks. The
journal gets each transaction's channel (debit, credit, QR); merchants their grade and
declared business hours; terminals their registered installation location.

Evidence is never deleted: triggers refuse DELETE on alerts, case events, case items and
attachments, and any UPDATE of a case event.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NO_DELETE = ("risk_alerts", "risk_case_events", "risk_case_items", "risk_case_attachments")
"""Evidence tables: a row, once written, stays."""
NO_UPDATE = ("risk_case_events",)
_MESSAGE = "risk evidence is never deleted or rewritten"


def _triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in NO_DELETE:
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
            )
        for table in NO_UPDATE:
            op.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION risk_evidence_immutable() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{_MESSAGE}'; END $$"
    )
    for table in NO_DELETE:
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION risk_evidence_immutable()"
        )
    for table in NO_UPDATE:
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION risk_evidence_immutable()"
        )


def _drop_triggers() -> None:
    for table in NO_DELETE:
        op.execute(
            f"DROP TRIGGER IF EXISTS {table}_no_delete"
            + ("" if op.get_bind().dialect.name == "sqlite" else f" ON {table}")
        )
    for table in NO_UPDATE:
        op.execute(
            f"DROP TRIGGER IF EXISTS {table}_no_update"
            + ("" if op.get_bind().dialect.name == "sqlite" else f" ON {table}")
        )
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS risk_evidence_immutable()")


def upgrade() -> None:
    op.create_table(
        "merchant_risk_grades",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mid", sa.String(length=15), nullable=False),
        sa.Column("grade", sa.String(length=8), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("factors", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=True),
        sa.Column("previous_grade", sa.String(length=8), nullable=True),
        sa.Column("graded_by", sa.String(length=64), nullable=False),
        sa.Column("graded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_risk_grades")),
        sa.UniqueConstraint("mid", "period", name=op.f("uq_merchant_risk_grades_mid")),
    )
    op.create_index(
        "ix_merchant_risk_grades_mid_at", "merchant_risk_grades", ["mid", "graded_at"], unique=False
    )
    op.create_table(
        "risk_blocked_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pan_token", sa.String(length=64), nullable=False),
        sa.Column("pan_masked", sa.String(length=19), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_blocked_cards")),
    )
    op.create_index(
        op.f("ix_risk_blocked_cards_pan_token"), "risk_blocked_cards", ["pan_token"], unique=False
    )
    op.create_table(
        "risk_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=24), nullable=False),
        sa.Column("mid", sa.String(length=15), nullable=True),
        sa.Column("tid", sa.String(length=8), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_to", sa.String(length=64), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_cases")),
        sa.UniqueConstraint("reference", name=op.f("uq_risk_cases_reference")),
    )
    op.create_index(op.f("ix_risk_cases_mid"), "risk_cases", ["mid"], unique=False)
    op.create_index(op.f("ix_risk_cases_status"), "risk_cases", ["status"], unique=False)
    op.create_table(
        "risk_counters",
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_risk_counters")),
    )
    op.create_index(
        op.f("ix_risk_counters_expires_on"), "risk_counters", ["expires_on"], unique=False
    )
    op.create_table(
        "risk_limit_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=12), nullable=False),
        sa.Column("subject", sa.String(length=15), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("per_transaction_fen", sa.BigInteger(), nullable=True),
        sa.Column("per_day_fen", sa.BigInteger(), nullable=True),
        sa.Column("per_month_fen", sa.BigInteger(), nullable=True),
        sa.Column("per_card_per_day_fen", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_limit_changes")),
    )
    op.create_index(
        op.f("ix_risk_limit_changes_status"), "risk_limit_changes", ["status"], unique=False
    )
    op.create_index(
        "uq_risk_limit_changes_pending",
        "risk_limit_changes",
        ["scope", "subject", "channel"],
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "risk_list_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sa.String(length=12), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_list_checks")),
    )
    op.create_index(
        op.f("ix_risk_list_checks_status"), "risk_list_checks", ["status"], unique=False
    )
    op.create_index(
        "ix_risk_list_checks_subject", "risk_list_checks", ["subject_kind", "subject"], unique=False
    )
    op.create_table(
        "risk_rule_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_rule_versions")),
        sa.UniqueConstraint("code", "version", name=op.f("uq_risk_rule_versions_code")),
    )
    op.create_index(
        op.f("ix_risk_rule_versions_code"), "risk_rule_versions", ["code"], unique=False
    )
    op.create_table(
        "risk_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_code", sa.String(length=40), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("mid", sa.String(length=15), nullable=True),
        sa.Column("tid", sa.String(length=8), nullable=True),
        sa.Column("rrn", sa.String(length=12), nullable=True),
        sa.Column("pan_token", sa.String(length=64), nullable=True),
        sa.Column("pan_masked", sa.String(length=19), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dedupe_key", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["risk_cases.id"], name=op.f("fk_risk_alerts_case_id_risk_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_alerts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_risk_alerts_dedupe_key")),
    )
    op.create_index(op.f("ix_risk_alerts_case_id"), "risk_alerts", ["case_id"], unique=False)
    op.create_index(
        "ix_risk_alerts_mid_created", "risk_alerts", ["mid", "created_at"], unique=False
    )
    op.create_index(op.f("ix_risk_alerts_rrn"), "risk_alerts", ["rrn"], unique=False)
    op.create_index(op.f("ix_risk_alerts_rule_code"), "risk_alerts", ["rule_code"], unique=False)
    op.create_index(
        "ix_risk_alerts_status_created", "risk_alerts", ["status", "created_at"], unique=False
    )
    op.create_table(
        "risk_case_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["risk_cases.id"], name=op.f("fk_risk_case_attachments_case_id_risk_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_case_attachments")),
    )
    op.create_index(
        op.f("ix_risk_case_attachments_case_id"), "risk_case_attachments", ["case_id"], unique=False
    )
    op.create_table(
        "risk_case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["risk_cases.id"], name=op.f("fk_risk_case_events_case_id_risk_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_case_events")),
    )
    op.create_index(
        op.f("ix_risk_case_events_case_id"), "risk_case_events", ["case_id"], unique=False
    )
    op.create_table(
        "risk_case_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("ref", sa.String(length=24), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["risk_cases.id"], name=op.f("fk_risk_case_items_case_id_risk_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_case_items")),
        sa.UniqueConstraint("case_id", "kind", "ref", name=op.f("uq_risk_case_items_case_id")),
    )
    op.create_index(
        op.f("ix_risk_case_items_case_id"), "risk_case_items", ["case_id"], unique=False
    )
    op.create_table(
        "risk_limits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=12), nullable=False),
        sa.Column("subject", sa.String(length=15), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("per_transaction_fen", sa.BigInteger(), nullable=True),
        sa.Column("per_day_fen", sa.BigInteger(), nullable=True),
        sa.Column("per_month_fen", sa.BigInteger(), nullable=True),
        sa.Column("per_card_per_day_fen", sa.BigInteger(), nullable=True),
        sa.Column("change_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["risk_limit_changes.id"],
            name=op.f("fk_risk_limits_change_id_risk_limit_changes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_limits")),
        sa.UniqueConstraint(
            "scope", "subject", "channel", "version", name=op.f("uq_risk_limits_scope")
        ),
    )
    op.create_table(
        "risk_freezes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=12), nullable=False),
        sa.Column("subject", sa.String(length=15), nullable=False),
        sa.Column("mid", sa.String(length=15), nullable=True),
        sa.Column("blocks_authorization", sa.Boolean(), nullable=False),
        sa.Column("holds_settlement", sa.Boolean(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["risk_alerts.id"], name=op.f("fk_risk_freezes_alert_id_risk_alerts")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["risk_cases.id"], name=op.f("fk_risk_freezes_case_id_risk_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_freezes")),
    )
    op.create_index(op.f("ix_risk_freezes_case_id"), "risk_freezes", ["case_id"], unique=False)
    op.create_index(op.f("ix_risk_freezes_mid"), "risk_freezes", ["mid"], unique=False)
    op.create_index("ix_risk_freezes_subject", "risk_freezes", ["scope", "subject"], unique=False)
    op.add_column("gateway_transactions", sa.Column("channel", sa.String(length=8), nullable=True))
    op.add_column("merchants", sa.Column("risk_grade", sa.String(length=8), nullable=True))
    op.add_column("merchants", sa.Column("opening_time", sa.String(length=5), nullable=True))
    op.add_column("merchants", sa.Column("closing_time", sa.String(length=5), nullable=True))
    op.add_column("applications", sa.Column("opening_time", sa.String(length=5), nullable=True))
    op.add_column("applications", sa.Column("closing_time", sa.String(length=5), nullable=True))
    op.add_column("terminals", sa.Column("install_latitude", sa.String(length=16), nullable=True))
    op.add_column("terminals", sa.Column("install_longitude", sa.String(length=16), nullable=True))
    _triggers()


def downgrade() -> None:
    _drop_triggers()
    op.drop_column("terminals", "install_longitude")
    op.drop_column("terminals", "install_latitude")
    op.drop_column("applications", "closing_time")
    op.drop_column("applications", "opening_time")
    op.drop_column("merchants", "closing_time")
    op.drop_column("merchants", "opening_time")
    op.drop_column("merchants", "risk_grade")
    op.drop_column("gateway_transactions", "channel")
    op.drop_index("ix_risk_freezes_subject", table_name="risk_freezes")
    op.drop_index(op.f("ix_risk_freezes_mid"), table_name="risk_freezes")
    op.drop_index(op.f("ix_risk_freezes_case_id"), table_name="risk_freezes")
    op.drop_table("risk_freezes")
    op.drop_table("risk_limits")
    op.drop_index(op.f("ix_risk_case_items_case_id"), table_name="risk_case_items")
    op.drop_table("risk_case_items")
    op.drop_index(op.f("ix_risk_case_events_case_id"), table_name="risk_case_events")
    op.drop_table("risk_case_events")
    op.drop_index(op.f("ix_risk_case_attachments_case_id"), table_name="risk_case_attachments")
    op.drop_table("risk_case_attachments")
    op.drop_index("ix_risk_alerts_status_created", table_name="risk_alerts")
    op.drop_index(op.f("ix_risk_alerts_rule_code"), table_name="risk_alerts")
    op.drop_index(op.f("ix_risk_alerts_rrn"), table_name="risk_alerts")
    op.drop_index("ix_risk_alerts_mid_created", table_name="risk_alerts")
    op.drop_index(op.f("ix_risk_alerts_case_id"), table_name="risk_alerts")
    op.drop_table("risk_alerts")
    op.drop_index(op.f("ix_risk_rule_versions_code"), table_name="risk_rule_versions")
    op.drop_table("risk_rule_versions")
    op.drop_index("ix_risk_list_checks_subject", table_name="risk_list_checks")
    op.drop_index(op.f("ix_risk_list_checks_status"), table_name="risk_list_checks")
    op.drop_table("risk_list_checks")
    op.drop_index("uq_risk_limit_changes_pending", table_name="risk_limit_changes")
    op.drop_index(op.f("ix_risk_limit_changes_status"), table_name="risk_limit_changes")
    op.drop_table("risk_limit_changes")
    op.drop_index(op.f("ix_risk_counters_expires_on"), table_name="risk_counters")
    op.drop_table("risk_counters")
    op.drop_index(op.f("ix_risk_cases_status"), table_name="risk_cases")
    op.drop_index(op.f("ix_risk_cases_mid"), table_name="risk_cases")
    op.drop_table("risk_cases")
    op.drop_index(op.f("ix_risk_blocked_cards_pan_token"), table_name="risk_blocked_cards")
    op.drop_table("risk_blocked_cards")
    op.drop_index("ix_merchant_risk_grades_mid_at", table_name="merchant_risk_grades")
    op.drop_table("merchant_risk_grades")
