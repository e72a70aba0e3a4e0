"""The app factory the benchmark's server subprocess runs (``uvicorn --factory``).

It builds the application exactly as ``poshub web`` does, from ``POSHUB_*`` settings,
but as an import string, so that uvicorn can start more than one worker process.
"""

from __future__ import annotations

from poshub.web.app import app_from_environment as app

__all__ = ["app"]
