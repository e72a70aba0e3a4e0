"""The app factory the benchmark's server subprocess runs (``uvicorn --factory``).

It builds the application exactly as ``poshub web`` does, from ``POSHUB_*`` settings,
but as an import string, so that uvicorn can start more than one worker process.
"""

from __future__ import annotations

from fastapi import FastAPI

from poshub.core.settings import Settings
from poshub.runtime import open_database
from poshub.web.app import build_state, create_app


def app() -> FastAPI:
    settings = Settings()
    return create_app(build_state(settings, database=open_database(settings)))
