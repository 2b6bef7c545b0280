"""The simulated person on the line: plays a scenario's steps against what it actually hears.

It hears the agent frame by frame as the carrier plays it (so marks and `clear` shape what it
hears), knows the agent is talking from that audio's energy (`speech.is_loud`), speaks its lines into the stream,
presses keys, reacts to digits the agent plays, and hangs up. Everything it did and heard is kept
for assertions: `report()`, `heard_audio()`, `await transcript()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from calls.sandbox import scenario as sc
from calls.sandbox.media import FRAME_BYTES, FRAME_S, SILENCE_FRAME, MediaStream
from calls.sandbox.speech import SpeechUnavailable, Voice, is_loud, transcribe

log = logging.getLogger(__name__)
SPEAKING_HANGOVER_S = 0.3  # a pause shorter than this does not end "the agent is talking"
UTTERANCE_GAP_S = 0.6  # a pause longer than this starts a new agent utterance
INTERRUPT_WINDOW_S = 1.5  # a `clear` this soon after a barge-in's line counts as the agent yielding
MAX_TRANSCRIBE_S = 25.0  # Whisper's window is 30 s


class _Done(Exception):
    """The callee hung up: unwinds nested steps."""


@dataclass
class _Line:
    text: str
    audio: bytes
    done: asyncio.Future
    pos: int = 0
    started: float | None = None
    ended: float | None = None


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def said(heard: str, expected: str) -> bool:
    """True when every word of `expected` occurs in `heard` (case and punctuation ignored)."""
    have = set(words(heard))
    return all(w in have for w in words(expected))


class Callee:
    """Plays `scenario` (its steps) with `voice`; `hang_up()` is how it ends the call."""

    def __init__(
        self,
        scenario: sc.Scenario,
        voice: Voice,
        *,
        hang_up: Callable[[], None],
        record: bool = True,
    ) -> None:
        self.scenario = scenario
        self.voice = voice
        self._hang_up = hang_up
        self.record = record
        self.stream: MediaStream | None = None
        self.streams_seen = 0
        # mouth
        self._lines: deque[_Line] = deque()
        self.spoken: list[_Line] = []
        # ears
        self._heard = bytearray()
        self.frames_heard = 0
        self._loud_total = 0
        self._last_loud = -(10**9)  # frame index
        self.agent_speaking = False
        self.utterances: list[list[int]] = []  # [first frame, end frame) of each agent utterance
        self._started_waiters: list[asyncio.Future] = []
        self._done_waiters: list[tuple[int, int, bool, asyncio.Future]] = []
        # what happened
        self.clears: list[float] = []
        self.digits_received: list[str] = []
        self._digits: asyncio.Queue[str] = asyncio.Queue()
        self.expectations: list[dict] = []
        self.barge_ins: list[tuple[str, _Line]] = []  # kind, line
        self.log: list[dict] = []
        self.hung_up = False
        self._expect_from = 0
        self._t0: float | None = None
        self._runner: asyncio.Task | None = None
        voice.prefetch(scenario.lines())

    # --- the carrier's side (called from the stream's tasks: quick, no awaiting) --------------
    def stream_started(self, stream: MediaStream) -> None:
        self.stream = stream
        self.streams_seen += 1
        loop = asyncio.get_running_loop()
        if self._t0 is None:
            self._t0 = loop.time()
        self._note("stream", sid=stream.stream_sid)
        if self._runner is None:
            self._runner = loop.create_task(self._run())

    def stream_ended(self, stream: MediaStream) -> None:
        if self.stream is stream:
            self.stream = None

    def next_frame(self) -> bytes | None:
        lines = self._lines
        while lines:
            line = lines[0]
            if line.started is None:
                line.started = self._now()
            if line.pos < len(line.audio):
                frame = line.audio[line.pos : line.pos + FRAME_BYTES]
                line.pos += FRAME_BYTES
                if line.pos >= len(line.audio):
                    self._finish_line(lines.popleft(), True)
                return frame
            self._finish_line(lines.popleft(), True)
        return None

    def hear(self, frame: bytes | None) -> None:
        idx = self.frames_heard
        self.frames_heard += 1
        if self.record:
            self._heard += frame or SILENCE_FRAME
        loud = frame is not None and is_loud(frame)
        if loud:
            self._loud_total += 1
            self._last_loud = idx
            if not self.utterances or idx - self.utterances[-1][1] > UTTERANCE_GAP_S / FRAME_S:
                self.utterances.append([idx, idx + 1])
            self.utterances[-1][1] = idx + 1
            if not self.agent_speaking:
                self.agent_speaking = True
                for fut in self._started_waiters:
                    if not fut.done():
                        fut.set_result(True)
                self._started_waiters.clear()
        elif self.agent_speaking and idx - self._last_loud >= SPEAKING_HANGOVER_S / FRAME_S:
            self.agent_speaking = False
        if self._done_waiters and not loud:
            still = []
            for waiter in self._done_waiters:
                gap, loud_at, speaking_at, fut = waiter
                heard_some = speaking_at or self._loud_total > loud_at
                if fut.done():
                    continue
                if heard_some and idx - self._last_loud >= gap:
                    fut.set_result(True)
                else:
                    still.append(waiter)
            self._done_waiters = still

    def on_clear(self) -> None:
        self.clears.append(self._now())

    def on_digits(self, digits: str) -> None:
        """Digits the agent played (`<Play digits>`): they cut the line being read, like an IVR."""
        self.digits_received.append(digits)
        self._note("digits", digits=digits)
        self._flush_mouth()
        for digit in digits:
            if digit not in "wW":
                self._digits.put_nowait(digit)

    def close(self) -> None:
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
        self._flush_mouth()

    # --- results ------------------------------------------------------------------------------
    def heard_audio(self) -> bytes:
        """Everything that played to the callee, 20 ms per tick (silence where nothing played)."""
        return bytes(self._heard)

    def utterance_audio(self) -> list[bytes]:
        return [bytes(self._heard[a * FRAME_BYTES : b * FRAME_BYTES]) for a, b in self.utterances]

    async def transcript(self) -> list[str]:
        """The agent's utterances as the callee heard them, transcribed by the local STT."""
        return [await self._transcribe(audio) for audio in self.utterance_audio()]

    def report(self) -> dict:
        def interrupted(line: _Line) -> bool:
            start = line.started or 0.0
            end = (line.ended or start) + INTERRUPT_WINDOW_S
            return any(start <= t <= end for t in self.clears)

        def line_info(kind: str, line: _Line) -> dict:
            return {"kind": kind, "text": line.text, "at": self._rel(line.started),
                    "agent_stopped": interrupted(line)}  # fmt: skip

        return {
            "scenario": self.scenario.name,
            "said": [line.text for line in self.spoken],
            "streams": self.streams_seen,
            "agent_utterances": len(self.utterances),
            "heard_s": round(self.frames_heard * FRAME_S, 2),
            "clears": [self._rel(t) for t in self.clears],
            "barge_ins": [line_info(kind, line) for kind, line in self.barge_ins],
            "digits_received": list(self.digits_received),
            "expectations": list(self.expectations),
            "hung_up": self.hung_up,
            "log": list(self.log),
        }

    # --- internals ----------------------------------------------------------------------------
    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _rel(self, t: float | None) -> float | None:
        return None if t is None or self._t0 is None else round(t - self._t0, 3)

    def _note(self, event: str, **fields: object) -> None:
        self.log.append({"t": self._rel(self._now()), "event": event, **fields})

    def _finish_line(self, line: _Line, complete: bool) -> None:
        line.ended = self._now()
        self._expect_from = self.frames_heard  # `expect` checks what the agent said after this
        if not line.done.done():
            line.done.set_result(complete)

    def _flush_mouth(self) -> None:
        while self._lines:
            self._finish_line(self._lines.popleft(), False)

    async def _say(self, text: str) -> _Line:
        audio = await self.voice.render(text)
        line = _Line(text, audio, asyncio.get_running_loop().create_future())
        self._lines.append(line)
        self.spoken.append(line)
        self._note("say", text=text)
        await line.done
        return line

    async def _wait_started(self, limit: float) -> bool:
        if self.agent_speaking:
            return True
        fut = asyncio.get_running_loop().create_future()
        self._started_waiters.append(fut)
        try:
            await asyncio.wait_for(fut, limit)
            return True
        except TimeoutError:
            return False

    async def _wait_done(self, gap: float, limit: float) -> bool:
        fut = asyncio.get_running_loop().create_future()
        self._done_waiters.append(
            (round(gap / FRAME_S), self._loud_total, self.agent_speaking, fut)
        )
        try:
            await asyncio.wait_for(fut, limit)
            return True
        except TimeoutError:
            return False

    async def _transcribe(self, audio: bytes) -> str:
        limit = int(MAX_TRANSCRIBE_S / FRAME_S) * FRAME_BYTES
        parts = [audio[i : i + limit] for i in range(0, len(audio), limit)]
        texts = [await transcribe(part) for part in parts]
        return " ".join(t for t in texts if t)

    def _hangup(self) -> None:
        if not self.hung_up:
            self.hung_up = True
            self._note("hangup")
            self._hang_up()
        raise _Done

    async def _run(self) -> None:
        try:
            await self._steps(self.scenario.steps)
            await asyncio.sleep(self.scenario.linger)
            self._hangup()
        except _Done:
            pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken scenario ends the call instead of hanging it
            log.exception("scenario %s failed", self.scenario.name)
            self._note("error", error=str(exc))
            with contextlib.suppress(_Done):
                self._hangup()

    async def _steps(self, steps: Iterable[sc.Step]) -> None:
        for step in steps:
            await self._step(step)

    async def _step(self, step: sc.Step) -> None:
        if isinstance(step, sc.WaitAgent):
            if not await self._wait_done(step.gap, step.timeout):
                self._note("timeout", step="wait_agent")
        elif isinstance(step, sc.Say):
            await self._say(step.text)
        elif isinstance(step, sc.BargeIn | sc.Backchannel):
            kind = "barge_in" if isinstance(step, sc.BargeIn) else "backchannel"
            if not await self._wait_started(step.timeout):
                self._note("timeout", step=kind)
                return
            await asyncio.sleep(step.after)
            line = await self._say(step.text)
            self.barge_ins.append((kind, line))
        elif isinstance(step, sc.Wait):
            await asyncio.sleep(step.seconds + random.uniform(0.0, max(step.jitter, 0.0)))
        elif isinstance(step, sc.Silent):
            await asyncio.sleep(step.seconds if step.seconds is not None else 10**9)
        elif isinstance(step, sc.Dtmf):
            await self._press(step)
        elif isinstance(step, sc.Expect):
            await self._expect(step)
        elif isinstance(step, sc.Menu):
            await self._menu(step)
        elif isinstance(step, sc.WaitHangup):
            await asyncio.sleep(step.seconds)
            self._hangup()
        elif isinstance(step, sc.Hangup):
            self._hangup()

    async def _press(self, step: sc.Dtmf) -> None:
        for digit in step.digits:
            if digit in "wW":
                await asyncio.sleep(0.5)
                continue
            if self.stream is None or not self.stream.active:
                self._note("error", error=f"dtmf {digit} with no stream")
                continue
            await self.stream.send_dtmf(digit)
            self._note("dtmf", digit=digit)
            await asyncio.sleep(step.gap)

    async def _expect(self, step: sc.Expect) -> None:
        if self.agent_speaking:
            await self._wait_done(UTTERANCE_GAP_S, step.timeout)
        start, self._expect_from = self._expect_from, self.frames_heard
        audio = b"".join(
            bytes(self._heard[max(a, start) * FRAME_BYTES : b * FRAME_BYTES])
            for a, b in self.utterances
            if b > start
        )
        result = {"said": step.said, "heard": "", "ok": False}
        if not self.record:
            result["error"] = "the callee does not record what it hears"
        else:
            try:
                result["heard"] = await self._transcribe(audio)
                result["ok"] = said(result["heard"], step.said)
            except SpeechUnavailable as exc:
                result["error"] = str(exc)
        self.expectations.append(result)
        self._note("expect", **result)

    async def _next_digits(self, options: Iterable[str], limit: float) -> str | None:
        """Digits until they name an option (or cannot); None when none came within `limit` s."""
        keys = list(options)
        typed = ""
        wait = limit
        while True:
            try:
                typed += await asyncio.wait_for(self._digits.get(), wait)
            except TimeoutError:
                return typed or None
            if typed in keys or not any(k.startswith(typed) for k in keys):
                return typed
            wait = 3.0  # between the digits of a multi-digit option

    async def _menu(self, step: sc.Menu) -> None:
        for _attempt in range(step.repeat + 1):
            if self._digits.empty():
                await self._say(step.prompt)
            choice = await self._next_digits(step.options, step.timeout)
            self._note("menu", choice=choice)
            if choice in step.options:
                await self._steps(step.options[choice])
                return
        await self._steps(step.otherwise)
