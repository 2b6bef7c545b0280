"""Writes a call's turns and events in order, off the audio path, through the services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async

log = logging.getLogger(__name__)


class Persister:
    """A queue of service calls run one at a time in a background task.

    The audio path only enqueues (never awaits the database); `drain()` waits for every write.
    A failed write is logged and retried once, so one bad row never stops the rest.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[Callable[..., Any], dict] | None] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="persister")

    def write(self, service: Callable[..., Any], **kwargs: Any) -> None:
        self._queue.put_nowait((service, kwargs))

    async def _run(self) -> None:
        while (item := await self._queue.get()) is not None:
            service, kwargs = item
            for attempt in (1, 2):
                try:
                    await database_sync_to_async(service)(**kwargs)
                    break
                except Exception:
                    log.exception("write %s failed (attempt %d)", service.__name__, attempt)
                    await asyncio.sleep(0.05)

    async def drain(self) -> None:
        """Finish every queued write, then stop."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None
