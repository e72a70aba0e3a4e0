"""Where a request's write transaction runs.

On SQLite one writer at a time holds the database, whatever the number of threads. A
process therefore gives its write transactions one thread of their own: requests queue
for it in order instead of several pool threads taking turns at the GIL while one of
them holds the write lock (which stretches every hold). The event loop stays free for
reads and for parsing the next requests. On PostgreSQL, writes run in the usual pool,
since rows lock independently there.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from poshub.web.deps import app_state

P = ParamSpec("P")
R = TypeVar("R")

_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="poshub-writer")


async def run_write(request: Request, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn`` (which opens, commits and closes its own unit of work) off the event loop."""
    if app_state(request).db.dialect != "sqlite":
        return await run_in_threadpool(fn, *args, **kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_writer, functools.partial(fn, *args, **kwargs))
