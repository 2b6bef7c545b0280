"""Lines spoken verbatim on a Realtime session (greeting, supervisor, goodbye), one at a time."""

from __future__ import annotations

import logging
from collections import deque

from calls.pipeline.frames import Say
from calls.pipeline.realtime.client import RealtimeClient

log = logging.getLogger(__name__)
SAY_INSTRUCTIONS = "Say exactly the following words, and nothing else: {text}"


class SayQueue:
    """Each line is a response of its own, asked for once no response is in progress."""

    def __init__(self) -> None:
        self.lines: deque[Say] = deque()
        self.sent: Say | None = None  # asked for, its response not created yet

    def add(self, say: Say) -> None:
        self.lines.append(say)

    def again(self, say: Say) -> None:
        """Say `say` before anything else queued (asked again, or a goodbye to end on)."""
        self.lines.appendleft(say)

    def take_sent(self) -> Say | None:
        say, self.sent = self.sent, None
        return say

    async def next(self, rt: RealtimeClient | None, *, busy: bool) -> None:
        """Ask `rt` for the next line, unless a response is in progress or one was asked for."""
        if rt is None or not self.lines or self.sent is not None or busy:
            return
        say = self.sent = self.lines.popleft()
        try:
            await rt.respond(SAY_INSTRUCTIONS.format(text=say.text))
        except Exception as exc:  # the reader sees the drop; the line is asked again after it
            log.debug("realtime response.create failed: %s", exc)
