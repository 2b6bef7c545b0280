"""Deepgram live STT over deepgram-sdk 7: buffered sends, KeepAlive, reconnect with audio replay."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from calls.core import patches
from calls.providers.deepgram_client import (
    ApiError,
    AsyncDeepgramClient,
    deepgram_client,
    describe,
)
from calls.providers.stt.base import (
    SpeechStarted,
    STTError,
    STTEvent,
    STTOptions,
    STTProvider,
    STTSession,
    Transcript,
    UtteranceEnd,
)
from calls.providers.stt.send_buffer import SendBuffer

try:
    from deepgram.listen.v1.types import (
        ListenV1Error,
        ListenV1Results,
        ListenV1SpeechStarted,
        ListenV1UtteranceEnd,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "DeepgramSTT needs the Deepgram SDK: pip install deepgram-sdk==7.16.0"
    ) from exc

log = logging.getLogger(__name__)
patches.deepgram_listen_uncompressed()  # each 20 ms frame goes out as it is, not deflated

BYTES_PER_S = 8000  # 8 kHz mono mu-law
# Queued audio joined into one message (when the send loop fell behind) up to this size: 250 ms.
JOIN_MAX_BYTES = BYTES_PER_S // 4
_FINALIZE, _KEEPALIVE, _CLOSE = "Finalize", "KeepAlive", "CloseStream"


class DeepgramConnectError(ConnectionError):
    """The first connection of a session failed (`status` is the HTTP status, if any)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class DeepgramSTT(STTProvider):
    """Live `listen.v1` sessions; see DeepgramSTTSession for buffering and reconnect rules.

    `open` raises DeepgramConnectError (a ConnectionError; `.status` 401 for a bad key) when the
    first socket cannot be opened within `connect_timeout_s`. Extra keyword arguments become
    query parameters of every connection (e.g. `diarize=True`), as do `STTOptions.extra`.
    """

    name = "deepgram"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "",
        model: str = "nova-3",
        interim_results: bool = True,
        vad_events: bool = True,
        smart_format: bool = True,
        keepalive_s: float = 5.0,
        replay_s: float = 10.0,
        buffer_s: float = 5.0,
        chunk_ms: int = 100,
        max_reconnects: int = 5,
        backoff_s: float = 0.25,
        connect_timeout_s: float = 5.0,
        close_timeout_s: float = 3.0,
        **params: Any,
    ):
        self.api_key = api_key
        self.base_url = base_url
        self.model = model
        self.interim_results = interim_results
        self.vad_events = vad_events
        self.smart_format = smart_format
        self.session_kw = dict(
            keepalive_s=keepalive_s,
            replay_s=replay_s,
            buffer_s=buffer_s,
            chunk_bytes=chunk_ms * BYTES_PER_S // 1000,
            max_reconnects=max_reconnects,
            backoff_s=backoff_s,
            connect_timeout_s=connect_timeout_s,
            close_timeout_s=close_timeout_s,
        )
        self.params = params
        self._client: AsyncDeepgramClient | None = None

    def connect_kwargs(self, options: STTOptions) -> dict[str, Any]:
        model = options.model or self.model
        kw: dict[str, Any] = dict(
            model=model,
            encoding="mulaw",
            sample_rate=8000,
            channels=1,
            interim_results=self.interim_results,
            vad_events=self.vad_events,
            smart_format=self.smart_format,
            language=options.language,
            endpointing=options.endpointing_ms if options.endpointing_ms > 0 else "false",
        )
        if self.interim_results and options.utterance_end_ms > 0:
            kw["utterance_end_ms"] = options.utterance_end_ms
        if options.keywords:
            key = "keyterm" if model.startswith("nova-3") else "keywords"
            kw[key] = list(options.keywords)
        extra = {**self.params, **options.extra}
        if extra:
            kw["request_options"] = {"additional_query_parameters": extra}
        return kw

    async def open(self, options: STTOptions) -> DeepgramSTTSession:
        if self._client is None:
            self._client = deepgram_client(api_key=self.api_key, base_url=self.base_url)
        session = DeepgramSTTSession(self._client, self.connect_kwargs(options), **self.session_kw)
        await session.start()
        return session


class DeepgramSTTSession(STTSession):
    """One logical recognition stream that survives dropped sockets.

    `send` never waits on the network: audio goes to a SendBuffer, pending capped at `buffer_s`
    (the oldest audio is dropped past that and counted in `dropped_bytes`), with a replay ring
    holding the audio since the last final transcript (at most `replay_s`). When the socket
    drops, an `STTError(fatal=False)` is emitted, a new socket is opened and the ring is sent
    again before new audio; transcript times stay on the session's audio clock. After
    `max_reconnects` consecutive failures (a socket that lived under 2 s counts as one),
    or on HTTP 401/403, `STTError(fatal=True)` is emitted and the events end.
    """

    _STABLE_S = 2.0

    def __init__(
        self,
        client: AsyncDeepgramClient,
        connect_kwargs: dict[str, Any],
        *,
        keepalive_s: float,
        replay_s: float,
        buffer_s: float,
        chunk_bytes: int,
        max_reconnects: int,
        backoff_s: float,
        connect_timeout_s: float,
        close_timeout_s: float,
    ):
        self._client = client
        self._kw = connect_kwargs
        self.keepalive_s = keepalive_s
        self._buffer = SendBuffer(
            buffer_bytes=int(buffer_s * BYTES_PER_S),
            replay_bytes=int(replay_s * BYTES_PER_S),
            chunk_bytes=chunk_bytes,
            join_max_bytes=JOIN_MAX_BYTES,
        )
        self.max_reconnects = max_reconnects
        self.backoff_s = backoff_s
        self.connect_timeout_s = connect_timeout_s
        self.close_timeout_s = close_timeout_s
        self._events: asyncio.Queue[STTEvent | None] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._conn_base = 0  # session offset of the first byte on the current socket
        self._last_tx = time.monotonic()
        self._closing = False
        self._connected = False
        self._runner: asyncio.Task | None = None
        self.connections = 0

    @property
    def buffered_bytes(self) -> int:
        """Audio accepted by `send` and not yet written to a socket."""
        return self._buffer.pending_bytes

    @property
    def dropped_bytes(self) -> int:
        """Audio dropped because the pending buffer was full."""
        return self._buffer.dropped_bytes

    # --- STTSession --------------------------------------------------------------------------

    async def start(self) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._run(ready), name="deepgram-stt")
        await ready

    async def send(self, mulaw: bytes, *, urgent: bool = True) -> None:
        """Non-urgent audio (long silences) goes out in `chunk_ms` pieces: one websocket message
        per 20 ms frame costs a syscall each."""
        if self._closing or not mulaw or (self._runner and self._runner.done()):
            return
        if self._buffer.add(mulaw, urgent):
            self._wake.set()

    async def events(self) -> AsyncIterator[STTEvent]:
        while (event := await self._events.get()) is not None:
            yield event
        self._events.put_nowait(None)  # later iterators end too

    async def finalize(self) -> None:
        self._buffer.flush_held()
        self._queue_control(_FINALIZE)

    async def close(self) -> None:
        if self._closing or self._runner is None:
            return
        self._buffer.flush_held()
        self._closing = True
        runner = self._runner
        if self._connected:
            self._queue_control(_CLOSE)
            await asyncio.wait({runner}, timeout=self.close_timeout_s + 1)
        if not runner.done():
            runner.cancel()
            # Bounded: a session task that ignores its cancellation must not hold up the call's end.
            await asyncio.wait({runner}, timeout=self.close_timeout_s)
            if not runner.done():
                log.error("deepgram stt: session task still running after its cancellation")

    def _queue_control(self, kind: str) -> None:
        self._buffer.control(kind)
        self._wake.set()

    # --- connection loop ---------------------------------------------------------------------

    async def _run(self, ready: asyncio.Future[None]) -> None:
        failures = 0
        try:
            while True:
                opened = time.monotonic()
                try:
                    await self._connection(ready)
                    return
                except Exception as exc:
                    status = exc.status_code if isinstance(exc, ApiError) else None
                    if not ready.done():
                        ready.set_exception(
                            DeepgramConnectError(
                                f"Deepgram connection failed: {describe(exc)}", status
                            )
                        )
                        return
                    if self._closing:
                        return
                    if status in (401, 403):
                        self._emit(
                            STTError(f"Deepgram refused the session: {describe(exc)}", fatal=True)
                        )
                        return
                    if time.monotonic() - opened >= self._STABLE_S:
                        failures = 0
                    failures += 1
                    if failures > self.max_reconnects:
                        self._emit(
                            STTError(
                                f"Deepgram unreachable after {failures - 1} "
                                f"reconnects: {describe(exc)}",
                                fatal=True,
                            )
                        )
                        return
                    reason = f"Deepgram connection lost ({describe(exc)}); reconnecting"
                    log.warning("deepgram stt: %s (attempt %d)", reason, failures)
                    self._emit(STTError(reason, fatal=False))
                await asyncio.sleep(min(self.backoff_s * 2 ** (failures - 1), 2.0))
        finally:
            self._connected = False
            if not ready.done():
                ready.set_exception(DeepgramConnectError("Deepgram session cancelled"))
            self._emit(None)

    async def _connection(self, ready: asyncio.Future[None]) -> None:
        """One socket: returns after a requested close, raises when the socket is lost."""
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(self.connect_timeout_s):
                conn = await stack.enter_async_context(self._client.listen.v1.connect(**self._kw))
            self.connections += 1
            self._connected = True
            self._conn_base, replay = self._buffer.replay()
            if not ready.done():
                ready.set_result(None)
            for data in replay:
                await conn.send_media(data)
            receiver = asyncio.create_task(self._receive(conn))
            sender = asyncio.create_task(self._send_loop(conn))
            keepalive = asyncio.create_task(self._keepalive())
            try:
                done, _ = await asyncio.wait(
                    {receiver, sender}, return_when=asyncio.FIRST_COMPLETED
                )
                if sender in done and sender.exception() is None:  # CloseStream went out
                    done, _ = await asyncio.wait({receiver}, timeout=self.close_timeout_s)
                    return
            finally:
                self._connected = False
                for task in (receiver, sender, keepalive):
                    task.cancel()
                await asyncio.gather(receiver, sender, keepalive, return_exceptions=True)
            error = receiver.exception() if receiver in done else sender.exception()
            if self._closing and error is None:
                return
            raise error or ConnectionError("server closed the connection")

    async def _send_loop(self, conn: Any) -> None:
        buffer = self._buffer
        while True:
            while not buffer:
                self._wake.clear()
                await self._wake.wait()
            item = buffer.pop()
            if item is None:  # only audio a replay already sent
                continue
            if isinstance(item, bytes):
                await conn.send_media(item)  # on failure the replay ring still has it
            else:
                try:
                    if item == _CLOSE:
                        await conn.send_close_stream()
                        return
                    await (conn.send_finalize() if item == _FINALIZE else conn.send_keep_alive())
                except Exception:
                    if item == _FINALIZE:
                        buffer.retry_control(item)
                    raise
            self._last_tx = time.monotonic()

    async def _keepalive(self) -> None:
        while True:
            idle = time.monotonic() - self._last_tx
            if idle >= self.keepalive_s:
                if not self._buffer:
                    self._queue_control(_KEEPALIVE)
                self._last_tx = time.monotonic()
                idle = 0.0
            await asyncio.sleep(self.keepalive_s - idle)

    async def _receive(self, conn: Any) -> None:
        async for message in conn:
            self._on_message(message)

    def _on_message(self, msg: Any) -> None:
        base = self._conn_base / BYTES_PER_S
        if isinstance(msg, ListenV1Results):
            alt = msg.channel.alternatives[0] if msg.channel.alternatives else None
            text = alt.transcript.strip() if alt else ""
            final = bool(msg.is_final)
            speech_final = bool(msg.speech_final)
            end = msg.start + msg.duration
            if final:
                self._buffer.confirm(self._conn_base + int(end * BYTES_PER_S))
            if text or (final and speech_final):
                self._emit(
                    Transcript(
                        text=text,
                        final=final,
                        speech_final=speech_final,
                        confidence=alt.confidence if alt else 0.0,
                        start=base + msg.start,
                        end=base + end,
                    )
                )
        elif isinstance(msg, ListenV1SpeechStarted):
            self._emit(SpeechStarted(timestamp=base + msg.timestamp))
        elif isinstance(msg, ListenV1UtteranceEnd):
            self._emit(UtteranceEnd(last_word_end=base + msg.last_word_end))
        elif isinstance(msg, ListenV1Error):
            self._emit(STTError(f"Deepgram error {msg.variant}: {msg.description}", fatal=False))

    def _emit(self, event: STTEvent | None) -> None:
        self._events.put_nowait(event)
