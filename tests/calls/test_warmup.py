"""Work done while the phone rings: the STT connection is opened and the greeting synthesised
before the stream starts, on the server's loop, from the dialling thread."""

import asyncio

import pytest

from calls.live import warmup
from calls.pipeline.tts import audio_cache, cache_key
from calls.providers.stt.base import STTOptions
from calls.providers.tts.base import TTSOptions
from tests.support.wait import wait_until


@pytest.mark.django_db(transaction=True)
async def test_stt_is_opened_and_greeting_synthesised_while_ringing(hosted_fakes):
    warmup.remember_loop()
    await asyncio.to_thread(warmup.preopen_stt, "call-1", STTOptions())
    await wait_until(lambda: "call-1" in warmup._stt_sessions)
    assert len(hosted_fakes.deepgram.connections) == 1  # opened before any audio
    session = warmup.take_stt("call-1")
    assert session is not None and warmup.take_stt("call-1") is None  # taken once
    await session.close()

    options = TTSOptions(voice="v1")
    await asyncio.to_thread(warmup.prefetch_greeting, "Hello there.", options)
    from calls.live import providers as registry

    key = cache_key(registry.provider("tts"), options, "Hello there.")
    await wait_until(lambda: audio_cache.get(key) is not None)
    assert len(audio_cache.get(key)) > 0


def test_nothing_is_scheduled_without_a_running_server_loop():
    warmup.preopen_stt("call-2", STTOptions())
    warmup.prefetch_greeting("Hi.", TTSOptions())
    assert warmup.take_stt("call-2") is None
