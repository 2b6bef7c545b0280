"""Shared emulator plumbing: an aiohttp server on an ephemeral port, fault knobs, synthetic audio.

API (reused by every emulator in this package):

    srv = EmulatorServer(app, host="127.0.0.1", port=0)   # port=0 picks a free port
    async with srv:                      # or: await srv.start() ... await srv.close()
        srv.port, srv.base_url, srv.ws_url   # "http://127.0.0.1:PORT", "ws://127.0.0.1:PORT"
    srv.start_in_thread(); ...; srv.stop()   # for sync callers: own loop in a daemon thread
    srv.loop                              # the loop the app runs on (thread mode: the thread's)

    app = new_app()                       # web.Application that closes tracked sockets on shutdown
    with track_ws(request, ws): ...       # track a prepared WebSocketResponse while it is served

    f = Faults(latency_ms=200, status=503, drop_after_messages=10, drop_after_s=1.5,
               hang=False, times=1)       # times: how many requests/sockets it hits (None = all)
    active = f.take()                     # per request: the faults to apply now (maybe Faults())
    early = await active.gate(error_body) # sleeps latency, hangs, or returns the error Response
    abort(request)                        # cut the TCP connection (a "drop")
    await stream_chunks(request, resp, audio, size=320, chunk_ms=40, realtime_factor=0.0,
                        faults=active, record=rec)   # chunked body; drop faults; rec.bytes_sent

    mulaw_encode(pcm_int16) -> bytes; mulaw_decode(bytes) -> int16 array (G.711, tiny and local)
    speech_like(ms, seed=0) -> mu-law bytes that any energy VAD calls speech
    silence(ms) -> mu-law bytes (0xFF)
    text_audio(text, ms_per_char=67) -> speech_like audio whose length follows the text
    rms(mulaw_bytes) -> float (int16 scale)
    run_cli(app, host, port, name)        # blocking; prints "<name> listening on <url>" first
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import socket
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import web

SAMPLE_RATE = 8000
OPEN_SOCKETS = web.AppKey("open_sockets", set)


@dataclass
class Faults:
    """Injected misbehaviour for one endpoint; what a "message" is depends on the endpoint."""

    latency_ms: float = 0.0  # delay before answering (HTTP headers or WebSocket handshake)
    status: int | None = None  # answer with this HTTP status (before any upgrade)
    drop_after_messages: int | None = None  # cut the socket after this many messages
    drop_after_s: float | None = None  # cut the socket this long after it opened
    hang: bool = False  # accept the TCP connection and never answer
    times: int | None = None  # requests/sockets affected; None means every one

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def take(self) -> Faults:
        """The faults for the request starting now; counts one use against `times`."""
        with self._lock:
            if self.times is not None:
                if self.times <= 0:
                    return Faults()
                self.times -= 1
            active = copy.copy(self)
        active.times = None
        active._lock = threading.Lock()
        return active

    async def gate(self, error_body: Any = None) -> web.StreamResponse | None:
        """Apply latency / hang / status; a returned response must be sent instead."""
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000)
        if self.hang:
            await asyncio.Event().wait()
        if self.status is not None:
            body = error_body if error_body is not None else {"error": f"injected {self.status}"}
            return web.json_response(body, status=self.status)
        return None


def abort(request: web.BaseRequest) -> None:
    """Cut the connection without a close frame or a complete HTTP body."""
    if request.transport is not None:
        request.transport.abort()


async def stream_chunks(
    request: web.Request,
    resp: web.StreamResponse,
    audio: bytes,
    *,
    size: int,
    chunk_ms: int,
    realtime_factor: float,
    faults: Faults,
    record: Any,
) -> None:
    """Write audio in `size`-byte chunks (paced if realtime_factor > 0), honouring drop faults.

    A "message" for `drop_after_messages` is one chunk; `record.bytes_sent` is incremented.
    """
    opened = time.monotonic()
    for n, i in enumerate(range(0, len(audio), size), start=1):
        await resp.write(audio[i : i + size])
        record.bytes_sent += len(audio[i : i + size])
        dropped = faults.drop_after_messages is not None and n >= faults.drop_after_messages
        late = faults.drop_after_s is not None and time.monotonic() - opened >= faults.drop_after_s
        if (dropped or late) and i + size < len(audio):
            abort(request)
            return
        if realtime_factor > 0:
            await asyncio.sleep(chunk_ms / 1000 / realtime_factor)
    await resp.write_eof()


def new_app() -> web.Application:
    app = web.Application()
    app[OPEN_SOCKETS] = set()

    async def close_sockets(app: web.Application) -> None:
        for ws in list(app[OPEN_SOCKETS]):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=1001, message=b"server shutdown"), 0.5)

    app.on_shutdown.append(close_sockets)
    return app


@contextlib.contextmanager
def track_ws(request: web.Request, ws: web.WebSocketResponse):
    sockets = request.app[OPEN_SOCKETS]
    sockets.add(ws)
    try:
        yield ws
    finally:
        sockets.discard(ws)


class EmulatorServer:
    """Runs one aiohttp app on host:port (0 = ephemeral), in the current loop or a thread."""

    def __init__(self, app: web.Application, *, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self.host = host
        self._want_port = port
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> EmulatorServer:
        self.loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._want_port))
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=0.25)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> EmulatorServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start_in_thread(self, timeout: float = 10.0) -> EmulatorServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="emulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("emulator did not start")
        if failure:
            raise failure[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None or self.loop is None:
            return
        loop = self.loop
        asyncio.run_coroutine_threadsafe(self.close(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout)
        self._thread = None


def run_cli(app: web.Application, *, host: str, port: int, name: str) -> None:
    """Serve until interrupted; prints the bound URL first (flushed) so parents can wait on it."""

    async def main() -> None:
        async with EmulatorServer(app, host=host, port=port) as srv:
            print(f"{name} listening on {srv.base_url}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# --- synthetic audio (G.711 mu-law); local on purpose so the emulators never share the
# --- codec under test in calls/core/audio.py

_BIAS = 0x84


def mulaw_encode(pcm: np.ndarray) -> bytes:
    """G.711 mu-law of int16 samples, bit-exact with the classic g711.c (14-bit input)."""
    v = np.asarray(pcm, dtype=np.int32) >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    mag = np.minimum(np.minimum(np.abs(v), 8159) + (_BIAS >> 2), 0x1FFF)
    seg = np.clip(np.floor(np.log2(mag)).astype(np.int32) - 5, 0, 7)
    mantissa = (mag >> (seg + 1)) & 0x0F
    return (((seg << 4) | mantissa) ^ mask).astype(np.uint8).tobytes()


def _decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    mag = (((u & 0x0F) << 3) + _BIAS) << ((u >> 4) & 0x07)
    return np.where(u & 0x80, _BIAS - mag, mag - _BIAS).astype(np.int16)


_DECODE = _decode_table()


def mulaw_decode(data: bytes) -> np.ndarray:
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def rms(mulaw: bytes) -> float:
    if not mulaw:
        return 0.0
    pcm = mulaw_decode(mulaw).astype(np.float64)
    return float(np.sqrt(np.mean(pcm * pcm)))


def silence(ms: int) -> bytes:
    return b"\xff" * (SAMPLE_RATE * ms // 1000)


def speech_like(ms: int, *, seed: int = 0, level: float = 0.25) -> bytes:
    """Voiced-sounding audio: harmonics of a wandering pitch, syllable-rate amplitude, some noise.

    The envelope never falls below 60% so every 20 ms frame stays far above an energy threshold.
    """
    n = SAMPLE_RATE * ms // 1000
    if n <= 0:
        return b""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SAMPLE_RATE
    f0 = 120 + 60 * rng.random() + 15 * np.sin(2 * np.pi * 0.7 * t + rng.random() * 6)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in (1, 2, 3, 4))
    envelope = 0.8 + 0.2 * np.sin(2 * np.pi * 4 * t + rng.random() * 6)
    signal = voice / 2.1 * envelope + 0.05 * rng.standard_normal(n)
    return mulaw_encode(np.clip(signal * level * 32767, -32768, 32767))


def text_audio(text: str, *, ms_per_char: float = 67.0) -> bytes:
    """Deterministic speech-like audio whose length grows with the text (20 ms granularity)."""
    if not text.strip():
        return b""
    ms = max(20, round(len(text) * ms_per_char / 20) * 20)
    return speech_like(ms, seed=zlib.crc32(text.encode()))
