"""The processor chain: each processor handles the frames it knows and passes the rest downstream.

Frames move by direct awaits (no queue per processor): a 20 ms audio frame costs a few attribute
lookups per stage. Slow work (STT, LLM, TTS, playout) runs in tasks a processor owns and cancels.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from calls.pipeline.frames import Frame
from calls.pipeline.stacks import await_chain

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 5.0


async def _nowhere() -> None:
    """A push past the end of the chain (only a chain without a Sink has one)."""


class Processor:
    """Override `process`; call `push` to send a frame on. Unknown frames must be pushed."""

    def __init__(self) -> None:
        self._next: Processor | None = None
        self._tasks: set[asyncio.Task] = set()

    async def process(self, frame: Frame) -> None:
        await self.push(frame)

    def push(self, frame: Frame) -> Awaitable[None]:
        """`await self.push(frame)`: the next processor's `process` itself, not a coroutine
        around it (every 20 ms frame crosses several processors)."""
        nxt = self._next
        return nxt.process(frame) if nxt is not None else _nowhere()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task:
        """Run `coro` in a task owned by this processor; errors are logged, never lost."""
        task = asyncio.get_running_loop().create_task(coro, name=name or type(self).__name__)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s task failed", type(self).__name__, exc_info=task.exception())

    async def start(self) -> None:
        """Open connections, start background tasks."""

    async def stop(self) -> None:
        """Cancel owned tasks; subclasses close what they opened, then call super().

        A task that has not ended `STOP_TIMEOUT_S` after its cancellation is logged with where it
        is stuck and left behind: stopping (and the call's finalisation after it) never waits
        on it forever."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            for task in stuck:
                log.error("%s: task %s still running %.0f s after its cancellation; at:\n%s",
                          type(self).__name__, task.get_name(), STOP_TIMEOUT_S,
                          await_chain(task))  # fmt: skip


class Sink(Processor):
    """The end of the chain: hands every frame to a callback (the session, or a test list)."""

    def __init__(self, callback: Callable[[Frame], Awaitable[None] | None]) -> None:
        super().__init__()
        self.callback = callback

    async def process(self, frame: Frame) -> None:
        result = self.callback(frame)
        if result is not None:
            await result


class Pipeline:
    """Links processors in order; `send` injects a frame at the head."""

    def __init__(self, processors: Iterable[Processor]) -> None:
        self.processors = list(processors)
        for a, b in zip(self.processors, self.processors[1:], strict=False):
            a._next = b

    async def start(self) -> None:
        for p in self.processors:
            await p.start()

    async def send(self, frame: Frame) -> None:
        await self.processors[0].process(frame)

    async def stop(self) -> None:
        for p in reversed(self.processors):
            try:
                await p.stop()
            except Exception:
                log.exception("stopping %s failed", type(p).__name__)
