"""The VAD interface (one decision per 20 ms mu-law frame) and a debounced start/stop detector."""

from __future__ import annotations

import abc
from typing import Literal

from calls.core.audio import FRAME_MS

SpeechEvent = Literal["started", "stopped"]


class VAD(abc.ABC):
    """Stateless or lightly stateful per-frame classifier; one instance per call is cheap enough."""

    @abc.abstractmethod
    def is_speech(self, mulaw_frame: bytes) -> bool:
        """True if this FRAME_BYTES mu-law frame holds speech."""


class SpeechDetector:
    """Turns per-frame decisions into "started" / "stopped" events.

    Starts after `start_ms` of consecutive speech; stops after `stop_ms` of consecutive non-speech.
    `process` is called once per frame on the audio path, so it does only integer bookkeeping.
    """

    def __init__(
        self, vad: VAD, *, start_ms: int = 100, stop_ms: int = 400, frame_ms: int = FRAME_MS
    ):
        if start_ms < frame_ms or stop_ms < frame_ms:
            raise ValueError("start_ms and stop_ms must each cover at least one frame")
        self.vad = vad
        self.frame_ms = frame_ms
        self.start_frames = start_ms // frame_ms
        self.stop_frames = stop_ms // frame_ms
        self.speaking = False
        self.last_speech = False  # the decision for the last frame processed
        self._run = 0  # consecutive frames that disagree with the current state

    @property
    def run_ms(self) -> int:
        """How long the current run of frames disagreeing with the state has lasted."""
        return self._run * self.frame_ms

    def process(self, mulaw_frame: bytes) -> SpeechEvent | None:
        speech = self.last_speech = self.vad.is_speech(mulaw_frame)
        if speech != self.speaking:
            self._run += 1
            limit = self.stop_frames if self.speaking else self.start_frames
            if self._run >= limit:
                self.speaking, self._run = speech, 0
                return "started" if speech else "stopped"
        else:
            self._run = 0
        return None

    def reset(self) -> None:
        self.speaking, self._run = False, 0
