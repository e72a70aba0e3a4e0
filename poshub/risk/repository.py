"""Risk control's queries (DESIGN §2: queries only here). Each part of the domain keeps
its queries under its own heading below."""

from __future__ import annotations
