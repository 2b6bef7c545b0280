"""The carrier's side of one `<Connect><Stream>`: the fake phone (`phone.Phone`) on an aiohttp socket.

Twilio -> app: `connected`, `start`, `media` (160 bytes of the callee every 20 ms, at real time),
`mark` echoes, `dtmf`, `stop`. App -> Twilio: `media` (queued for playback), `mark`, `clear`.
The playback model and the pacing are the phone's; this module connects (signed, as Twilio
does), reads what the app sends, and ends the stream from either side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import aiohttp
from twilio.request_validator import RequestValidator
from yarl import URL

from calls.sandbox.phone import (
    FRAME_BYTES,
    FRAME_S,
    SILENCE_FRAME,
    Person,
    Phone,
    Playback,
    StreamError,
    StreamStats,
)

__all__ = [
    "FRAME_BYTES",
    "FRAME_S",
    "SILENCE_FRAME",
    "MediaStream",
    "Party",
    "Playback",
    "StreamError",
    "StreamStats",
]

log = logging.getLogger(__name__)
# Twilio error codes recorded for what the app does wrong (see twilio.com/docs/api/errors).
HANDSHAKE_ERROR = 31920
INVALID_URL = 31922
BINARY_MESSAGE = 31950
CONNECT_TIMEOUT_S = 10.0


class Party(Person, Protocol):
    """The callee end of the line: a `phone.Person` told when each of its streams starts and
    ends."""

    def stream_started(self, stream: MediaStream) -> None: ...

    def stream_ended(self, stream: MediaStream) -> None: ...


class MediaStream(Phone):
    """Connects to `url`, speaks the protocol until the app closes or `stop()` is called.

    `run()` returns how it ended: "app" (the app closed the socket), "carrier" (we sent `stop`),
    or "failed" (no connection; see `errors`).
    """

    party: Party

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
        stream_sid: str = "",
    ) -> None:
        super().__init__(party, stream_sid=stream_sid)
        self.url = url
        self.params = dict(params)
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.session = session
        self.tracks = tracks
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.ended_by = ""
        self.start_sent_at = 0.0  # loop time, once `start` is sent
        self._pacer: asyncio.Task | None = None
        self._stopping = False
        self._started = False
        self._closed = asyncio.Event()
        self._read_done = asyncio.Event()

    # --- life cycle ---------------------------------------------------------------------------
    async def run(self) -> str:
        if not self._valid_url():
            self.ended_by = "failed"
            self._closed.set()
            return self.ended_by
        try:
            self.ws = await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT_S)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.error(HANDSHAKE_ERROR, f"WebSocket handshake with {self.url} failed: {exc}")
            self.ended_by = "failed"
            self._closed.set()
            return self.ended_by
        try:
            opening = self.opening(
                self.params, call_sid=self.call_sid, account_sid=self.account_sid,
                tracks=self.tracks,
            )  # fmt: skip
            for text in opening:
                await self._send(text)
            self.start_sent_at = self.now()
            self._started = True
            self.party.stream_started(self)
            self._pacer = asyncio.get_running_loop().create_task(self.pace())
            await self._read()
        finally:
            self._read_done.set()
            await self._halt_pacer()
            if self._started:
                self.party.stream_ended(self)
                self._started = False
            self.ended_by = self.ended_by or ("carrier" if self._stopping else "app")
            if not self._stopping:
                self._closed.set()
        return self.ended_by

    async def stop(self, *, linger: float = 0.0) -> None:
        """End the stream from the carrier's side: `stop`, then close (as on a hang-up); with
        `linger`, first wait up to that many seconds for the app to close its end."""
        if self._stopping or self.ws is None:
            return
        self._stopping = True
        self.ended_by = "carrier"
        await self._halt_pacer()
        if not self.ws.closed:
            await self._send(
                self.stop_message(call_sid=self.call_sid, account_sid=self.account_sid)
            )
            if linger > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._read_done.wait(), linger)
            with contextlib.suppress(Exception):
                await self.ws.close()
        self._closed.set()

    async def closed(self) -> None:
        await self._closed.wait()

    @property
    def active(self) -> bool:
        return self._started and not self._stopping

    @property
    def accepting(self) -> bool:
        return not self._stopping

    async def send_dtmf(self, digit: str) -> None:
        if self.active:
            await super().send_dtmf(digit)

    # --- internals ----------------------------------------------------------------------------
    def _valid_url(self) -> bool:
        parts = URL(self.url)
        if parts.scheme not in ("ws", "wss") or not parts.host:
            self.error(INVALID_URL, f"Stream url must be ws:// or wss://, got {self.url!r}")
            return False
        if parts.query_string:
            self.error(INVALID_URL, "Stream url must not have a query string; use <Parameter>")
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

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await self.receive(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self.error(BINARY_MESSAGE, "binary frame received; only text frames are allowed")
            elif msg.type == aiohttp.WSMsgType.ERROR:
                break
