"""ElevenLabsTTS and DeepgramTTS through their real SDKs against the local emulators."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from calls.providers.tts.base import TTSError, TTSOptions, TTSProvider
from calls.providers.tts.deepgram import DeepgramTTS
from calls.providers.tts.elevenlabs import ElevenLabsTTS
from calls.sandbox.emulators.base import Faults, rms
from calls.sandbox.emulators.deepgram import DeepgramEmulator
from calls.sandbox.emulators.elevenlabs import ElevenLabsEmulator

TEXT = "Hello, this is Anna calling about your appointment."  # 51 chars ~ 3.4 s of audio


@dataclass
class Hosted:
    emu: Any
    url: str
    records: list
    set_faults: Any

    def provider(self, key: str = "test-key") -> TTSProvider:
        if isinstance(self.emu, ElevenLabsEmulator):
            return ElevenLabsTTS(api_key=key, base_url=self.url, voice_id="voice-1")
        return DeepgramTTS(api_key=key, base_url=self.url)


@pytest.fixture(params=["elevenlabs", "deepgram"])
async def hosted(request) -> AsyncIterator[Hosted]:
    if request.param == "elevenlabs":
        emu = ElevenLabsEmulator()
        records, attr = emu.requests, "http_faults"
    else:
        emu = DeepgramEmulator()
        records, attr = emu.speak_requests, "speak_faults"
    async with emu.server() as srv:
        yield Hosted(emu, srv.base_url, records, lambda f: setattr(emu, attr, f))


async def collect(
    provider: TTSProvider, text: str = TEXT, options: TTSOptions | None = None
) -> list[bytes]:
    return [c async for c in provider.synthesize(text, options or TTSOptions())]


async def test_streams_plausible_mulaw(hosted):
    chunks = await collect(hosted.provider())
    audio = b"".join(chunks)
    assert len(chunks) > 1
    expected = len(TEXT) * 67 * 8  # ~67 ms of 8 kHz audio per character
    assert 0.9 * expected <= len(audio) <= 1.1 * expected
    assert rms(audio[:1600]) > 500  # speech-like level, not silence or a WAV header
    assert not audio.startswith(b"RIFF")


async def test_wire_request(hosted):
    await collect(hosted.provider(), options=TTSOptions(voice="", model=""))
    rec = hosted.records[-1]
    if isinstance(hosted.emu, ElevenLabsEmulator):
        assert rec.voice_id == "voice-1" and rec.streaming
        assert rec.query == {"output_format": "ulaw_8000", "optimize_streaming_latency": "3"}
        assert rec.body["model_id"] == "eleven_flash_v2_5" and rec.body["text"] == TEXT
    else:
        assert rec.query == {
            "model": "aura-2-thalia-en",
            "encoding": "mulaw",
            "sample_rate": "8000",
            "container": "none",
        }
        assert rec.body == {"text": TEXT}


async def test_options_override_voice(hosted):
    await collect(hosted.provider(), "Hi there.", TTSOptions(voice="aura-2-zeus-en"))
    rec = hosted.records[-1]
    if isinstance(hosted.emu, ElevenLabsEmulator):
        assert rec.voice_id == "aura-2-zeus-en"
    else:
        assert rec.query["model"] == "aura-2-zeus-en"


async def test_first_byte_latency_is_observable(hosted):
    hosted.emu.first_byte_ms = 300
    provider = hosted.provider()
    started = time.monotonic()
    stream = provider.synthesize(TEXT, TTSOptions())
    first = await anext(stream)
    waited = time.monotonic() - started
    rest = [c async for c in stream]
    assert first and rest
    assert 0.29 <= waited < 3.0


async def test_audio_is_handed_on_as_it_arrives(hosted):
    """Paced at real time in 40 ms (320-byte) pieces: the first comes alone, not held back
    until a larger block has arrived."""
    hosted.emu.first_byte_ms, hosted.emu.realtime_factor = 0, 1.0
    stream = hosted.provider().synthesize(TEXT, TTSOptions())
    first = await anext(stream)
    await stream.aclose()
    assert len(first) == 320


@pytest.mark.parametrize("faults", [Faults(status=500), Faults(status=429)])
async def test_http_error_raises_tts_error(hosted, faults):
    hosted.set_faults(faults)
    with pytest.raises(TTSError, match=str(faults.status)):
        await collect(hosted.provider())
    assert len(hosted.records) == 1  # no silent retries


async def test_bad_key_raises_tts_error(hosted):
    with pytest.raises(TTSError, match="401"):
        await collect(hosted.provider(key="wrong"))


async def test_drop_mid_stream_raises_tts_error(hosted):
    hosted.set_faults(Faults(drop_after_messages=3))
    received: list[bytes] = []
    with pytest.raises(TTSError):
        async for chunk in hosted.provider().synthesize(TEXT, TTSOptions()):
            received.append(chunk)
    assert sum(map(len, received)) < len(TEXT) * 67 * 8 // 2


async def test_blank_text_yields_nothing(hosted):
    assert await collect(hosted.provider(), "  ") == []
    assert hosted.records == []


async def test_elevenlabs_requests_alternate_over_pools_that_keep_their_connection():
    emu = ElevenLabsEmulator()
    async with emu.server() as srv:
        tts = ElevenLabsTTS(api_key="test-key", base_url=srv.base_url, voice_id="v", pool_shards=2)
        for _ in range(6):
            assert await collect(tts, "Hello.")
    peers = [r.peer for r in emu.requests]
    assert len(set(peers)) == 2 and all(peers)  # one kept-alive connection per pool
    assert peers[0::2] == [peers[0]] * 3 and peers[1::2] == [peers[1]] * 3


async def test_elevenlabs_needs_a_voice():
    with pytest.raises(TTSError, match="voice"):
        await collect(ElevenLabsTTS(api_key="k", base_url="http://127.0.0.1:9"))
