"""The callee's mouth and ears: lines voiced by the local TTS, heard audio transcribed by the local STT.

voice = make_voice("hibari-low")      # or "synthetic": speech-like noise, instant, no model
voice.prefetch(["Hello.", "Yes."])    # synthesise ahead, in order, off the event loop
audio = await voice.render("Hello.")  # 8 kHz mu-law, whole 20 ms frames
text = await transcribe(mulaw)        # "" when nothing was recognised
is_loud(frame)                        # the energy test the callee uses to know the agent talks
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

import numpy as np

from calls.sandbox.emulators.base import text_audio

log = logging.getLogger(__name__)
FRAME_BYTES = 160
SYNTHETIC = "synthetic"
_RENDERED_MAX = (
    512  # whole lines, shared by every callee of the process (lines repeat across calls)
)
_rendered: OrderedDict[tuple[str, str], bytes] = OrderedDict()


class SpeechUnavailable(RuntimeError):
    """The local speech engines are not installed (or failed to load)."""


class Voice(Protocol):
    name: str

    async def render(self, text: str) -> bytes: ...

    def prefetch(self, texts: Iterable[str]) -> None: ...


def _whole_frames(audio: bytes) -> bytes:
    return audio + b"\xff" * (-len(audio) % FRAME_BYTES)


def _remember(key: tuple[str, str], audio: bytes) -> None:
    _rendered[key] = audio
    _rendered.move_to_end(key)
    while len(_rendered) > _RENDERED_MAX:
        _rendered.popitem(last=False)


class SyntheticVoice:
    """Deterministic speech-like audio whose length follows the text; for protocol tests."""

    name = SYNTHETIC

    def __init__(self, ms_per_char: float = 60.0) -> None:
        self.ms_per_char = ms_per_char

    async def render(self, text: str) -> bytes:
        key = (self.name, text)
        audio = _rendered.get(key)
        if audio is None:
            audio = _whole_frames(text_audio(text, ms_per_char=self.ms_per_char))
            _remember(key, audio)
        return audio

    def prefetch(self, texts: Iterable[str]) -> None:
        pass


class LocalVoice:
    """The local TTS (calls.providers.tts.local.LocalTTS) speaking as the callee.

    Lines render in the TTS's own worker thread; concurrent requests for one line share a task.
    Prefetching renders one line at a time, so an agent sharing that thread (the carrier inside
    the server) waits for one sentence at most, not for a whole script.
    """

    def __init__(self, name: str) -> None:
        from calls.providers.tts.base import TTSError, TTSOptions
        from calls.providers.tts.local import LocalTTS

        self.name = name
        self.failed = False
        self._error = TTSError
        self._tts = LocalTTS(voice=name, chunk_ms=0)
        self._options = TTSOptions(voice=name)
        self._pending: dict[str, asyncio.Task[bytes]] = {}
        self._ahead: list[str] = []
        self._prefetcher: asyncio.Task | None = None

    async def _synthesize(self, text: str) -> bytes:
        try:
            chunks = [chunk async for chunk in self._tts.synthesize(text, self._options)]
        except self._error as exc:  # no engine installed: the call goes on, in synthetic speech
            if not self.failed:
                log.warning(
                    "local TTS voice %s failed (%s): synthetic speech instead", self.name, exc
                )
            self.failed = True
            return await SyntheticVoice().render(text)
        audio = _whole_frames(b"".join(chunks))
        _remember((self.name, text), audio)
        return audio

    def _task(self, text: str) -> asyncio.Task[bytes]:
        task = self._pending.get(text)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._synthesize(text))
            self._pending[text] = task
            task.add_done_callback(lambda _t, text=text: self._pending.pop(text, None))
        return task

    async def render(self, text: str) -> bytes:
        cached = _rendered.get((self.name, text))
        if cached is not None:
            return cached
        return await asyncio.shield(self._task(text))

    def prefetch(self, texts: Iterable[str]) -> None:
        self._ahead.extend(t for t in texts if (self.name, t) not in _rendered)
        if self._ahead and (self._prefetcher is None or self._prefetcher.done()):
            self._prefetcher = asyncio.get_running_loop().create_task(self._render_ahead())

    async def _render_ahead(self) -> None:
        while self._ahead:
            text = self._ahead.pop(0)
            if (self.name, text) not in _rendered:
                try:
                    await asyncio.shield(self._task(text))
                except Exception as exc:  # render() reports it when the line is needed
                    log.warning("could not synthesise %r ahead: %s", text, exc)


def make_voice(name: str) -> Voice:
    """The named local voice; the synthetic voice if asked for, or if the local TTS is missing."""
    if name == SYNTHETIC:
        return SyntheticVoice()
    try:
        return LocalVoice(name)
    except ImportError as exc:
        log.warning("local TTS unavailable (%s): the callee speaks synthetic audio", exc)
        return SyntheticVoice()


_stt = None


def _recognizer():
    global _stt
    if _stt is None:
        try:
            from calls.providers.stt.local import LocalSTT
        except ImportError as exc:
            raise SpeechUnavailable(f"local STT unavailable: {exc}") from exc
        _stt = LocalSTT()
    return _stt


async def transcribe(mulaw: bytes, language: str = "en") -> str:
    """Local Whisper on 8 kHz mu-law, in the STT's shared worker thread (the loop stays free)."""
    if not mulaw:
        return ""
    from calls.core.audio import mulaw_to_pcm16

    stt = _recognizer()
    pcm = mulaw_to_pcm16(mulaw)
    loop = asyncio.get_running_loop()
    try:
        text, _confidence = await loop.run_in_executor(stt.executor, stt.transcribe, pcm, language)
    except Exception as exc:  # a broken model install: say so, do not take the call down
        raise SpeechUnavailable(f"local STT failed: {exc}") from exc
    return text


def _loud_table(level: int) -> bytes:
    """bytes.translate table: 1 for the mu-law codes whose magnitude exceeds `level` (int16)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    magnitude = np.abs(np.where(u & 0x80, 0x84 - t, t - 0x84))
    return bytes((magnitude > level).astype(np.uint8))


LOUD_LEVEL = 300  # int16 scale (about -40 dBFS)
LOUD_SAMPLES = 16  # of 160: a tenth of the frame above LOUD_LEVEL
_LOUD = _loud_table(LOUD_LEVEL)


def is_loud(mulaw: bytes) -> bool:
    """True for a frame with speech-level energy: a tenth of its samples above -40 dBFS. (Counting
    in C via bytes.translate costs ~0.3 us a frame, a twentieth of an RMS through numpy.)"""
    return mulaw.translate(_LOUD).count(1) >= LOUD_SAMPLES * len(mulaw) // 160
