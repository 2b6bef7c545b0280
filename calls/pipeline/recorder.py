"""Stereo call recording: caller on the left, agent on the right, aligned on the stream's clock."""

from __future__ import annotations

import io
import wave

import numpy as np

from calls.core.audio import DECODE_TABLE, MULAW_SILENCE, SAMPLE_RATE

SILENCE = bytes([MULAW_SILENCE])


class StereoRecorder:
    """Caller frames are placed back to back (the carrier sends a gapless 20 ms stream); agent
    frames at their playhead time, relative to `t0` (the stream's start)."""

    def __init__(self, t0: float, *, max_seconds: int = 4 * 3600) -> None:
        self.t0 = t0
        self.max_bytes = max_seconds * SAMPLE_RATE
        self._caller = bytearray()
        self._agent = bytearray()

    def caller(self, mulaw: bytes) -> None:
        if len(self._caller) < self.max_bytes:
            self._caller += mulaw

    def agent(self, mulaw: bytes, play_at: float) -> None:
        pos = max(0, round((play_at - self.t0) * SAMPLE_RATE))
        if pos + len(mulaw) > self.max_bytes:
            return
        if pos > len(self._agent):
            self._agent += SILENCE * (pos - len(self._agent))
        self._agent[pos : pos + len(mulaw)] = mulaw

    @property
    def seconds(self) -> float:
        return max(len(self._caller), len(self._agent)) / SAMPLE_RATE

    def wav(self) -> bytes:
        """16-bit stereo WAV at 8 kHz."""
        n = max(len(self._caller), len(self._agent))
        left = bytes(self._caller) + SILENCE * (n - len(self._caller))
        right = bytes(self._agent) + SILENCE * (n - len(self._agent))
        stereo = np.empty((n, 2), dtype="<i2")
        stereo[:, 0] = DECODE_TABLE[np.frombuffer(left, dtype=np.uint8)]
        stereo[:, 1] = DECODE_TABLE[np.frombuffer(right, dtype=np.uint8)]
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(stereo.tobytes())
        return out.getvalue()
