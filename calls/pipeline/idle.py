"""Silence and duration limits: nudge a silent caller, then say goodbye and hang up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from calls.pipeline.context import CallContext
from calls.pipeline.frames import (
    CallerSpeechStarted,
    CallerSpeechStopped,
    EventRecord,
    Frame,
    Hangup,
    ReplyStarted,
    Say,
    TurnRecord,
)
from calls.pipeline.processor import Processor

TICK_S = 0.25
# The goodbye ends the call once played; if it never plays out (the caller talked over it), the
# monitor hangs up itself this long after starting it.
GOODBYE_GRACE_S = 20.0
# Caller speech longer than this counts as silence again (a CallerSpeechStopped that never came).
MAX_SPEECH_S = 60.0


class IdleMonitor(Processor):
    def __init__(self, ctx: CallContext, inject: Callable[[Frame], Awaitable[None]]) -> None:
        super().__init__()
        self.ctx = ctx
        self.inject = inject
        self._last = 0.0
        self._nudged = False
        self._ending = False
        self._hung_up = False
        self._started = 0.0
        self._speech_since: float | None = None  # the caller is talking: no silence to count

    async def start(self) -> None:
        self._last = self._started = self.ctx.clock()
        self.spawn(self._watch(), "idle")

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, CallerSpeechStarted):
            self._speech_since = self.ctx.clock()
        elif isinstance(frame, CallerSpeechStopped):
            self._speech_since = None
        if isinstance(frame, CallerSpeechStarted | CallerSpeechStopped | ReplyStarted | TurnRecord):
            self._last = self.ctx.clock()
            caller = isinstance(frame, CallerSpeechStarted) or (
                isinstance(frame, TurnRecord) and frame.speaker == "caller"
            )
            if caller:
                self._nudged = False
        elif isinstance(frame, Hangup):
            self._ending = self._hung_up = True
        await self.push(frame)

    async def _watch(self) -> None:
        opts = self.ctx.options
        while not self._ending:
            await asyncio.sleep(TICK_S)
            now = self.ctx.clock()
            if now - self._started >= opts.max_duration_s:
                await self._end("max duration reached")
                return
            talking = self._speech_since is not None and now - self._speech_since < MAX_SPEECH_S
            if self.ctx.agent_speaking or talking:
                self._last = now
                continue
            if now - self._last < opts.silence_timeout_s:
                continue
            if not self._nudged:
                self._nudged = True
                self._last = now
                await self.push(EventRecord("silence", {"action": "nudge"}))
                await self.inject(Say(opts.nudge_text, kind="nudge"))
            else:
                await self._end("caller silent")
                return

    async def _end(self, reason: str) -> None:
        self._ending = True
        await self.push(
            EventRecord("silence" if "silent" in reason else "limit", {"reason": reason})
        )
        goodbye = self.ctx.persona.goodbye
        if not goodbye:
            await self.push(Hangup(reason))
            return
        await self.inject(Say(goodbye, kind="goodbye", end_call=True))
        said_at = self.ctx.clock()
        while True:
            await asyncio.sleep(TICK_S)
            if self._hung_up:
                return
            if self.ctx.clock() - said_at >= GOODBYE_GRACE_S:
                await self.push(Hangup(reason))
                return
