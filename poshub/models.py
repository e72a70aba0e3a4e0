"""Imports every domain's models so that ``Base.metadata`` knows all tables (Alembic)."""

from __future__ import annotations

from poshub.catalog import models as catalog_models
from poshub.contracts import models as contract_models
from poshub.core import audit, sequences, workdays
from poshub.core.db import Base
from poshub.fieldwork import models as fieldwork_models
from poshub.gateway import models as gateway_models
from poshub.merchants import models as merchant_models
from poshub.notify import models as notify_models
from poshub.onboarding import models as onboarding_models
from poshub.risk import models as risk_models
from poshub.settlement import models as settlement_models
from poshub.staff import models as staff_models
from poshub.terminals import models as terminal_models

metadata = Base.metadata

__all__ = [
    "audit",
    "catalog_models",
    "contract_models",
    "fieldwork_models",
    "gateway_models",
    "merchant_models",
    "metadata",
    "notify_models",
    "onboarding_models",
    "risk_models",
    "sequences",
    "settlement_models",
    "staff_models",
    "terminal_models",
    "workdays",
]
