"""Turn-taking: when the caller's turn ends, and when their speech is a real barge-in.

CallerTranscript(final, speech_final) -> CallerTurn + TurnRecord(caller)
caller speech over the agent, long enough and not a backchannel -> Interrupt
"""

from __future__ import annotations

import re

from calls.pipeline.context import CallContext
from calls.pipeline.frames import (
    AudioIn,
    CallerSpeechStarted,
    CallerSpeechStopped,
    CallerTranscript,
    CallerTurn,
    EventRecord,
    Frame,
    Interrupt,
    TurnRecord,
)
from calls.pipeline.processor import Processor

# Letters and digits of any script: "94040" or "Да" are words, so never a backchannel.
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
# With no usable transcript yet, speech this long over the agent interrupts anyway.
_BLIND_INTERRUPT_FACTOR = 3


def is_backchannel(text: str, words: frozenset[str]) -> bool:
    """True when every word (or the whole phrase) is a listener's backchannel ("uh-huh", "okay")."""
    phrase = " ".join(_WORD.findall(text.lower()))
    if not phrase:
        return True
    if phrase in words:
        return True
    return all(w in words for w in phrase.split())


class TurnTaker(Processor):
    """Consumes audio and transcripts; emits caller turns, barge-in interrupts and caller records."""

    def __init__(self, ctx: CallContext) -> None:
        super().__init__()
        self.ctx = ctx
        self._finals: list[str] = []
        self._interim = ""
        self._speech_start: float | None = None
        self._speech_end: float = 0.0
        self._started_at: float = 0.0
        self._interrupted_this_speech = False

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, AudioIn):
            if self._speech_start is not None and self.ctx.agent_speaking:
                await self._maybe_interrupt(frame.t)
            return  # audio stops here
        if isinstance(frame, CallerSpeechStarted):
            self._speech_start = frame.t
            self._started_at = self._started_at or frame.t
            self._interrupted_this_speech = False
        elif isinstance(frame, CallerSpeechStopped):
            self._speech_start = None
            self._speech_end = frame.t
        elif isinstance(frame, CallerTranscript):
            await self._on_transcript(frame)
            return
        await self.push(frame)

    async def _maybe_interrupt(self, now: float) -> None:
        if self._interrupted_this_speech or self._speech_start is None:
            return
        spoken_ms = (now - self._speech_start) * 1000
        opts = self.ctx.options
        if spoken_ms < opts.min_interrupt_ms:
            return
        heard = " ".join([*self._finals, self._interim]).strip()
        if heard and is_backchannel(heard, opts.backchannels):
            # A long "uh-huh" is still a backchannel; only a very long one is not.
            if spoken_ms < opts.min_interrupt_ms * _BLIND_INTERRUPT_FACTOR:
                return
        elif not heard and spoken_ms < opts.min_interrupt_ms * _BLIND_INTERRUPT_FACTOR:
            return
        self._interrupted_this_speech = True
        await self.push(Interrupt("barge-in"))

    async def _on_transcript(self, frame: CallerTranscript) -> None:
        if frame.text:
            if frame.final:
                self._finals.append(frame.text.strip())
                self._interim = ""
            else:
                self._interim = frame.text.strip()
            if self.ctx.agent_speaking and self._speech_start is not None:
                await self._maybe_interrupt(self.ctx.clock())
        if not frame.speech_final:
            return
        text = " ".join(t for t in self._finals if t).strip()
        if not text:
            return
        if (
            self.ctx.agent_speaking
            and not self._interrupted_this_speech
            and is_backchannel(text, self.ctx.options.backchannels)
        ):
            self._reset()
            await self.push(EventRecord("backchannel", {"text": text}))
            return
        now = self.ctx.clock()
        speech_end = self._speech_end if self._speech_end >= self._started_at else now
        await self.push(
            TurnRecord(
                "caller", text, started_at=self._started_at or speech_end, ended_at=speech_end
            )
        )
        await self.push(CallerTurn(text, speech_end=speech_end, stt_final=now))
        self._reset()

    def _reset(self) -> None:
        self._finals.clear()
        self._interim = ""
        self._started_at = 0.0
