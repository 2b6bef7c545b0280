"""Deepgram emulator: live STT `GET /v1/listen` (scripted transcripts) and Aura `POST /v1/speak`.

    emu = DeepgramEmulator(api_key="test-key", final_latency_ms=300, first_byte_ms=0)
    emu.script(["hello there", "I want a human"])          # global FIFO of transcripts
    emu.script(["only for call 7"], tag="call-7")          # used first by sockets with ?tag=call-7
    emu.listen_faults = Faults(drop_after_messages=20, times=1)   # message = client frame received
    emu.drop_connections()                                 # cut every live /v1/listen socket now
    emu.speak_faults = Faults(status=500)                  # message = audio chunk sent
    async with emu.server() as srv: ...                    # srv.base_url / srv.ws_url
    emu.connections[-1].control, .bytes_received, .query, .sent   # what happened, for assertions
    python -m calls.sandbox.emulators.deepgram --port 8098 --script "hello there"

Recognition is scripted. A 20 ms energy detector runs on the decoded audio (audio clock = bytes
received / 8000). A voiced frame opens a segment (SpeechStarted if vad_events=true); interims
follow every `interim_every_ms` of audio (interim_results=true); once `endpointing` ms of silence
follow the segment, a final with speech_final=true carries the next scripted text, sent
`final_latency_ms` (wall clock) after the last voiced frame arrived, or as soon as the
endpoint is seen if that is later. UtteranceEnd follows after `utterance_end_ms` of silence
(needs interim_results=true). Finalize sends pending finals now; an open segment comes out with
is_final=true, speech_final=false, from_finalize=true. CloseStream flushes, sends Metadata and
closes with 1000. With no audio or text message for `idle_timeout_s` the socket closes 1011
(NET-0001). Messages go out strictly in order, so a delayed final also delays what follows it.
Texts of finals that never went out (socket lost) return to the front of their queue.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from calls.sandbox.emulators.base import (
    SAMPLE_RATE,
    EmulatorServer,
    Faults,
    abort,
    mulaw_decode,
    new_app,
    run_cli,
    stream_chunks,
    text_audio,
    track_ws,
)

FRAME_MS = 20
NET0001 = "NET-0001: no audio or text message within the timeout window"


@dataclass
class ListenRecord:
    """One `/v1/listen` attempt: the handshake, everything received and everything sent."""

    id: int
    query: dict[str, str]
    authorization: str
    extensions: str = ""  # the client's Sec-WebSocket-Extensions offer
    status: int = 101
    bytes_received: int = 0
    frames_received: int = 0
    control: list[dict] = field(default_factory=list)
    sent: list[dict] = field(default_factory=list)  # {"at": monotonic seconds, "msg": {...}}
    closed: bool = False
    close_reason: str = ""

    def sent_of(self, kind: str) -> list[dict]:
        return [s["msg"] for s in self.sent if s["msg"].get("type") == kind]


@dataclass
class SpeakRecord:
    query: dict[str, str]
    body: Any
    status: int = 200
    bytes_sent: int = 0


@dataclass
class _Segment:
    start: float
    last_voiced: float
    last_voiced_wall: float
    interims: int = 0
    next_interim: float = 0.0


@dataclass
class _Out:
    due: float
    msg: dict
    text: str | None = None  # a scripted text this message consumed
    tag: str | None = None


class DeepgramEmulator:
    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        final_latency_ms: float = 300.0,
        interim_every_ms: float = 300.0,
        speech_threshold: float = 500.0,
        idle_timeout_s: float | None = 10.0,
        default_text: str = "",
        first_byte_ms: float = 0.0,
        ms_per_char: float = 67.0,
        chunk_ms: int = 40,
        realtime_factor: float = 0.0,
        listen_faults: Faults | None = None,
        speak_faults: Faults | None = None,
    ):
        self.api_key = api_key  # None accepts any key
        self.final_latency_ms = final_latency_ms
        self.interim_every_ms = interim_every_ms
        self.speech_threshold = speech_threshold
        self.idle_timeout_s = idle_timeout_s
        self.default_text = default_text
        self.first_byte_ms = first_byte_ms
        self.ms_per_char = ms_per_char
        self.chunk_ms = chunk_ms
        self.realtime_factor = realtime_factor  # 0 = as fast as possible
        self.listen_faults = listen_faults or Faults()
        self.speak_faults = speak_faults or Faults()
        self.connections: list[ListenRecord] = []
        self.speak_requests: list[SpeakRecord] = []
        self._queues: dict[str | None, deque[str]] = {None: deque()}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._live: set[_ListenSession] = set()

    # --- scripting ---------------------------------------------------------------------------

    def script(self, texts: Iterable[str], *, tag: str | None = None) -> None:
        with self._lock:
            self._queues.setdefault(tag, deque()).extend(texts)

    def pending_script(self, tag: str | None = None) -> list[str]:
        with self._lock:
            return list(self._queues.get(tag, ()))

    def _queue_for(self, tag: str | None) -> tuple[str | None, deque[str]]:
        if tag is not None and self._queues.get(tag):
            return tag, self._queues[tag]
        return None, self._queues[None]

    def _peek(self, tag: str | None) -> str:
        with self._lock:
            _, q = self._queue_for(tag)
            return q[0] if q else self.default_text

    def _pop(self, tag: str | None) -> tuple[str, str | None, bool]:
        with self._lock:
            key, q = self._queue_for(tag)
            if q:
                return q.popleft(), key, True
            return self.default_text, key, False

    def _give_back(self, items: list[tuple[str, str | None]]) -> None:
        with self._lock:
            for text, key in reversed(items):
                self._queues.setdefault(key, deque()).appendleft(text)

    def drop_connections(self) -> int:
        """Cut every open `/v1/listen` socket now (call on the emulator's loop)."""
        live = list(self._live)
        for session in live:
            session.record.close_reason = "dropped (drop_connections)"
            abort(session.request)
        return len(live)

    # --- app ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = new_app()
        app.router.add_get("/v1/listen", self._listen)
        app.router.add_post("/v1/speak", self._speak)
        return app

    def server(self, *, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
        return EmulatorServer(self.app(), host=host, port=port)

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or not key:
            return False
        return self.api_key is None or key.strip() == self.api_key

    @staticmethod
    def _error(status: int, code: str, msg: str) -> web.Response:
        body = {"err_code": code, "err_msg": msg, "request_id": str(uuid.uuid4())}
        return web.json_response(body, status=status)

    async def _listen(self, request: web.Request) -> web.StreamResponse:
        record = ListenRecord(
            id=next(self._ids),
            query=dict(request.query),
            authorization=request.headers.get("Authorization", ""),
            extensions=request.headers.get("Sec-WebSocket-Extensions", ""),
        )
        self.connections.append(record)
        early: web.StreamResponse | None = None
        if not self._authorized(request):
            early = self._error(401, "INVALID_AUTH", "Invalid credentials.")
        elif request.query.get("encoding", "mulaw") not in ("mulaw", "linear16"):
            early = self._error(400, "Bad Request", "emulator supports encoding=mulaw|linear16")
        faults = Faults() if early else self.listen_faults.take()
        early = early or await faults.gate({"err_code": "INTERNAL", "err_msg": "injected"})
        if early is not None:
            record.status = early.status
            record.closed = True
            return early
        ws = web.WebSocketResponse(autoping=True, max_msg_size=8 * 1024 * 1024)
        await ws.prepare(request)
        session = _ListenSession(self, request, ws, record, faults)
        self._live.add(session)
        try:
            with track_ws(request, ws):
                await session.run()
        finally:
            self._live.discard(session)
        return ws

    async def _speak(self, request: web.Request) -> web.StreamResponse:
        q = dict(request.query)
        try:
            body = await request.json()
        except ValueError:
            body = None
        record = SpeakRecord(query=q, body=body)
        self.speak_requests.append(record)
        early: web.StreamResponse | None = None
        encoding = q.get("encoding", "mp3")
        if not self._authorized(request):
            early = self._error(401, "INVALID_AUTH", "Invalid credentials.")
        elif encoding not in ("mulaw", "linear16") or q.get("sample_rate", "8000") != "8000":
            early = self._error(
                400,
                "UNSUPPORTED_AUDIO_FORMAT",
                "emulator supports encoding=mulaw|linear16 at sample_rate=8000",
            )
        elif not isinstance(body, dict) or not str(body.get("text", "")).strip():
            early = self._error(400, "INVALID_QUERY", "body must be JSON with a non-empty text")
        faults = Faults() if early else self.speak_faults.take()
        early = early or await faults.gate({"err_code": "INTERNAL", "err_msg": "injected"})
        if early is not None:
            record.status = early.status
            return early
        audio = text_audio(body["text"], ms_per_char=self.ms_per_char)
        if encoding == "linear16":
            audio = mulaw_decode(audio).astype("<i2").tobytes()
        if q.get("container", "wav") == "wav":
            audio = _wav_header(len(audio), encoding) + audio
        if self.first_byte_ms > 0:
            await asyncio.sleep(self.first_byte_ms / 1000)
        resp = web.StreamResponse(
            headers={
                "Content-Type": "audio/basic" if encoding == "mulaw" else "audio/l16",
                "dg-model-name": q.get("model", "aura-2-thalia-en"),
                "dg-char-count": str(len(body["text"])),
                "dg-request-id": str(uuid.uuid4()),
            }
        )
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        size = SAMPLE_RATE * self.chunk_ms // 1000 * (2 if encoding == "linear16" else 1)
        await stream_chunks(
            request,
            resp,
            audio,
            size=size,
            chunk_ms=self.chunk_ms,
            realtime_factor=self.realtime_factor,
            faults=faults,
            record=record,
        )
        return resp


def _wav_header(n: int, encoding: str) -> bytes:
    fmt, width = (7, 1) if encoding == "mulaw" else (1, 2)
    return (
        b"RIFF"
        + (36 + n).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + fmt.to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + SAMPLE_RATE.to_bytes(4, "little")
        + (SAMPLE_RATE * width).to_bytes(4, "little")
        + width.to_bytes(2, "little")
        + (8 * width).to_bytes(2, "little")
        + b"data"
        + n.to_bytes(4, "little")
    )


class _ListenSession:
    """State of one accepted `/v1/listen` socket."""

    def __init__(
        self,
        emu: DeepgramEmulator,
        request: web.Request,
        ws: web.WebSocketResponse,
        record: ListenRecord,
        faults: Faults,
    ):
        q = request.query
        self.emu, self.request, self.ws, self.record, self.faults = emu, request, ws, record, faults
        self.tag = q.get("tag")
        self.interim = q.get("interim_results") == "true"
        self.vad = q.get("vad_events") == "true"
        ep = q.get("endpointing", "10")
        self.endpointing_ms = None if ep == "false" else float(ep)
        ue = q.get("utterance_end_ms")
        self.utterance_end_ms = float(ue) if ue and self.interim else None
        self.linear16 = q.get("encoding", "mulaw") == "linear16"
        self.frame_bytes = SAMPLE_RATE * FRAME_MS // 1000 * (2 if self.linear16 else 1)
        self.request_id = str(uuid.uuid4())
        self.model = q.get("model", "nova-3")
        self.buf = bytearray()
        self.frames = 0
        self.seg: _Segment | None = None
        self.last_voiced_end = 0.0
        self.utterance_open = False
        self.outbox: deque[_Out] = deque()
        self.wake = asyncio.Event()
        self.drained = asyncio.Event()
        self.last_rx = time.monotonic()
        self.sha = hashlib.sha256()

    @property
    def audio_t(self) -> float:
        return self.frames * FRAME_MS / 1000

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._sender())]
        if self.faults.drop_after_s is not None:
            tasks.append(asyncio.create_task(self._drop_later(self.faults.drop_after_s)))
        if self.emu.idle_timeout_s:
            tasks.append(asyncio.create_task(self._idle_watch(self.emu.idle_timeout_s)))
        received = 0
        try:
            async for msg in self.ws:
                self.last_rx = time.monotonic()
                received += 1
                if msg.type == WSMsgType.BINARY:
                    self.record.frames_received += 1
                    self.record.bytes_received += len(msg.data)
                    self.sha.update(msg.data)
                    self._feed(msg.data)
                elif msg.type == WSMsgType.TEXT and await self._control(msg.data):
                    break
                limit = self.faults.drop_after_messages
                if limit is not None and received >= limit:
                    self.record.close_reason = "dropped (fault)"
                    abort(self.request)
                    break
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._give_back_unsent()
            self.record.closed = True

    # --- client messages -----------------------------------------------------------------------

    async def _control(self, raw: str) -> bool:
        """Handle a text frame; True when the socket is finished."""
        try:
            msg = json.loads(raw)
        except ValueError:
            msg = {"type": None, "raw": raw}
        self.record.control.append(msg)
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "KeepAlive":
            return False
        if kind == "Finalize":
            self._finalize(from_finalize=True)
            return False
        if kind == "CloseStream":
            self._finalize(from_finalize=False)
            await self._drain()
            await self._send_now(self._metadata())
            self.record.close_reason = "CloseStream"
            await self.ws.close(code=1000)
            return True
        if kind == "Configure":
            self._enqueue({"type": "ConfigureSuccess", "features": msg.get("features", {})})
            return False
        self._enqueue(
            {
                "type": "Error",
                "variant": "SchemaError",
                "description": "unknown or malformed control message",
                "message": raw,
            }
        )
        return False

    def _feed(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= self.frame_bytes:
            frame = bytes(self.buf[: self.frame_bytes])
            del self.buf[: self.frame_bytes]
            if self.linear16:
                pcm = np.frombuffer(frame, dtype="<i2").astype(np.float64)
            else:
                pcm = mulaw_decode(frame).astype(np.float64)
            voiced = float(np.sqrt(np.mean(pcm * pcm))) > self.emu.speech_threshold
            start = self.audio_t
            self.frames += 1
            self._step(voiced, start, self.audio_t)

    def _step(self, voiced: bool, start: float, end: float) -> None:
        now = time.monotonic()
        if voiced:
            if self.seg is None:
                self.seg = _Segment(
                    start=start,
                    last_voiced=end,
                    last_voiced_wall=now,
                    next_interim=start + self.emu.interim_every_ms / 1000,
                )
                if self.vad:
                    self._enqueue({"type": "SpeechStarted", "channel": [0], "timestamp": start})
            seg = self.seg
            seg.last_voiced, seg.last_voiced_wall = end, now
            self.last_voiced_end = end
            self.utterance_open = True
            if self.interim and end >= seg.next_interim - 1e-9:
                seg.interims += 1
                seg.next_interim += self.emu.interim_every_ms / 1000
                words = self.emu._peek(self.tag).split()
                shown = " ".join(words[: min(len(words), seg.interims)])
                self._enqueue(self._results(shown, seg.start, end, is_final=False))
            return
        seg = self.seg
        if (
            seg is not None
            and self.endpointing_ms is not None
            # Rounded: float audio times would otherwise miss the endpoint by a frame.
            and round((end - seg.last_voiced) * 1000, 3) >= self.endpointing_ms
        ):
            due = max(now, seg.last_voiced_wall + self.emu.final_latency_ms / 1000)
            self._commit(due, speech_final=True, from_finalize=False)
        if (
            self.utterance_open
            and self.utterance_end_ms is not None
            and round((end - self.last_voiced_end) * 1000, 3) >= self.utterance_end_ms
        ):
            self.utterance_open = False
            self._enqueue(
                {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": self.last_voiced_end}
            )

    def _commit(self, due: float, *, speech_final: bool, from_finalize: bool) -> None:
        seg, self.seg = self.seg, None
        if seg is None:
            return
        text, key, scripted = self.emu._pop(self.tag)
        msg = self._results(
            text,
            seg.start,
            seg.last_voiced,
            is_final=True,
            speech_final=speech_final,
            from_finalize=from_finalize,
        )
        self._enqueue(msg, due=due, text=text if scripted else None, tag=key)

    def _finalize(self, *, from_finalize: bool) -> None:
        for out in self.outbox:
            out.due = 0.0
        self._commit(0.0, speech_final=False, from_finalize=from_finalize)
        self.wake.set()

    # --- server messages -----------------------------------------------------------------------

    def _results(
        self,
        text: str,
        start: float,
        end: float,
        *,
        is_final: bool,
        speech_final: bool = False,
        from_finalize: bool = False,
    ) -> dict:
        words = text.split()
        step = (end - start) / max(1, len(words))
        items = [
            {
                "word": w.lower().strip(".,!?"),
                "start": round(start + i * step, 3),
                "end": round(start + (i + 1) * step, 3),
                "confidence": 0.99,
                "punctuated_word": w,
            }
            for i, w in enumerate(words)
        ]
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(end - start, 3),
            "start": round(start, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [
                    {"transcript": text, "confidence": 0.99 if text else 0.0, "words": items}
                ]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": {
                    "name": f"general-{self.model}",
                    "version": "emulator",
                    "arch": self.model,
                },
                "model_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, self.model)),
            },
        }

    def _metadata(self) -> dict:
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": self.sha.hexdigest(),
            "created": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "duration": self.audio_t,
            "channels": 1,
        }

    def _enqueue(
        self, msg: dict, *, due: float = 0.0, text: str | None = None, tag: str | None = None
    ) -> None:
        self.outbox.append(_Out(due=due, msg=msg, text=text, tag=tag))
        self.wake.set()

    async def _send_now(self, msg: dict) -> None:
        self.record.sent.append({"at": time.monotonic(), "msg": msg})
        await self.ws.send_str(json.dumps(msg))

    async def _sender(self) -> None:
        while True:
            while not self.outbox:
                self.wake.clear()
                await self.wake.wait()
            head = self.outbox[0]
            delay = head.due - time.monotonic()
            if delay > 0:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), delay)
                continue
            await self._send_now(head.msg)
            self.outbox.popleft()
            if not self.outbox:
                self.drained.set()

    async def _drain(self) -> None:
        while self.outbox and not self.ws.closed:
            self.drained.clear()
            await self.drained.wait()

    def _give_back_unsent(self) -> None:
        unsent = [(o.text, o.tag) for o in self.outbox if o.text is not None]
        self.outbox.clear()
        if unsent:
            self.emu._give_back(unsent)

    async def _drop_later(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.record.close_reason = "dropped (fault)"
        abort(self.request)

    async def _idle_watch(self, limit_s: float) -> None:
        while True:
            left = self.last_rx + limit_s - time.monotonic()
            if left <= 0:
                self.record.close_reason = NET0001
                await self.ws.close(code=1011, message=NET0001.encode())
                return
            await asyncio.sleep(min(left, 0.25))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8098, help="0 picks a free port")
    p.add_argument("--api-key", default="test-key", help="'' accepts any key")
    p.add_argument("--final-latency-ms", type=float, default=300.0)
    p.add_argument("--first-byte-ms", type=float, default=0.0, help="TTS first-byte latency")
    p.add_argument("--realtime-factor", type=float, default=0.0, help="TTS pacing; 0 = burst")
    p.add_argument("--script", action="append", default=[], help="a transcript (repeatable)")
    p.add_argument("--default-text", default="", help="final text once the script runs out")
    a = p.parse_args(argv)
    emu = DeepgramEmulator(
        api_key=a.api_key or None,
        final_latency_ms=a.final_latency_ms,
        first_byte_ms=a.first_byte_ms,
        realtime_factor=a.realtime_factor,
        default_text=a.default_text,
    )
    emu.script(a.script)
    run_cli(emu.app(), host=a.host, port=a.port, name="deepgram emulator")


if __name__ == "__main__":
    main()
