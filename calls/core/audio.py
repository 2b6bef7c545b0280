"""Phone audio helpers: G.711 mu-law <-> 16-bit PCM, streaming resampling, 20 ms framing, energy."""

from __future__ import annotations

import math

import numpy as np
import soxr

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES  # mu-law: one byte per sample
MULAW_SILENCE = 0xFF

# Hand-written rather than audioop (deprecated, gone in 3.13) or the textbook G.711 formula, which
# differs from audioop on 381 of the 65,536 inputs: a vectorised port of CPython's st_14linear2ulaw.
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_BIAS = 0x84
_CLIP = 8159


def _build_encode_table() -> np.ndarray:
    """uint8[65536] indexed by the int16 sample viewed as uint16."""
    pcm = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), _CLIP) + (_BIAS >> 2)
    seg = np.searchsorted(_SEG_UEND, mag, side="left")  # first segment whose end >= mag
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0xF))
    return (code ^ mask).astype(np.uint8)


def _build_decode_table() -> np.ndarray:
    """int16[256]: CPython's st_ulaw2linear16."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _BIAS - t, t - _BIAS).astype(np.int16)


ENCODE_TABLE = _build_encode_table()
DECODE_TABLE = _build_decode_table()
_DECODE_SQUARED = DECODE_TABLE.astype(np.float64) ** 2


def pcm16_to_mulaw(pcm: np.ndarray | bytes) -> bytes:
    """int16 samples (array or little-endian bytes) -> mu-law bytes."""
    samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes | bytearray) else pcm
    return ENCODE_TABLE[np.asarray(samples, dtype=np.int16).view(np.uint16)].tobytes()


def mulaw_to_pcm16(mulaw: bytes) -> np.ndarray:
    """mu-law bytes -> int16 array."""
    return DECODE_TABLE[np.frombuffer(mulaw, dtype=np.uint8)]


def mulaw_to_pcm16_bytes(mulaw: bytes) -> bytes:
    """mu-law bytes -> little-endian 16-bit PCM bytes (what webrtcvad and WAV files take)."""
    return DECODE_TABLE[np.frombuffer(mulaw, dtype=np.uint8)].tobytes()


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1] -> int16, clipped."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / 32768.0


def resample(audio: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """One-shot resampling of a whole clip (keeps the dtype: int16 or float32)."""
    if in_rate == out_rate:
        return audio
    return soxr.resample(audio, in_rate, out_rate, quality="HQ")


class Resampler:
    """Streaming resampler: feed chunks in order, get resampled chunks out; `last=True` flushes."""

    def __init__(self, in_rate: int, out_rate: int, dtype: str = "int16", quality: str = "HQ"):
        self.in_rate, self.out_rate = in_rate, out_rate
        self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype=dtype, quality=quality)

    def process(self, chunk: np.ndarray, last: bool = False) -> np.ndarray:
        return self._stream.resample_chunk(chunk, last=last)


class FrameSplitter:
    """Cuts a byte stream into exact FRAME_BYTES frames, keeping the remainder for the next push."""

    def __init__(self, frame_bytes: int = FRAME_BYTES):
        self.frame_bytes = frame_bytes
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buf)

    def push(self, data: bytes) -> list[bytes]:
        self._buf += data
        n = len(self._buf) // self.frame_bytes * self.frame_bytes
        if not n:
            return []
        size = self.frame_bytes
        frames = [bytes(self._buf[i : i + size]) for i in range(0, n, size)]
        del self._buf[:n]
        return frames

    def flush(self, pad: int | None = MULAW_SILENCE) -> bytes | None:
        """The remainder as one frame padded with `pad` (or unpadded if pad is None); None if empty."""
        if not self._buf:
            return None
        rest = bytes(self._buf)
        self._buf.clear()
        if pad is None:
            return rest
        return rest + bytes([pad]) * (self.frame_bytes - len(rest))


def split_frames(data: bytes, frame_bytes: int = FRAME_BYTES) -> tuple[list[bytes], bytes]:
    """Whole frames in `data` and the trailing remainder."""
    n = len(data) // frame_bytes * frame_bytes
    return [data[i : i + frame_bytes] for i in range(0, n, frame_bytes)], data[n:]


def mulaw_rms(mulaw: bytes) -> float:
    """RMS of a mu-law frame in 16-bit sample units (0..32124), via a squared-value lookup."""
    if not mulaw:
        return 0.0
    return math.sqrt(float(_DECODE_SQUARED[np.frombuffer(mulaw, dtype=np.uint8)].mean()))


def mulaw_dbfs(mulaw: bytes) -> float:
    """Level of a mu-law frame in dBFS (full scale 32768); -120.0 for digital silence."""
    rms = mulaw_rms(mulaw)
    return 20.0 * math.log10(rms / 32768.0) if rms > 0.5 else -120.0


def silence(ms: int) -> bytes:
    """`ms` milliseconds of mu-law silence."""
    return bytes([MULAW_SILENCE]) * (SAMPLE_RATE * ms // 1000)
