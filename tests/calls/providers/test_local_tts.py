"""The local synthesiser: speech-length 8 kHz mu-law, streamed off the event loop, cached."""

from __future__ import annotations

import asyncio
import importlib.util
import time

import numpy as np
import pytest

from calls.core.audio import FRAME_BYTES, mulaw_dbfs, split_frames
from calls.providers.tts import local
from calls.providers.tts.base import TTSError, TTSOptions
from calls.providers.tts.local import LocalTTS, synthesize_mulaw, synthesize_pcm

TEXT = "Hello, this is Anna from Acme Logistics. Do you have a minute? It will be quick."


async def _collect(tts: LocalTTS, text: str, options: TTSOptions | None = None) -> list[bytes]:
    return [chunk async for chunk in tts.synthesize(text, options or TTSOptions())]


def _speech_ratio(mulaw: bytes) -> float:
    frames = split_frames(mulaw)[0]
    return sum(mulaw_dbfs(f) > -45 for f in frames) / len(frames)


async def test_streams_speech_length_mulaw_in_frame_multiples():
    chunks = await _collect(LocalTTS(cache=False), TEXT)
    audio = b"".join(chunks)
    assert len(chunks) > 3  # three sentences, each cut into <= 200 ms pieces
    assert all(len(c) % FRAME_BYTES == 0 for c in chunks)
    assert max(len(c) for c in chunks) <= 1600
    seconds = len(audio) / 8000
    assert 3.0 < seconds < 9.0  # 14 words at a natural pace
    assert _speech_ratio(audio) > 0.5


async def test_first_chunk_arrives_before_the_whole_text_is_synthesised():
    tts = LocalTTS(cache=False)
    await tts.warm_up(TTSOptions())
    start = time.perf_counter()
    stream = tts.synthesize(TEXT + " " + TEXT, TTSOptions())
    first = await anext(stream)
    first_s = time.perf_counter() - start
    rest = [c async for c in stream]
    total_s = time.perf_counter() - start
    assert first and rest and first_s < total_s / 2


async def test_event_loop_keeps_running_during_synthesis():
    tts = LocalTTS(cache=False)
    await tts.warm_up(TTSOptions())
    gaps: list[float] = []

    async def ticker():
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await _collect(tts, TEXT * 2)
    task.cancel()
    assert len(gaps) > 5 and max(gaps) < 0.1


async def test_repeated_text_comes_from_the_cache():
    tts = LocalTTS()
    text = "Thank you for calling Acme Logistics."
    first = b"".join(await _collect(tts, text))
    assert local._CACHE.get(("hibari", 1.0, text)) == first
    start = time.perf_counter()
    again = b"".join(await _collect(tts, text))
    assert again == first and time.perf_counter() - start < 0.01


async def test_empty_text_yields_nothing_and_unknown_voice_falls_back():
    tts = LocalTTS(cache=False)
    assert await _collect(tts, "   ") == []
    audio = b"".join(await _collect(tts, "Okay.", TTSOptions(voice="some-hosted-voice-id")))
    assert len(audio) > 1600


def test_sync_pcm_for_a_simulated_caller_in_another_voice():
    agent, agent_rate = synthesize_pcm("What is the salary range?")
    caller, caller_rate = synthesize_pcm("What is the salary range?", local.CALLER_VOICE)
    assert agent.dtype == np.int16 and agent_rate == 24000
    assert caller_rate < agent_rate  # played slower: a deeper voice at the same pace
    assert 0.8 < (len(caller) / caller_rate) / (len(agent) / agent_rate) < 1.25
    assert len(synthesize_mulaw("What is the salary range?")) == pytest.approx(
        len(agent) / 3, abs=FRAME_BYTES
    )


def test_unknown_voice_in_the_sync_api_raises():
    with pytest.raises(TTSError):
        synthesize_pcm("Hello.", "nobody")


@pytest.mark.skipif(importlib.util.find_spec("piper") is None, reason="piper-tts not installed")
def test_piper_voice():
    pcm, rate = synthesize_pcm("Goodbye and thank you.", "piper")
    assert rate == 22050 and 0.8 < len(pcm) / rate < 4.0
