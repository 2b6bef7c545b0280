"""Twilio's end of one Media Streams connection, apart from the socket: playback clock, mark echoes.

The one fake phone of the project: the sandbox carrier (`media.MediaStream`: an aiohttp socket),
the bench's caller (`bench/caller.py`) and the tests (an in-process socket, or a pipeline playing
straight into it) are this class with a way to send text.

App -> phone: `media` (queued for playback), `mark`, `clear` (`receive` parses a message; the
`app_*` methods take one already parsed). Phone -> app: `connected` + `start` (`opening`), the
caller's `media` every 20 ms, `mark` echoes, `dtmf`, `stop`.

Playback model: the app's audio plays at real time in arrival order, one 20 ms frame per `tick`;
a mark is echoed once the audio queued before it has played (at once if nothing is queued);
`clear` drops the unplayed audio and echoes every pending mark. What plays is what the person at
the phone hears (`Person.hear`). `pace` ticks on absolute deadlines (t0 + n * 20 ms) of `clock`
so timestamps never drift and late ticks catch up; a test on a fake clock calls `tick` itself.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)
FRAME_BYTES = 160
FRAME_S = 0.020
SILENCE_FRAME = b"\xff" * FRAME_BYTES
# A media frame handed to the socket later than this after its deadline is listed in the stats.
LATE_SEND_MS = 1.0
MAX_LATE_SENDS = 20_000  # ~7 minutes of every frame late
# Twilio error codes recorded for what the app does wrong (see twilio.com/docs/api/errors).
MALFORMED_MESSAGE = 31924


class Person(Protocol):
    """Who is at the phone; called from the tick, so it must be quick."""

    def next_frame(self) -> bytes | None:
        """The next 20 ms this person says (160 bytes), or None for silence."""

    def hear(self, frame: bytes | None) -> None:
        """The 20 ms that just played to this person (None: nothing was queued)."""

    def on_clear(self) -> None: ...


class Silent:
    """A person who says nothing and keeps nothing of what they hear."""

    def next_frame(self) -> bytes | None:
        return None

    def hear(self, frame: bytes | None) -> None:
        pass

    def on_clear(self) -> None:
        pass


@dataclass(frozen=True)
class StreamError:
    code: int
    message: str


class _Mark(str):
    """A mark's name inside the playback queue (audio items are bytes)."""


class Playback:
    """The outbound buffer of one stream: audio and marks in arrival order."""

    def __init__(self) -> None:
        self._items: deque[bytes | _Mark] = deque()
        self._offset = 0  # bytes of the head audio item already played
        self.queued = 0  # unplayed audio bytes

    @property
    def idle(self) -> bool:
        """Nothing left to play and no mark waiting for its echo."""
        return not self._items

    def push(self, audio: bytes) -> None:
        if audio:
            self._items.append(audio)
            self.queued += len(audio)

    def mark(self, name: str) -> bool:
        """Queue a mark; True when nothing is queued before it (echo it now)."""
        if not self._items:
            return True
        self._items.append(_Mark(name))
        return False

    def clear(self) -> list[str]:
        """Drop unplayed audio; returns every pending mark, in order (all are echoed)."""
        marks = [str(item) for item in self._items if isinstance(item, _Mark)]
        self._items.clear()
        self._offset = self.queued = 0
        return marks

    def play(self) -> tuple[bytes | None, list[str]]:
        """Advance 20 ms: the frame that played (None if nothing was queued) and the marks whose
        audio has now fully played."""
        items = self._items
        marks: list[str] = []
        played = None
        if self.queued:
            parts: list[bytes] = []
            need = FRAME_BYTES
            while need and items:
                head = items[0]
                if isinstance(head, _Mark):  # its audio played earlier in this frame
                    marks.append(str(items.popleft()))
                    continue
                piece = head[self._offset : self._offset + need]
                parts.append(piece)
                need -= len(piece)
                self._offset += len(piece)
                if self._offset >= len(head):
                    items.popleft()
                    self._offset = 0
            played = b"".join(parts)
            self.queued -= len(played)
            if len(played) < FRAME_BYTES:
                played += SILENCE_FRAME[len(played) :]
        while items and isinstance(items[0], _Mark):
            marks.append(str(items.popleft()))
        return played, marks


@dataclass
class StreamStats:
    frames_sent: int = 0
    frames_played: int = 0  # ticks in which app audio played
    media_received: int = 0  # media messages from the app
    frames_received: int = 0  # the 20 ms frames they held
    marks_echoed: int = 0
    clears: int = 0
    dtmf_sent: int = 0
    late_ticks: int = 0  # ticks more than one frame behind their deadline
    max_lag_ms: float = 0.0
    # Each media frame handed to the socket more than LATE_SEND_MS after it was due: its timestamp
    # (ms) and how late (ms), the first MAX_LATE_SENDS of them (plain lists of numbers, which the
    # garbage collector does not walk); a load test takes the carrier's own lateness out of the
    # lag it measures at the app.
    late_sent_ts: list[int] = field(default_factory=list)
    late_sent_ms: list[float] = field(default_factory=list)
    late_sent_unlisted: int = 0  # late beyond MAX_LATE_SENDS
    marks: list[str] = field(default_factory=list)  # echoed, in order

    def sent(self, timestamp_ms: int, late_ms: float) -> None:
        """A media frame handed to the socket `late_ms` after it was due (one measure for the
        lateness figures: a tick whose sleep overran counts as much as one that woke up late)."""
        self.frames_sent += 1
        self.max_lag_ms = max(self.max_lag_ms, late_ms)
        if late_ms > FRAME_S * 1000:
            self.late_ticks += 1
        if late_ms > LATE_SEND_MS:
            if len(self.late_sent_ts) < MAX_LATE_SENDS:
                self.late_sent_ts.append(timestamp_ms)
                self.late_sent_ms.append(round(late_ms, 2))
            else:
                self.late_sent_unlisted += 1


class Phone:
    """The carrier's end of one media stream. Subclasses say how text reaches the app (`_send`).

    `inbound`: each tick sends the person's next frame (silence when they say nothing), as a live
    line does; without it only `send_audio` sends the caller's audio (a test's burst). `clock`:
    the seconds `pace` keeps time on and lateness is measured against (the loop's by default).
    """

    def __init__(
        self,
        person: Person | None = None,
        *,
        stream_sid: str = "",
        inbound: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.party: Person = person if person is not None else Silent()
        self.stream_sid = stream_sid or "MZ" + secrets.token_hex(16)
        self.inbound = inbound
        self.clock = clock
        self.playback = Playback()
        self.stats = StreamStats()
        self.errors: list[StreamError] = []
        self.due = 0.0  # the deadline of the tick running (or last run)
        self._seq = 0
        self._chunk = 0
        self._ticks = 0
        self._silence_b64 = base64.b64encode(SILENCE_FRAME).decode("ascii")

    # --- the wire -----------------------------------------------------------------------------
    async def _send(self, text: str) -> bool:
        """Hand one text message to the app; False once the line is gone."""
        raise NotImplementedError

    def now(self) -> float:
        return self.clock() if self.clock is not None else asyncio.get_running_loop().time()

    # --- phone -> app -------------------------------------------------------------------------
    def _message(self, event: str, **body: object) -> str:
        self._seq += 1
        return json.dumps(
            {"event": event, "sequenceNumber": str(self._seq), "streamSid": self.stream_sid, **body}
        )

    def opening(
        self,
        params: dict[str, str],
        *,
        call_sid: str,
        account_sid: str,
        tracks: tuple[str, ...] = ("inbound",),
    ) -> list[str]:
        """`connected` and `start`, the first two messages of a stream."""
        start = {
            "streamSid": self.stream_sid,
            "accountSid": account_sid,
            "callSid": call_sid,
            "tracks": list(tracks),
            "customParameters": dict(params),
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        return [
            json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
            self._message("start", start=start),
        ]

    async def send_audio(self, frame: bytes, timestamp_ms: int | None = None) -> bool:
        """One `media` message of the caller's audio (its timestamp: the tick's by default)."""
        payload = base64.b64encode(frame).decode("ascii") if frame else self._silence_b64
        self._seq += 1
        self._chunk += 1
        ts = self._ticks * 20 if timestamp_ms is None else timestamp_ms
        return await self._send(
            f'{{"event":"media","sequenceNumber":"{self._seq}","streamSid":"{self.stream_sid}",'
            f'"media":{{"track":"inbound","chunk":"{self._chunk}",'
            f'"timestamp":"{ts}","payload":"{payload}"}}}}'
        )

    async def send_dtmf(self, digit: str) -> None:
        await self._send(self._message("dtmf", dtmf={"track": "inbound_track", "digit": digit}))
        self.stats.dtmf_sent += 1

    def stop_message(self, *, call_sid: str, account_sid: str) -> str:
        return self._message("stop", stop={"accountSid": account_sid, "callSid": call_sid})

    async def echo_mark(self, name: str) -> None:
        """The app's mark comes back: its audio has played (or was cleared)."""
        await self._send(self._message("mark", mark={"name": name}))
        self.stats.marks_echoed += 1
        self.stats.marks.append(name)

    # --- the clock ----------------------------------------------------------------------------
    async def pace(self) -> None:
        """Tick every 20 ms on absolute deadlines until the line is gone (or the task is
        cancelled)."""
        t0 = self.now()
        n = 0
        while True:
            deadline = t0 + n * FRAME_S
            delay = deadline - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            if not await self.tick(deadline):
                return
            n += 1

    async def tick(self, deadline: float | None = None) -> bool:
        """One 20 ms step: the person's frame goes out (when `inbound`), 20 ms of the app's
        audio plays to them, marks whose audio has now played are echoed. False: the line is
        gone."""
        self.due = self.now() if deadline is None else deadline
        if self.inbound:
            frame = self.party.next_frame()
            ts = self._ticks * 20
            # as the frame is handed over: a send held back by the app not reading is the app's
            late_ms = (self.now() - self.due) * 1000
            if not await self.send_audio(frame or b"", ts):
                return False
            self.media_sent(frame, ts, late_ms)
        played, marks = self.playback.play()
        if played is not None:
            self.stats.frames_played += 1
        self.party.hear(played)
        for name in marks:
            await self.echo_mark(name)
        self._ticks += 1
        return True

    def media_sent(self, frame: bytes | None, timestamp_ms: int, late_ms: float) -> None:
        """A tick's frame went out `late_ms` after `self.due` (frame None: silence)."""
        self.stats.sent(timestamp_ms, late_ms)

    # --- app -> phone -------------------------------------------------------------------------
    @property
    def accepting(self) -> bool:
        """False once the phone has hung up: what the app still sends is dropped."""
        return True

    async def receive(self, text: str) -> None:
        """One text message from the app: checked as Twilio checks it, errors recorded."""
        try:
            data = json.loads(text)
        except ValueError:
            self.error(MALFORMED_MESSAGE, f"malformed JSON: {text[:80]!r}")
            return
        event = data.get("event") if isinstance(data, dict) else None
        if event not in ("media", "mark", "clear"):
            self.error(MALFORMED_MESSAGE, f"unexpected event {event!r}")
            return
        if data.get("streamSid") != self.stream_sid:
            self.error(
                MALFORMED_MESSAGE, f"{event} for unknown streamSid {data.get('streamSid')!r}"
            )
            return
        if not self.accepting:
            return
        if event == "media":
            media = data.get("media")
            payload = media.get("payload") if isinstance(media, dict) else None
            try:
                audio = (
                    base64.b64decode(payload, validate=True) if isinstance(payload, str) else None
                )
            except (binascii.Error, ValueError):
                audio = None
            if audio is None:
                self.error(MALFORMED_MESSAGE, "media without a base64 payload")
                return
            await self.app_media(audio)
        elif event == "mark":
            mark = data.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str) or not name:
                self.error(MALFORMED_MESSAGE, "mark without a name")
                return
            await self.app_mark(name)
        else:
            await self.app_clear()

    async def app_media(self, audio: bytes) -> None:
        self.stats.media_received += 1
        self.stats.frames_received += len(audio) // FRAME_BYTES
        self.playback.push(audio)

    async def app_mark(self, name: str) -> None:
        if self.playback.mark(name):
            await self.echo_mark(name)

    async def app_clear(self) -> None:
        self.stats.clears += 1
        released = self.playback.clear()
        self.party.on_clear()
        for name in released:
            await self.echo_mark(name)

    def error(self, code: int, message: str) -> None:
        if len(self.errors) < 100:
            self.errors.append(StreamError(code, message))
        log.warning("stream %s: error %s: %s", self.stream_sid, code, message)
