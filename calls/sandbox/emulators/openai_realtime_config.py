"""The Realtime `session` object: its defaults, session.update merging, and its audio formats."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np

from calls.sandbox.emulators.base import mulaw_decode, rms, text_audio

MS_PER_CHAR = 67


SERVER_VAD_DEFAULTS = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}


def default_session(model: str, session_id: str) -> dict:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": int(time.time()) + 3600,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": dict(SERVER_VAD_DEFAULTS),
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "alloy",
                "speed": 1.0,
            },
        },
        "include": None,
    }


_REPLACED_WHOLE = frozenset(
    {"format", "turn_detection", "transcription", "noise_reduction", "tools"}
)


def deep_merge(base: dict, update: dict) -> dict:
    """Merge a session.update into the session; union-typed fields are replaced, not merged."""
    for key, value in update.items():
        if (
            isinstance(value, dict)
            and isinstance(base.get(key), dict)
            and (key not in _REPLACED_WHOLE)
        ):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


@dataclass(frozen=True)
class AudioFormat:
    """The GA formats this emulator speaks: audio/pcmu (8 kHz) and audio/pcm (24 kHz PCM16)."""

    kind: str
    rate: int

    @classmethod
    def of(cls, fmt: dict | None) -> AudioFormat:
        kind = (fmt or {}).get("type") or "audio/pcm"
        return cls(kind, 8000 if kind == "audio/pcmu" else 24000)

    @property
    def bytes_per_ms(self) -> int:
        return 8 if self.kind == "audio/pcmu" else 48

    def level(self, frame: bytes) -> float:
        """RMS on the int16 scale."""
        if self.kind == "audio/pcmu":
            return rms(frame)
        pcm = np.frombuffer(frame[: len(frame) // 2 * 2], dtype="<i2").astype(np.float64)
        return float(np.sqrt(np.mean(pcm * pcm))) if len(pcm) else 0.0

    def speech(self, text: str) -> bytes:
        """Speech-like audio for `text`, MS_PER_CHAR ms per character."""
        mulaw = text_audio(text, ms_per_char=MS_PER_CHAR)
        if self.kind == "audio/pcmu":
            return mulaw
        return np.repeat(mulaw_decode(mulaw), 3).astype("<i2").tobytes()
