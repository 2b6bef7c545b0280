"""Writes the live calls' turns and events in order, off the audio path, in one writer thread."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from django.db import connection, transaction

from calls import events

log = logging.getLogger(__name__)

# Writes committed in one transaction at most; a batch that fails is retried write by write.
MAX_BATCH = 64
# How long the oldest queued write waits for others before a batch starts (not at all if it has
# waited that long behind the previous batch), so that writes that finished together are stored
# together: a run of turns in two statements (`services.turn_append.many`). Written alone, each
# turn costs this thread the ORM's work and a GIL round trip per statement, all of it taken from
# the event loop's audio path. A turn still reaches the database and the live views within a
# fraction of a second of its end.
GATHER_S = 0.1

# One thread holds one long-lived database connection for every live call of the process:
# `database_sync_to_async` would connect, set up and close a connection per write (conn_max_age=0)
# and queue behind the thread that status callbacks and the API share.
_thread = ThreadPoolExecutor(1, thread_name_prefix="db-writer")


@dataclass(slots=True)
class _Write:
    service: Callable[..., Any]
    kwargs: dict
    done: asyncio.Future[None]
    queued_at: float  # the loop's clock


def _run_one(write: _Write, messages: list[tuple[str, dict]]) -> None:
    for attempt in (1, 2):
        try:
            with events.deferred() as published, transaction.atomic():
                write.service(**write.kwargs)
            messages.extend(published)
            return
        except Exception:
            log.exception("write %s failed (attempt %d)", write.service.__name__, attempt)
            connection.close()  # a broken connection is replaced on the next query


def _run_in_order(batch: list[_Write]) -> None:
    """Each write in order; a run of writes of a service that has a `many` form (several in one
    call) goes through it."""
    for service, run in itertools.groupby(batch, key=attrgetter("service")):
        many = getattr(service, "many", None)
        if many is not None:
            many([write.kwargs for write in run])
        else:
            for write in run:
                service(**write.kwargs)


def _run_batch(batch: list[_Write]) -> list[tuple[str, dict]]:
    """In the writer thread: every write in one transaction, or (if that fails) one by one.
    Returns what the writes published, for the event loop to send."""
    messages: list[tuple[str, dict]] = []
    if len(batch) > 1:
        try:
            with events.deferred() as published, transaction.atomic():
                _run_in_order(batch)
            return published
        except Exception:
            log.warning("batch of %d writes failed; writing them one by one", len(batch))
            if not connection.is_usable():
                connection.close()
    for write in batch:
        _run_one(write, messages)
    return messages


def close_connection() -> None:
    """Close the writer thread's connection (before the database goes away, e.g. after tests)."""
    _thread.submit(lambda: connection.close()).result()  # resolved in the writer thread


class _Writer:
    """The writes queued on one event loop, run in batches, in order, by a task that lives
    while there is something to write."""

    def __init__(self) -> None:
        self._queue: deque[_Write] = deque()
        self._task: asyncio.Task | None = None  # a strong reference while it runs

    def submit(self, service: Callable[..., Any], kwargs: dict) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        write = _Write(service, kwargs, loop.create_future(), loop.time())
        self._queue.append(write)
        if self._task is None:
            self._task = loop.create_task(self._run(), name="db-writer")
        return write.done

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                wait = self._queue[0].queued_at + GATHER_S - loop.time()
                if wait > 0 and len(self._queue) < MAX_BATCH:
                    await asyncio.sleep(wait)
                batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
                try:
                    messages = await loop.run_in_executor(_thread, _run_batch, batch)
                    await events.send_all(messages)
                except Exception:  # never leave a drain waiting
                    log.exception("writer failed on a batch of %d", len(batch))
                finally:
                    for write in batch:
                        if not write.done.done():
                            write.done.set_result(None)
        finally:
            self._task = None


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writer] = (
    weakref.WeakKeyDictionary()
)
_writers_lock = threading.Lock()


def _writer() -> _Writer:
    loop = asyncio.get_running_loop()
    with _writers_lock:
        writer = _writers.get(loop)
        if writer is None:
            writer = _writers[loop] = _Writer()
    return writer


class Persister:
    """One call's writes: service calls run in the order given, off the audio path.

    The audio path only enqueues (never awaits the database); `drain()` waits for every write.
    A failed write is logged and retried once, so one bad row never stops the rest.
    """

    def __init__(self) -> None:
        self._last: asyncio.Future[None] | None = None

    def write(self, service: Callable[..., Any], **kwargs: Any) -> None:
        self._last = _writer().submit(service, kwargs)

    async def drain(self) -> None:
        """Wait until every write queued so far is stored."""
        if self._last is not None:
            await asyncio.shield(self._last)
