"""Keeps one Realtime session up: connect, replay the caller audio it missed, reconnect after a drop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from calls.pipeline.frames import EventRecord, Frame, Hangup
from calls.pipeline.realtime.client import (
    RealtimeClient,
    RealtimeClientFactory,
    describe,
    realtime_tools,
)

log = logging.getLogger(__name__)

# Caller audio kept while the socket is down and replayed to the next session (2 s of frames).
REPLAY_FRAMES = 100
CONNECT_TIMEOUT_S = 10.0


class SessionHandler(Protocol):
    """What the connection asks of the processor that uses it."""

    def instructions(self) -> str: ...
    def tools_offered(self) -> list[dict]: ...
    async def ready(self) -> None: ...
    async def on_event(self, rt: RealtimeClient, event: Any) -> None: ...
    async def lost(self, rt: RealtimeClient | None) -> None: ...


class Connection:
    """The session of the moment (`rt`: set while one is up and caught up) and the audio for it."""

    def __init__(
        self,
        factory: RealtimeClientFactory,
        handler: SessionHandler,
        push: Callable[[Frame], Awaitable[None]],
        *,
        reconnect_delays: Sequence[float],
        connect_timeout_s: float,
    ) -> None:
        self.factory = factory
        self.handler = handler
        self.push = push
        self.reconnect_delays = tuple(reconnect_delays)
        self.connect_timeout_s = connect_timeout_s
        self.rt: RealtimeClient | None = None
        self.healthy = False  # a response completed on this session: a later drop starts afresh
        self._backlog: deque[bytes] = deque(maxlen=REPLAY_FRAMES)
        self._sessions = 0

    async def send_audio(self, mulaw: bytes) -> None:
        rt = self.rt
        if rt is None:
            self._backlog.append(mulaw)
            return
        try:
            await rt.send_audio(mulaw)
        except Exception as exc:  # the reader sees the drop and reconnects; keep the audio
            log.debug("realtime send failed: %s", exc)
            self._backlog.append(mulaw)

    async def run(self) -> None:
        """Keep one session up; after a drop, a fresh one primed with the conversation so far."""
        failures = 0
        while True:
            rt: RealtimeClient | None = None
            self.healthy = False
            try:
                try:
                    rt = self.factory(self.handler.instructions(),
                                      realtime_tools(self.handler.tools_offered()))  # fmt: skip
                    async with asyncio.timeout(self.connect_timeout_s):
                        await rt.connect()
                except Exception as exc:
                    reason = f"connect failed: {describe(exc)}"
                else:
                    reason = await self._serve(rt)
            finally:
                self.rt = None
                if rt is not None:
                    with contextlib.suppress(Exception):
                        await rt.close()
            await self.handler.lost(rt)
            failures = 0 if self.healthy else failures + 1
            await self.push(
                EventRecord("error", {"provider": "realtime", "reason": reason,
                                      "failures": failures})
            )  # fmt: skip
            if failures > len(self.reconnect_delays):
                await self.push(
                    EventRecord("error", {"provider": "realtime", "fatal": True,
                                          "reason": f"gave up after {failures} failures"})
                )  # fmt: skip
                await self.push(Hangup("speech-to-speech engine unavailable"))
                return
            await asyncio.sleep(self.reconnect_delays[max(0, failures - 1)])

    async def _serve(self, rt: RealtimeClient) -> str:
        """Run one connected session until it ends; returns why it ended."""
        self._sessions += 1
        if self._sessions > 1:
            await self.push(EventRecord("provider", {"provider": "realtime",
                                                     "action": "reconnected"}))  # fmt: skip
        try:
            while self._backlog:  # the caller audio the previous session missed, in order
                await rt.send_audio(self._backlog.popleft())
            self.rt = rt  # no await since the backlog emptied: nothing is sent out of order
            await self.handler.ready()
            async for event in rt.events():
                await self.handler.on_event(rt, event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return describe(exc)
        return "connection closed by the server"
