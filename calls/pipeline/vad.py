"""Marks where the caller starts and stops speaking, from a local VAD on each inbound frame."""

from __future__ import annotations

from calls.pipeline.frames import AudioIn, CallerSpeechStarted, CallerSpeechStopped, Frame
from calls.pipeline.processor import Processor
from calls.providers.vad.base import SpeechDetector


class VADProcessor(Processor):
    """AudioIn -> AudioIn (with its `speech` decision), plus CallerSpeechStarted /
    CallerSpeechStopped when the state flips."""

    def __init__(self, detector: SpeechDetector) -> None:
        super().__init__()
        self.detector = detector

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, AudioIn):
            event = self.detector.process(frame.mulaw)
            frame.speech = self.detector.last_speech
            if event == "started":
                # The speech began when the debounce run began, not now.
                await self.push(CallerSpeechStarted(frame.t - self.detector.start_frames * 0.02))
            elif event == "stopped":
                await self.push(CallerSpeechStopped(frame.t - self.detector.stop_frames * 0.02))
        await self.push(frame)
