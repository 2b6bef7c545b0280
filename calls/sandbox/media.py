"""The carrier's side of one `<Connect><Stream>`: a Media Streams WebSocket spoken as Twilio does.

Twilio -> app: `connected`, `start`, `media` (160 bytes of the callee every 20 ms, at real time),
`mark` echoes, `dtmf`, `stop`. App -> Twilio: `media` (queued for playback), `mark`, `clear`.

Playback model: the app's audio plays at real time in arrival order; a mark is echoed once the
audio queued before it has played; `clear` drops the unplayed audio and echoes every pending mark.
What plays is what the callee hears (`Party.hear`), one 20 ms frame per tick, like the line.

One pacing task per stream sleeps to absolute deadlines (t0 + n * 20 ms) on the loop's clock, so
timestamps never drift and late ticks catch up; a reader task handles what the app sends.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from twilio.request_validator import RequestValidator
from yarl import URL

log = logging.getLogger(__name__)
FRAME_BYTES = 160
FRAME_S = 0.020
SILENCE_FRAME = b"\xff" * FRAME_BYTES
# A media frame handed to the socket later than this after its deadline is listed in the stats.
LATE_SEND_MS = 1.0
MAX_LATE_SENDS = 20_000  # ~7 minutes of every frame late
# Twilio error codes recorded for what the app does wrong (see twilio.com/docs/api/errors).
HANDSHAKE_ERROR = 31920
INVALID_URL = 31922
MALFORMED_MESSAGE = 31924
BINARY_MESSAGE = 31950
CONNECT_TIMEOUT_S = 10.0


class Party(Protocol):
    """The callee end of the line; called from the stream's pacing task, so it must be quick."""

    def next_frame(self) -> bytes | None:
        """The next 20 ms the callee says (160 bytes), or None for silence."""

    def hear(self, frame: bytes | None) -> None:
        """The 20 ms that just played to the callee (None: nothing was queued)."""

    def on_clear(self) -> None: ...

    def stream_started(self, stream: MediaStream) -> None: ...

    def stream_ended(self, stream: MediaStream) -> None: ...


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


class MediaStream:
    """Connects to `url`, speaks the protocol until the app closes or `stop()` is called.

    `run()` returns how it ended: "app" (the app closed the socket), "carrier" (we sent `stop`),
    or "failed" (no connection; see `errors`).
    """

    def __init__(
        self,
        *,
        url: str,
        params: dict[str, str],
        call_sid: str,
        account_sid: str,
        auth_token: str,
        party: Party,
        session: aiohttp.ClientSession,
        tracks: tuple[str, ...] = ("inbound",),
    ) -> None:
        self.url = url
        self.params = dict(params)
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.party = party
        self.session = session
        self.tracks = tracks
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.playback = Playback()
        self.stats = StreamStats()
        self.errors: list[StreamError] = []
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.ended_by = ""
        self._seq = 0
        self._chunk = 0
        self._pacer: asyncio.Task | None = None
        self._stopping = False
        self._started = False
        self._closed = asyncio.Event()

    # --- life cycle ---------------------------------------------------------------------------
    async def run(self) -> str:
        if not self._valid_url():
            self.ended_by = "failed"
            self._closed.set()
            return self.ended_by
        try:
            self.ws = await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT_S)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._error(HANDSHAKE_ERROR, f"WebSocket handshake with {self.url} failed: {exc}")
            self.ended_by = "failed"
            self._closed.set()
            return self.ended_by
        try:
            await self._send(
                json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            )
            await self._send(self._start_message())
            self._started = True
            self.party.stream_started(self)
            self._pacer = asyncio.get_running_loop().create_task(self._pace())
            await self._read()
        finally:
            await self._halt_pacer()
            if self._started:
                self.party.stream_ended(self)
                self._started = False
            self.ended_by = self.ended_by or ("carrier" if self._stopping else "app")
            if not self._stopping:
                self._closed.set()
        return self.ended_by

    async def stop(self) -> None:
        """End the stream from the carrier's side: `stop`, then close (as on a hang-up)."""
        if self._stopping or self.ws is None:
            return
        self._stopping = True
        self.ended_by = "carrier"
        await self._halt_pacer()
        if not self.ws.closed:
            self._seq += 1
            stop = {"accountSid": self.account_sid, "callSid": self.call_sid}
            await self._send(
                json.dumps(
                    {
                        "event": "stop",
                        "sequenceNumber": str(self._seq),
                        "streamSid": self.stream_sid,
                        "stop": stop,
                    }
                )
            )
            with contextlib.suppress(Exception):
                await self.ws.close()
        self._closed.set()

    async def closed(self) -> None:
        await self._closed.wait()

    @property
    def active(self) -> bool:
        return self._started and not self._stopping

    async def send_dtmf(self, digit: str) -> None:
        if not self.active:
            return
        self._seq += 1
        await self._send(
            json.dumps(
                {
                    "event": "dtmf",
                    "streamSid": self.stream_sid,
                    "sequenceNumber": str(self._seq),
                    "dtmf": {"track": "inbound_track", "digit": digit},
                }
            )
        )
        self.stats.dtmf_sent += 1

    # --- internals ----------------------------------------------------------------------------
    def _valid_url(self) -> bool:
        parts = URL(self.url)
        if parts.scheme not in ("ws", "wss") or not parts.host:
            self._error(INVALID_URL, f"Stream url must be ws:// or wss://, got {self.url!r}")
            return False
        if parts.query_string:
            self._error(INVALID_URL, "Stream url must not have a query string; use <Parameter>")
            return False
        return True

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        signature = RequestValidator(self.auth_token).compute_signature(self.url, {})
        return await self.session.ws_connect(
            self.url,
            headers={"X-Twilio-Signature": signature},
            autoping=True,
            heartbeat=None,
            timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
        )

    def _start_message(self) -> str:
        self._seq += 1
        start = {
            "streamSid": self.stream_sid,
            "accountSid": self.account_sid,
            "callSid": self.call_sid,
            "tracks": list(self.tracks),
            "customParameters": self.params,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        return json.dumps(
            {
                "event": "start",
                "sequenceNumber": str(self._seq),
                "streamSid": self.stream_sid,
                "start": start,
            }
        )

    def _error(self, code: int, message: str) -> None:
        if len(self.errors) < 100:
            self.errors.append(StreamError(code, message))
        log.warning("stream %s: error %s: %s", self.stream_sid, code, message)

    async def _send(self, text: str) -> bool:
        ws = self.ws
        if ws is None or ws.closed:
            return False
        try:
            await ws.send_str(text)
        except (ConnectionError, aiohttp.ClientError, RuntimeError):
            return False
        return True

    async def _halt_pacer(self) -> None:
        pacer, self._pacer = self._pacer, None
        if pacer is not None and pacer is not asyncio.current_task():
            pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pacer

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        stats = self.stats
        sid = self.stream_sid
        silence_b64 = base64.b64encode(SILENCE_FRAME).decode("ascii")
        t0 = loop.time()
        n = 0
        while True:
            deadline = t0 + n * FRAME_S
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = self.party.next_frame()
            payload = base64.b64encode(frame).decode("ascii") if frame else silence_b64
            self._seq += 1
            self._chunk += 1
            # as the frame is handed over: a send held back by the app not reading is the app's
            late_ms = (loop.time() - deadline) * 1000
            sent = await self._send(
                f'{{"event":"media","sequenceNumber":"{self._seq}","streamSid":"{sid}",'
                f'"media":{{"track":"inbound","chunk":"{self._chunk}",'
                f'"timestamp":"{n * 20}","payload":"{payload}"}}}}'
            )
            if not sent:
                return
            stats.sent(n * 20, late_ms)
            played, marks = self.playback.play()
            if played is not None:
                stats.frames_played += 1
            self.party.hear(played)
            for name in marks:
                await self._echo_mark(name)
            n += 1

    async def _echo_mark(self, name: str) -> None:
        self._seq += 1
        await self._send(
            json.dumps(
                {
                    "event": "mark",
                    "sequenceNumber": str(self._seq),
                    "streamSid": self.stream_sid,
                    "mark": {"name": name},
                }
            )
        )
        self.stats.marks_echoed += 1
        self.stats.marks.append(name)

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await self._on_text(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self._error(BINARY_MESSAGE, "binary frame received; only text frames are allowed")
            elif msg.type == aiohttp.WSMsgType.ERROR:
                break

    async def _on_text(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            self._error(MALFORMED_MESSAGE, f"malformed JSON: {text[:80]!r}")
            return
        event = data.get("event") if isinstance(data, dict) else None
        if event not in ("media", "mark", "clear"):
            self._error(MALFORMED_MESSAGE, f"unexpected event {event!r}")
            return
        if data.get("streamSid") != self.stream_sid:
            self._error(
                MALFORMED_MESSAGE, f"{event} for unknown streamSid {data.get('streamSid')!r}"
            )
            return
        if self._stopping:
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
                self._error(MALFORMED_MESSAGE, "media without a base64 payload")
                return
            self.stats.media_received += 1
            self.stats.frames_received += len(audio) // FRAME_BYTES
            self.playback.push(audio)
        elif event == "mark":
            mark = data.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str) or not name:
                self._error(MALFORMED_MESSAGE, "mark without a name")
                return
            if self.playback.mark(name):
                await self._echo_mark(name)
        else:
            self.stats.clears += 1
            released = self.playback.clear()
            self.party.on_clear()
            for name in released:
                await self._echo_mark(name)
