"""Plays agent audio to the carrier at real-time pace, and knows what the caller actually heard.

SpeechChunk -> media messages of whole 20 ms frames + a mark at each segment end (via the transport)
MarkPlayed  -> the segment was heard; a fully heard reply -> TurnRecord(agent) [+ Hangup]
Interrupt   -> `clear`, and TurnRecord(agent, interrupted, heard_text) cut at the playhead
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from calls.core.audio import FRAME_BYTES, MULAW_SILENCE
from calls.pipeline.context import CallContext
from calls.pipeline.frames import (
    Frame,
    Hangup,
    Interrupt,
    MarkPlayed,
    ReplyDone,
    SpeechChunk,
    ToolRequest,
    TurnRecord,
)
from calls.pipeline.processor import Processor

log = logging.getLogger(__name__)
FRAME_S = 0.02
# Keep the carrier's buffer between these two leads: enough to ride out scheduling jitter, small
# enough that a `clear` loses little and the playhead estimate stays close to the truth.
LEAD_HIGH_S = 0.20
LEAD_LOW_S = 0.10
# If the carrier never echoes a mark, treat the audio as played this long after its end.
MARK_GRACE_S = 2.0
# Whole 20 ms frames of one segment per media message (Twilio plays any whole number of frames):
# a message costs the server as much as its audio does, and pacing stays frame-exact.
MESSAGE_FRAMES = 5


class Transport(Protocol):
    async def send_media(self, mulaw: bytes) -> None: ...
    async def send_mark(self, name: str) -> None: ...
    async def send_clear(self) -> None: ...


@dataclass
class _Segment:
    reply_id: int
    index: int
    text: str
    mark: str
    frames: int = 0
    start: float | None = None  # when its first frame plays (playhead estimate)
    complete: bool = False  # all audio received
    played: bool = False  # mark echoed


@dataclass
class _Reply:
    id: int
    segments: list[_Segment] = field(default_factory=list)
    done: ReplyDone | None = None


class PlayoutProcessor(Processor):
    def __init__(
        self,
        ctx: CallContext,
        transport: Transport,
        *,
        on_audio_out: Callable[[bytes, float], None] | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.transport = transport
        self.on_audio_out = on_audio_out
        self._queue: deque[tuple[_Segment, bytes] | _Segment] = deque()
        self._replies: dict[int, _Reply] = {}
        self._segments: dict[str, _Segment] = {}
        self._current: _Segment | None = None
        self._remainder = b""
        self._play_end = 0.0
        self._wake = asyncio.Event()
        self._held: list[tuple[ToolRequest, set[str]]] = []

    async def start(self) -> None:
        self.spawn(self._sender(), "playout")

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, SpeechChunk):
            self._enqueue(frame)
        elif isinstance(frame, MarkPlayed):
            await self._mark_played(frame.name)
        elif isinstance(frame, ReplyDone):
            self._reply(frame.reply_id).done = frame
            await self._finish_played()
        elif isinstance(frame, ToolRequest):
            # Act (transfer, press digits) only once the words said before it have been heard.
            pending = {m for m, seg in self._segments.items() if not seg.played}
            if pending:
                self._held.append((frame, pending))
            else:
                await self.push(frame)
        elif isinstance(frame, Interrupt):
            await self._interrupt()
            await self.push(frame)
        else:
            await self.push(frame)

    # --- queueing ---------------------------------------------------------------------------
    def _reply(self, reply_id: int) -> _Reply:
        if reply_id not in self._replies:
            self._replies[reply_id] = _Reply(reply_id)
        return self._replies[reply_id]

    def _enqueue(self, chunk: SpeechChunk) -> None:
        seg = self._current
        if seg is None or seg.index != chunk.segment:
            seg = _Segment(
                chunk.reply_id, chunk.segment, chunk.text, f"r{chunk.reply_id}s{chunk.segment}"
            )
            self._current = seg
            self._reply(chunk.reply_id).segments.append(seg)
            self._segments[seg.mark] = seg
            self._remainder = b""
        data = self._remainder + chunk.mulaw
        whole = len(data) - len(data) % FRAME_BYTES
        for i in range(0, whole, FRAME_BYTES):
            self._queue.append((seg, data[i : i + FRAME_BYTES]))
            seg.frames += 1
        self._remainder = data[whole:]
        if chunk.end:
            if self._remainder:
                pad = bytes([MULAW_SILENCE]) * (FRAME_BYTES - len(self._remainder))
                self._queue.append((seg, self._remainder + pad))
                seg.frames += 1
            self._remainder = b""
            seg.complete = True
            self._current = None
            self._queue.append(seg)  # the mark goes after its audio
        self.ctx.agent_speaking = True
        self._wake.set()

    # --- pacing -----------------------------------------------------------------------------
    async def _sender(self) -> None:
        clock = self.ctx.clock
        while True:
            if not self._queue:
                self._wake.clear()
                try:
                    # Not `wait_for`: on 3.11 it drops a cancellation that lands with the wake-up.
                    async with asyncio.timeout_at(self._deadline()):
                        await self._wake.wait()
                except TimeoutError:
                    await self._expire_marks()
                continue
            now = clock()
            while self._queue and self._play_end - now < LEAD_HIGH_S:
                item = self._queue.popleft()
                if isinstance(item, _Segment):
                    await self.transport.send_mark(item.mark)
                    continue
                seg, frame = item
                start = max(self._play_end, now)
                if seg.start is None:
                    seg.start = start
                    metrics = self.ctx.metrics.setdefault(seg.reply_id, {})
                    metrics.setdefault("first_audio", now)
                frames = [frame]
                self._play_end = start + FRAME_S
                while (
                    len(frames) < MESSAGE_FRAMES
                    and self._queue
                    and self._play_end - now < LEAD_HIGH_S
                    and isinstance(self._queue[0], tuple)
                    and self._queue[0][0] is seg
                ):
                    frames.append(self._queue.popleft()[1])
                    self._play_end += FRAME_S
                audio = frames[0] if len(frames) == 1 else b"".join(frames)
                await self.transport.send_media(audio)
                if self.on_audio_out is not None:
                    self.on_audio_out(audio, start)
            if self._queue:
                await asyncio.sleep(max(0.005, self._play_end - LEAD_LOW_S - clock()))

    def _deadline(self) -> float | None:
        """When unechoed marks expire, on the loop's clock (None: no mark is pending)."""
        if not any(s.complete and not s.played for s in self._segments.values()):
            return None
        grace = max(0.05, self._play_end + MARK_GRACE_S - self.ctx.clock())
        return asyncio.get_running_loop().time() + grace

    async def _expire_marks(self) -> None:
        """The carrier did not echo some marks long after their audio ended: count them played."""
        if self.ctx.clock() < self._play_end + MARK_GRACE_S:
            return
        for seg in list(self._segments.values()):
            if seg.complete and not seg.played:
                log.debug("mark %s never echoed; treating it as played", seg.mark)
                seg.played = True
        await self._finish_played()

    # --- what was heard ---------------------------------------------------------------------
    async def _mark_played(self, name: str) -> None:
        seg = self._segments.get(name)
        if seg is None:
            return  # a mark from before a `clear`, already accounted for
        seg.played = True
        await self._finish_played()

    async def _release_held(self) -> None:
        ready = [r for r, marks in self._held if not any(m in self._segments and
                 not self._segments[m].played for m in marks)]  # fmt: skip
        self._held = [(r, m) for r, m in self._held if r not in ready]
        for request in ready:
            await self.push(request)

    async def _finish_played(self) -> None:
        """Close every reply whose audio has all been played, in order."""
        await self._release_held()
        for reply in list(self._replies.values()):
            if reply.done is None or not all(s.played for s in reply.segments):
                break
            del self._replies[reply.id]
            for seg in reply.segments:
                self._segments.pop(seg.mark, None)
            text = " ".join(s.text for s in reply.segments)
            if text:
                await self.push(self._record(reply, text, text, interrupted=False))
            if reply.done.end_call:
                await self.push(Hangup("agent ended the call"))
        self.ctx.agent_speaking = bool(self._replies) or bool(self._queue)

    async def stop(self) -> None:
        """The stream is gone: record what was played of unfinished replies, then stop."""
        now = self.ctx.clock()
        for reply in list(self._replies.values()):
            heard = " ".join(h for h in (self._heard(s, now) for s in reply.segments) if h)
            text = " ".join(s.text for s in reply.segments)
            if heard != text:  # the context outlives the stream (digits reconnect it)
                self.ctx.conversation.set_heard(reply.id, heard)
            if text:
                await self.push(self._record(reply, text, heard, interrupted=heard != text))
        self._replies.clear()
        self._segments.clear()
        await super().stop()

    async def _interrupt(self) -> None:
        if not self._replies and not self._queue:
            return
        now = self.ctx.clock()
        await self.transport.send_clear()
        self._queue.clear()
        self._current, self._remainder = None, b""
        for reply in list(self._replies.values()):
            heard = [self._heard(seg, now) for seg in reply.segments]
            heard_text = " ".join(h for h in heard if h)
            text = " ".join(s.text for s in reply.segments)
            self.ctx.conversation.set_heard(reply.id, heard_text)
            if text:
                await self.push(self._record(reply, text, heard_text, interrupted=True))
        self._replies.clear()
        self._segments.clear()
        self._held.clear()  # the reply that asked for them was cut off and is cancelled
        self._play_end = now
        self.ctx.agent_speaking = False

    def played_ms(self, reply_id: int) -> dict[int, float] | None:
        """Read-only: ms played so far of each segment of a reply (by segment index), from the
        playhead estimate; None when the reply is no longer held (played out and recorded)."""
        reply = self._replies.get(reply_id)
        if reply is None:
            return None
        now = self.ctx.clock()
        played = {}
        for seg in reply.segments:
            total = seg.frames * FRAME_S
            elapsed = 0.0 if seg.start is None else min(total, max(0.0, now - seg.start))
            played[seg.index] = (total if seg.played else elapsed) * 1000
        return played

    @staticmethod
    def _heard(seg: _Segment, now: float) -> str:
        if seg.played:
            return seg.text
        if seg.start is None or seg.frames == 0 or now <= seg.start:
            return ""
        fraction = min(1.0, (now - seg.start) / (seg.frames * FRAME_S))
        words = seg.text.split()
        return " ".join(words[: int(len(words) * fraction)])

    def _record(self, reply: _Reply, text: str, heard: str, *, interrupted: bool) -> TurnRecord:
        metrics = self.ctx.metrics.pop(reply.id, {})
        starts = [s.start for s in reply.segments if s.start is not None]
        started = min(starts) if starts else self.ctx.clock()
        return TurnRecord(
            "agent", text, heard_text=heard if interrupted else "", interrupted=interrupted,
            started_at=started, ended_at=self.ctx.clock(), latency=latency_figures(metrics),
        )  # fmt: skip


_MILESTONES = ("stt_final", "llm_request", "llm_first_token", "tts_request", "tts_first_byte",
               "first_audio")  # fmt: skip


def latency_figures(metrics: dict[str, float]) -> dict[str, float]:
    """Milliseconds from the end of the caller's speech to each milestone, plus voice-to-voice."""
    base = metrics.get("speech_end")
    if base is None:
        return {}
    figures = {f"{name}_ms": round((metrics[name] - base) * 1000, 1)
               for name in _MILESTONES if name in metrics}  # fmt: skip
    if "first_audio_ms" in figures:
        figures["voice_to_voice_ms"] = figures["first_audio_ms"]
    return figures
