"""WebRTC VAD on 8 kHz mu-law frames, with a cheap peak-level gate against line noise."""

from __future__ import annotations

import webrtcvad

from calls.core.audio import DECODE_TABLE, SAMPLE_RATE, mulaw_to_pcm16_bytes
from calls.providers.vad.base import VAD


def _loud_table(min_peak_dbfs: float) -> bytes:
    """bytes.translate table: 1 for mu-law codes at or above the level, else 0."""
    threshold = 32768.0 * 10 ** (min_peak_dbfs / 20.0)
    return bytes(int(abs(int(v)) >= threshold) for v in DECODE_TABLE)


class WebRTCVAD(VAD):
    """`mode` 0-3 (3 = most aggressive at rejecting non-speech; 0 is useless in noise).

    `min_peak_dbfs`: frames whose loudest sample is below this level are non-speech without running
    the VAD (mode 2 still fires on ~4% of -35 dBFS noise frames); None disables the gate.
    """

    def __init__(self, mode: int = 2, *, min_peak_dbfs: float | None = -45.0):
        self.mode = mode
        self._vad = webrtcvad.Vad(mode)
        self._loud = _loud_table(min_peak_dbfs) if min_peak_dbfs is not None else None

    def is_speech(self, mulaw_frame: bytes) -> bool:
        # translate + membership test run in C: about 0.3 us, cheaper than decoding the frame.
        if self._loud is not None and b"\x01" not in mulaw_frame.translate(self._loud):
            return False
        return self._vad.is_speech(mulaw_to_pcm16_bytes(mulaw_frame), SAMPLE_RATE)
