"""Streams caller audio to the STT provider and turns its events into transcript frames."""

from __future__ import annotations

import logging

from calls.pipeline.frames import AudioIn, CallerTranscript, EventRecord, Frame
from calls.pipeline.processor import Processor
from calls.providers.stt.base import (
    STTError,
    STTOptions,
    STTProvider,
    STTSession,
    Transcript,
    UtteranceEnd,
)

log = logging.getLogger(__name__)
MAX_EARLY_FRAMES = 250  # 5 s of 20 ms frames
# Speech, and the `endpointing_ms` of silence after it in which the provider may decide that the
# caller stopped (plus this margin), go out frame by frame: interims and the endpoint are never
# held back. Only longer silences may be sent in larger pieces. (The VAD's own hangover marks a
# few frames after speech as speech: holding "non-speech" alone would delay the endpoint.)
URGENT_MARGIN_MS = 200


class STTProcessor(Processor):
    """AudioIn -> (sent to STT) AudioIn; provider events -> CallerTranscript / EventRecord."""

    def __init__(
        self, provider: STTProvider, options: STTOptions, *, session: STTSession | None = None
    ) -> None:
        """`session`: one opened ahead (while the phone rang) to use instead of opening one."""
        super().__init__()
        self.provider = provider
        self.options = options
        self._opened = session
        self.session: STTSession | None = None
        self._failed = False
        # Caller audio that arrives while the STT connection is still opening (bounded).
        self._early: list[bytes] = []
        self._urgent_frames = (max(options.endpointing_ms, 0) + URGENT_MARGIN_MS) // 20
        self._quiet = self._urgent_frames + 1  # consecutive frames without speech (VAD)

    async def start(self) -> None:
        self.spawn(self._run(), "stt-reader")

    async def _run(self) -> None:
        try:
            self.session = self._opened or await self.provider.open(self.options)
        except Exception as exc:
            self._failed = True
            log.warning("STT could not open: %s", exc)
            await self.push(
                EventRecord("error", {"provider": "stt", "reason": f"open failed: {exc}"})
            )
            return
        early, self._early = self._early, []
        for mulaw in early:
            await self.session.send(mulaw)
        async for event in self.session.events():
            if isinstance(event, Transcript):
                await self.push(CallerTranscript(event.text, event.final, event.speech_final))
            elif isinstance(event, UtteranceEnd):
                await self.push(CallerTranscript("", final=True, speech_final=True))
            elif isinstance(event, STTError):
                payload = {"provider": "stt", "reason": event.reason, "fatal": event.fatal}
                await self.push(EventRecord("error", payload))

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, AudioIn):
            if self.session is not None:
                try:
                    await self.session.send(frame.mulaw, urgent=self._urgent(frame))
                except Exception as exc:  # the provider reconnects on its own; never block audio
                    log.debug("STT send failed: %s", exc)
            elif not self._failed and len(self._early) < MAX_EARLY_FRAMES:
                self._early.append(frame.mulaw)
        await self.push(frame)

    def _urgent(self, frame: AudioIn) -> bool:
        """True for speech and for the silence right after it."""
        if frame.speech is None:  # no VAD in front: every frame may matter
            return True
        if frame.speech:
            self._quiet = 0
            return True
        if self._quiet <= self._urgent_frames:
            self._quiet += 1
        return self._quiet <= self._urgent_frames

    async def stop(self) -> None:
        if self.session is not None:
            try:
                await self.session.close()
            except Exception:
                log.debug("STT close failed", exc_info=True)
        await super().stop()
