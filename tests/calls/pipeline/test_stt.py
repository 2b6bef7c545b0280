"""The STT processor: which caller audio it marks urgent for the provider."""

from __future__ import annotations

import asyncio

from calls.pipeline.frames import AudioIn, Frame
from calls.pipeline.processor import Pipeline, Processor, Sink
from calls.pipeline.stt import STTProcessor
from calls.pipeline.vad import VADProcessor
from calls.providers.stt.base import STTOptions
from calls.providers.vad.base import SpeechDetector
from tests.support.pipeline import EnergyVAD, FakeSTT, FakeSTTSession

SPEECH, SILENCE = b"\x10" * 160, b"\xff" * 160


async def run(processors: list[Processor], stt: STTProcessor, frames: list[Frame]) -> list[Frame]:
    out: list[Frame] = []
    pipeline = Pipeline([*processors, Sink(out.append)])
    await pipeline.start()
    await asyncio.sleep(0)  # the STT processor takes its session in a task
    assert stt.session is not None
    for frame in frames:
        await pipeline.send(frame)
    await pipeline.stop()
    return out


async def test_only_silence_long_after_speech_may_be_held_back():
    session = FakeSTTSession()
    stt = STTProcessor(FakeSTT(), STTOptions(endpointing_ms=300), session=session)
    vad = VADProcessor(SpeechDetector(EnergyVAD(), start_ms=60, stop_ms=300))
    audio = [SILENCE] * 50 + [SPEECH] * 30 + [SILENCE] * 50 + [SPEECH] * 5 + [SILENCE] * 3
    frames = [AudioIn(mulaw, i * 0.02) for i, mulaw in enumerate(audio)]
    out = await run([vad, stt], stt, frames)

    assert [f.speech for f in out if isinstance(f, AudioIn)] == [m == SPEECH for m in audio]
    assert bytes(session.audio) == b"".join(audio)
    # Speech, and 300 ms endpointing + 200 ms margin = the 25 frames after it, go out at once.
    expected = [False] * 50 + [True] * 30 + [True] * 25 + [False] * 25 + [True] * 5 + [True] * 3
    assert session.urgent == expected


async def test_without_a_vad_every_frame_is_urgent():
    session = FakeSTTSession()
    stt = STTProcessor(FakeSTT(), STTOptions(endpointing_ms=300), session=session)
    await run([stt], stt, [AudioIn(SPEECH, 0.0), AudioIn(SILENCE, 0.02)])
    assert session.urgent == [True, True]
