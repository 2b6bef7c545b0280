"""A Twilio-like caller on a real WebSocket: the sandbox's fake phone, timed at the caller's end.

The phone (`calls.sandbox.media.MediaStream`, `calls.sandbox.phone.Phone`) sends a media frame
every 20 ms on an absolute schedule, silence unless the caller is speaking, plays agent audio on
its playback clock and echoes each mark once the audio before it has played (at once on
`clear`). A frame sent at time t carries the audio of [t - 20 ms, t], so the end of the caller's
speech is the scheduled send time of its last speech frame. All times are `time.monotonic()` (the
loop's clock), the clock the server's pipeline also uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field

import aiohttp

from calls.sandbox.media import FRAME_BYTES, MediaStream


@dataclass
class TurnTiming:
    speech_end: float  # monotonic: end of the caller's last speech frame
    speech_end_wall: float  # the same instant on the wall clock (time.time())
    send_lag_ms: float  # how late the last speech frame actually went out (client jitter)
    first_reply_frame: float | None = None  # monotonic arrival of the reply's first media frame

    @property
    def voice_to_voice_ms(self) -> float | None:
        if self.first_reply_frame is None:
            return None
        return (self.first_reply_frame - self.speech_end) * 1000


@dataclass
class CallTiming:
    greeting_first_frame_ms: float | None = None  # `start` sent -> first media frame arrived
    greeting_warm_ms: float | None = None  # the bench's pre-synthesis request, when made
    turns: list[TurnTiming] = field(default_factory=list)
    media_in: int = 0
    marks_echoed: int = 0
    clears: int = 0


class _Stream(MediaStream):
    """The phone, telling the caller when its last speech frame went out and when media
    arrives."""

    def __init__(self, caller: TwilioCaller, **kw) -> None:
        super().__init__(party=caller, **kw)
        self.caller = caller

    def media_sent(self, frame: bytes | None, timestamp_ms: int, late_ms: float) -> None:
        super().media_sent(frame, timestamp_ms, late_ms)
        if frame is not None:
            self.caller.frame_sent(self.due, late_ms)

    async def app_media(self, audio: bytes) -> None:
        self.caller.media_arrived(time.monotonic())
        await super().app_media(audio)


class TwilioCaller:
    """One call's media stream, seen from the carrier: connect, start, talk, listen, stop."""

    def __init__(
        self, url: str, params: dict[str, str], *, stream_sid: str, call_sid: str,
        account_sid: str, auth_token: str,
    ) -> None:  # fmt: skip
        """`account_sid` and `auth_token`: the server's, to sign the upgrade and start as Twilio."""
        self.url = url
        self.params = params
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.timing = CallTiming()
        self.stream: _Stream | None = None
        self._http: aiohttp.ClientSession | None = None
        self._run: asyncio.Task | None = None
        self._speech: deque[bytes] = deque()
        self._speech_done: asyncio.Future | None = None
        self._media_waiter: asyncio.Future | None = None
        self._last_media = 0.0
        self._wall0 = time.time() - time.monotonic()

    # --- life cycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect and send `connected` + `start`; media starts flowing at once, like Twilio's."""
        loop = asyncio.get_running_loop()
        self._media_waiter = loop.create_future()
        self._http = aiohttp.ClientSession()
        self.stream = _Stream(
            self, url=self.url, params=self.params, call_sid=self.call_sid,
            account_sid=self.account_sid, auth_token=self.auth_token, session=self._http,
            stream_sid=self.stream_sid,
        )  # fmt: skip
        self._run = loop.create_task(self.stream.run())
        waiting = asyncio.ensure_future(asyncio.shield(self._media_waiter))
        done, _ = await asyncio.wait(
            {waiting, self._run}, timeout=10, return_when="FIRST_COMPLETED"
        )
        if waiting not in done:
            waiting.cancel()
            raise TimeoutError(f"no greeting from {self.url}: {self.stream.errors}")
        first = waiting.result()
        self.timing.greeting_first_frame_ms = (first - self.stream.start_sent_at) * 1000

    async def stop(self) -> None:
        """`stop`, then wait (up to 10 s) for the server to close the socket once it has
        finalised the call."""
        if self.stream is None:
            return
        try:
            await self.stream.stop(linger=10)
            if self._run is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._run, 10)
        finally:
            stats = self.stream.stats
            self.timing.media_in = stats.media_received
            self.timing.marks_echoed = stats.marks_echoed
            self.timing.clears = stats.clears
            if self._http is not None:
                await self._http.close()

    # --- conversation ---------------------------------------------------------------------------
    async def wait_agent_done(self, *, quiet_s: float = 0.3, limit_s: float = 20.0) -> None:
        """Until the agent's audio has all played, every mark is echoed, and quiet_s passed."""
        deadline = time.monotonic() + limit_s
        while True:
            now = time.monotonic()
            if self.stream.playback.idle and now - self._last_media >= quiet_s:
                return
            if now > deadline:
                raise TimeoutError("the agent never stopped speaking")
            await asyncio.sleep(0.02)

    async def say(self, audio: bytes, *, reply_timeout: float = 10.0) -> TurnTiming:
        """Speak `audio` then fall silent; returns when the reply's first frame has arrived."""
        loop = asyncio.get_running_loop()
        self._speech_done = loop.create_future()
        self._media_waiter = loop.create_future()
        for i in range(0, len(audio), FRAME_BYTES):
            self._speech.append(audio[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff"))
        turn: TurnTiming = await self._speech_done
        self.timing.turns.append(turn)
        deadline = loop.time() + reply_timeout
        while True:  # agent audio that began before the speech ended is not this turn's reply
            try:
                arrival = await asyncio.wait_for(self._media_waiter, deadline - loop.time())
            except TimeoutError:
                return turn
            if arrival >= turn.speech_end:
                turn.first_reply_frame = arrival
                return turn
            self._media_waiter = loop.create_future()

    # --- the phone's person (calls.sandbox.media.Party) -----------------------------------------
    def next_frame(self) -> bytes | None:
        return self._speech.popleft() if self._speech else None

    def hear(self, frame: bytes | None) -> None:
        pass

    def on_clear(self) -> None:
        pass

    def stream_started(self, stream: MediaStream) -> None:
        pass

    def stream_ended(self, stream: MediaStream) -> None:
        pass

    # --- what the phone saw ---------------------------------------------------------------------
    def frame_sent(self, due: float, late_ms: float) -> None:
        """A speech frame went out at `due`; the last one ends the caller's speech."""
        done = self._speech_done
        if not self._speech and done is not None and not done.done():
            done.set_result(TurnTiming(due, self._wall0 + due, late_ms))

    def media_arrived(self, now: float) -> None:
        self._last_media = now
        if self._media_waiter is not None and not self._media_waiter.done():
            self._media_waiter.set_result(now)
