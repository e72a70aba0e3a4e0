"""documents at rest

No schema change. Document files are encrypted with a key derived from the KEK, which
migrations never see, so the files written before encryption are sealed by the first
process that starts with the KEK (``ContentStore.seal_legacy_files`` in
``poshub.bootstrap.build_state``, once, leaving ``documents/.sealed-v1``) and, until
then, on their first read. The rows keep their SHA-256 addresses: the address is the
hash of the clear bytes and is bound to each file as associated data. The duplicate
flag (the same file as two kinds of document) is computed from those addresses.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 13:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
