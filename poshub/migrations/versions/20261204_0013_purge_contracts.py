"""purge contracts

A signed contract stays immutable, except for exactly one change: the purge of its
personal data after the merchant's retention period (docs/privacy.md). ``contracts``
gets a purge mark (``purged_at``), and the triggers that refuse any change to a signed
contract now let through one UPDATE that sets that mark from NULL and blanks the
personal fields (signer's name, account holder, encrypted account number, signing
address and user agent, free-text summary, and the personal keys of the ``terms``
snapshot), leaving every other column (numbers, versions, dates, fee plan, the hashes of
what was signed) as it was. A purged contract refuses every change, and a signed
contract is still never deleted.

A column added to ``contracts`` later must be added to the SQLite trigger's list of
columns that the purge leaves untouched (PostgreSQL compares every column but the
personal ones, whatever they are).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ANONYMISED = "***"
_UNTOUCHED_COLUMNS = (
    "id",
    "contract_number",
    "version",
    "merchant_id",
    "status",
    "amendment_kind",
    "fee_plan_id",
    "settlement_cycle",
    "term_months",
    "effective_from",
    "end_date",
    "language",
    "bank_name",
    "account_number_masked",
    "pdf_sha256",
    "pdf_size_bytes",
    "generated_at",
    "generated_by_id",
    "merchant_signed_at",
    "merchant_signed_sha256",
    "countersigned_at",
    "countersigned_by_id",
    "countersigned_ip",
    "withdrawn_at",
)
"""Every column of ``contracts`` that the purge leaves as it was (SQLite lists them)."""
_PERSONAL_COLUMNS = (
    "merchant_signer_name",
    "account_name",
    "account_number_enc",
    "merchant_signed_ip",
    "merchant_signed_user_agent",
    "change_summary",
    "terms",
    "purged_at",
)
"""Columns the purge may write; each is checked on its own below."""
_PERSONAL_TERMS = (
    "merchant_legal_name",
    "merchant_business_name",
    "merchant_representative",
    "merchant_identifier_masked",
    "merchant_address",
    "merchant_mobile_masked",
    "account_name",
    "change_summary",
)
"""Keys of the ``terms`` snapshot that may hold personal data: each may only keep its
value or become ``***`` or null; every other key must stay as it was."""

_IMMUTABLE = "signed contract is immutable"


# --- SQLite -------------------------------------------------------------------------------


def _sqlite_purge_allowed() -> str:
    untouched = [f"NEW.{c} IS OLD.{c}" for c in _UNTOUCHED_COLUMNS]
    paths = ", ".join(f"'$.{key}'" for key in _PERSONAL_TERMS)
    terms = [
        f"json_remove(NEW.terms, {paths}) IS json_remove(OLD.terms, {paths})",
        *(
            f"(json_extract(NEW.terms, '$.{key}') IS json_extract(OLD.terms, '$.{key}') "
            f"OR json_extract(NEW.terms, '$.{key}') IS NULL "
            f"OR json_extract(NEW.terms, '$.{key}') = '{ANONYMISED}')"
            for key in _PERSONAL_TERMS
        ),
    ]
    personal = [
        "OLD.purged_at IS NULL",
        "NEW.purged_at IS NOT NULL",
        f"(NEW.merchant_signer_name IS OLD.merchant_signer_name "
        f"OR NEW.merchant_signer_name = '{ANONYMISED}')",
        f"(NEW.account_name IS OLD.account_name OR NEW.account_name = '{ANONYMISED}')",
        "length(NEW.account_number_enc) = 0",
        "NEW.merchant_signed_ip IS NULL",
        "NEW.merchant_signed_user_agent IS NULL",
        "NEW.change_summary IS NULL",
    ]
    return " AND ".join([*personal, *untouched, *terms])


def _sqlite_update_trigger() -> str:
    return (
        "CREATE TRIGGER contracts_signed_no_update BEFORE UPDATE ON contracts "
        f"WHEN OLD.status = 'signed' AND NOT ({_sqlite_purge_allowed()}) "
        f"BEGIN SELECT RAISE(ABORT, '{_IMMUTABLE}'); END"
    )


_SQLITE_OLD_UPDATE_TRIGGER = (
    "CREATE TRIGGER contracts_signed_no_update BEFORE UPDATE ON contracts "
    f"WHEN OLD.status = 'signed' BEGIN SELECT RAISE(ABORT, '{_IMMUTABLE}'); END"
)


# --- PostgreSQL ---------------------------------------------------------------------------


def _postgres_purge_allowed() -> str:
    columns = ", ".join(f"'{c}'" for c in _PERSONAL_COLUMNS)
    keys = ", ".join(f"'{k}'" for k in _PERSONAL_TERMS)
    per_key = "\n".join(
        f"        AND ((NEW.terms::jsonb ->> '{k}') IS NOT DISTINCT FROM (OLD.terms::jsonb ->> '{k}')"
        f" OR (NEW.terms::jsonb ->> '{k}') IS NULL OR (NEW.terms::jsonb ->> '{k}') = '{ANONYMISED}')"
        for k in _PERSONAL_TERMS
    )
    return f"""TG_OP = 'UPDATE'
        AND OLD.purged_at IS NULL AND NEW.purged_at IS NOT NULL
        AND (to_jsonb(NEW) - ARRAY[{columns}]) = (to_jsonb(OLD) - ARRAY[{columns}])
        AND (NEW.merchant_signer_name IS NOT DISTINCT FROM OLD.merchant_signer_name
             OR NEW.merchant_signer_name = '{ANONYMISED}')
        AND (NEW.account_name = OLD.account_name OR NEW.account_name = '{ANONYMISED}')
        AND length(NEW.account_number_enc) = 0
        AND NEW.merchant_signed_ip IS NULL
        AND NEW.merchant_signed_user_agent IS NULL
        AND NEW.change_summary IS NULL
        AND (NEW.terms::jsonb - ARRAY[{keys}]) = (OLD.terms::jsonb - ARRAY[{keys}])
{per_key}"""


def _postgres_function(purge_allowed: str | None) -> str:
    """The trigger function; with ``purge_allowed``, that one UPDATE is let through (0013),
    without it every change to a signed contract is refused (0003's definition)."""
    exception = (
        f"        IF {purge_allowed}\n        THEN\n            RETURN NEW;\n        END IF;\n"
        if purge_allowed
        else ""
    )
    return f"""
CREATE OR REPLACE FUNCTION contracts_signed_immutable() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'signed' THEN
{exception}        RAISE EXCEPTION '{_IMMUTABLE}';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite and PostgreSQL): a batch copy of the table would drop
    # its triggers.
    op.add_column("contracts", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS contracts_signed_no_update")
        op.execute(_sqlite_update_trigger())
    elif dialect == "postgresql":
        # The trigger (BEFORE UPDATE OR DELETE, from 0003) calls this function by name.
        op.execute(_postgres_function(_postgres_purge_allowed()))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS contracts_signed_no_update")
        op.execute("ALTER TABLE contracts DROP COLUMN purged_at")
        op.execute(_SQLITE_OLD_UPDATE_TRIGGER)
    else:
        if dialect == "postgresql":
            op.execute(_postgres_function(None))
        op.drop_column("contracts", "purged_at")
