"""Waiting for a condition: the one polling helper of the tests (async, an ORM query, or blocking)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from channels.db import database_sync_to_async

T = TypeVar("T")


def _timed_out(what: str, limit: float, state: Callable[[], object] | None) -> AssertionError:
    extra = f"\n{state()}" if state is not None else ""
    return AssertionError(f"{what}: not within {limit:g} s{extra}")


async def wait_until(
    predicate: Callable[[], T],
    limit: float = 5.0,
    *,
    what: str = "condition",
    state: Callable[[], object] | None = None,
    interval: float = 0.005,
) -> T:
    """Poll `predicate` on the running loop until it returns something true, and return that;
    fail the test after `limit` seconds, with `state()` in the message."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not (value := predicate()):
        if loop.time() > deadline:
            raise _timed_out(what, limit, state)
        await asyncio.sleep(interval)
    return value


async def wait_until_db(
    predicate: Callable[[], T], limit: float = 5.0, *, what: str = "condition", interval=0.02
) -> T:
    """`wait_until` for a predicate that queries the database (run in Django's sync thread)."""
    check = database_sync_to_async(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not (value := await check()):
        if loop.time() > deadline:
            raise _timed_out(what, limit, None)
        await asyncio.sleep(interval)
    return value


def poll_until(
    predicate: Callable[[], T],
    limit: float,
    *,
    what: str = "condition",
    state: Callable[[], object] | None = None,
    interval: float = 0.25,
) -> T:
    """Blocking `wait_until`, for a test driving a server in another process over HTTP."""
    deadline = time.monotonic() + limit
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise _timed_out(what, limit, state)
        time.sleep(interval)
    return value
