"""Deepgram live STT, `GET /v1/listen`: an energy detector on the audio and scripted transcripts.

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

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from aiohttp import WSMsgType, web

from calls.sandbox.emulators.base import SAMPLE_RATE, Faults, abort, mulaw_decode, track_ws
from calls.sandbox.emulators.deepgram_http import authorized, error
from calls.sandbox.emulators.deepgram_messages import metadata, results

if TYPE_CHECKING:
    from calls.sandbox.emulators.deepgram import DeepgramEmulator

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


async def handle_listen(emu: DeepgramEmulator, request: web.Request) -> web.StreamResponse:
    record = ListenRecord(
        id=emu.next_id(),
        query=dict(request.query),
        authorization=request.headers.get("Authorization", ""),
        extensions=request.headers.get("Sec-WebSocket-Extensions", ""),
    )
    emu.connections.append(record)
    early: web.StreamResponse | None = None
    if not authorized(request, emu.api_key):
        early = error(401, "INVALID_AUTH", "Invalid credentials.")
    elif request.query.get("encoding", "mulaw") not in ("mulaw", "linear16"):
        early = error(400, "Bad Request", "emulator supports encoding=mulaw|linear16")
    faults = Faults() if early else emu.listen_faults.take()
    early = early or await faults.gate({"err_code": "INTERNAL", "err_msg": "injected"})
    if early is not None:
        record.status = early.status
        record.closed = True
        return early
    ws = web.WebSocketResponse(autoping=True, max_msg_size=8 * 1024 * 1024)
    await ws.prepare(request)
    session = ListenSession(emu, request, ws, record, faults)
    emu.live.add(session)
    try:
        with track_ws(request, ws):
            await session.run()
    finally:
        emu.live.discard(session)
    return ws


class ListenSession:
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
                words = self.emu.peek_script(self.tag).split()
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
        text, key, scripted = self.emu.pop_script(self.tag)
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

    def _results(self, text: str, start: float, end: float, **flags: bool) -> dict:
        return results(text, start, end, request_id=self.request_id, model=self.model, **flags)

    def _metadata(self) -> dict:
        return metadata(
            request_id=self.request_id, sha256=self.sha.hexdigest(), duration=self.audio_t
        )

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
            self.emu.give_back(unsent)

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
