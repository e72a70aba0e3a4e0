"""What the web process holds for its lifetime, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from poshub.core.crypto import KeyVault
from poshub.core.db import Database
from poshub.core.settings import Settings
from poshub.notify.adapters import Notifier
from poshub.onboarding.service import OnboardingDeps


@dataclass(frozen=True)
class AppState:
    settings: Settings
    db: Database
    vault: KeyVault
    onboarding: OnboardingDeps
    notifier: Notifier
