"""The local recogniser on the phone path: TTS -> 8 kHz mu-law -> VAD endpointing -> Whisper."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from calls.core.audio import pcm16_to_mulaw, silence
from calls.providers.stt.base import SpeechStarted, STTOptions, Transcript, UtteranceEnd
from calls.providers.stt.local import LocalSTT
from calls.providers.tts.local import CALLER_VOICE, synthesize_mulaw

LINES = {
    "Yes, I am interested in the position.": {"yes", "interested", "position"},
    "What is the salary range?": {"what", "salary", "range"},
    "I would like to speak to a human.": {"speak", "human"},
    "Goodbye.": {"goodbye"},
}
pytestmark = pytest.mark.slow  # the local TTS voices each line, Whisper recognises it


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


@pytest.fixture(scope="module")
def stt() -> LocalSTT:
    return LocalSTT(endpointing_ms=400)


@pytest.fixture(scope="module")
def voiced() -> dict[str, bytes]:
    return {line: synthesize_mulaw(line, CALLER_VOICE) for line in LINES}


async def _run(stt: LocalSTT, audio: bytes, options: STTOptions | None = None, finalize=False):
    """Feed audio as 20 ms media messages (yielding like a socket reader), then close."""
    session = await stt.open(options or STTOptions())
    events = []

    async def read():
        async for event in session.events():
            events.append(event)

    reader = asyncio.create_task(read())
    for i in range(0, len(audio), 160):
        await session.send(audio[i : i + 160])
        if i % 3200 == 0:
            await asyncio.sleep(0)
    if finalize:
        await session.finalize()
    await session.close()
    await asyncio.wait_for(reader, 30)
    return events


async def test_recognises_caller_lines_as_live_stt_events(stt, voiced):
    audio = silence(400) + b"".join(voiced[line] + silence(900) for line in LINES)
    events = await _run(stt, audio)
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, Transcript, UtteranceEnd] * len(LINES)
    finals = [e for e in events if isinstance(e, Transcript)]
    for (line, keywords), final in zip(LINES.items(), finals, strict=True):
        assert final.final and final.speech_final
        assert keywords <= _words(final.text), (line, final.text)
        assert 0 < final.confidence <= 1
    starts = [e.timestamp for e in events if isinstance(e, SpeechStarted)]
    assert starts == sorted(starts) and 0.2 < starts[0] < 0.7
    assert all(f.start < f.end for f in finals)


async def test_silence_and_line_noise_give_no_events(stt):
    noise = np.random.default_rng(0).normal(0, 33, 8000 * 3).astype(np.int16)  # -60 dBFS
    assert await _run(stt, silence(1000) + pcm16_to_mulaw(noise)) == []


async def test_finalize_flushes_an_utterance_still_in_progress(stt, voiced):
    audio = silence(300) + voiced["What is the salary range?"]  # no closing silence
    events = await _run(stt, audio, finalize=True)
    finals = [e for e in events if isinstance(e, Transcript)]
    assert len(finals) == 1 and {"salary", "range"} <= _words(finals[0].text)
    assert isinstance(events[-1], UtteranceEnd)


async def test_interim_transcripts_precede_the_final(voiced):
    stt = LocalSTT(endpointing_ms=400, interim_ms=600)
    line = "I would like to speak to a human."
    events = await _run(stt, silence(300) + voiced[line] + silence(800))
    transcripts = [e for e in events if isinstance(e, Transcript)]
    assert transcripts[-1].final and not any(t.final for t in transcripts[:-1])
    assert len(transcripts) >= 2
    assert {"speak", "human"} <= _words(transcripts[-1].text)


async def test_options_endpointing_applies_when_not_overridden(voiced):
    audio = silence(300) + voiced["Yes, I am interested in the position."] + silence(600)
    total = len(audio) / 8000
    short = await _run(LocalSTT(), audio, STTOptions(endpointing_ms=400))
    long = await _run(LocalSTT(), audio, STTOptions(endpointing_ms=1000))
    for events in (short, long):
        assert [type(e) for e in events] == [SpeechStarted, Transcript, UtteranceEnd]
    assert short[1].end < total - 0.4  # ended by 400 ms of silence
    assert long[1].end == pytest.approx(total, abs=0.03)  # 600 ms is not enough: flushed at close
