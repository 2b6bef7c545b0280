"""The Deepgram emulator on the wire: deepgram-sdk 7 and raw WebSocket/HTTP clients against it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
import warnings
from collections.abc import AsyncIterator

import numpy as np
import pytest
import websockets
from deepgram import AsyncDeepgramClient, DeepgramClient
from deepgram.environment import DeepgramClientEnvironment

from calls.sandbox.emulators.base import (
    EmulatorServer,
    Faults,
    mulaw_decode,
    mulaw_encode,
    rms,
    silence,
    speech_like,
    text_audio,
)
from calls.sandbox.emulators.deepgram import NET0001, DeepgramEmulator

LISTEN = dict(model="nova-3", encoding="mulaw", sample_rate=8000, channels=1)


def env(url: str) -> DeepgramClientEnvironment:
    ws = url.replace("http://", "ws://")
    return DeepgramClientEnvironment(base=url, production=ws, agent=ws, agent_rest=url)


@pytest.fixture
async def server() -> AsyncIterator[tuple[DeepgramEmulator, str]]:
    emu = DeepgramEmulator(final_latency_ms=100)
    async with emu.server() as srv:
        yield emu, srv.base_url


def client(url: str, key: str = "test-key") -> AsyncDeepgramClient:
    return AsyncDeepgramClient(api_key=key, environment=env(url))


async def session(url: str, audio: bytes, *, close: bool = True, **params) -> list[dict]:
    """Send `audio` on one socket (then CloseStream) and return every server message as JSON."""
    out: list[dict] = []
    async with client(url).listen.v1.connect(**LISTEN, **params) as conn:
        for i in range(0, len(audio), 160):
            await conn.send_media(audio[i : i + 160])
        if close:
            await conn.send_close_stream()
        async with asyncio.timeout(5):
            async for msg in conn:
                out.append(msg.dict())
    return out


def types(messages: list[dict]) -> list[str]:
    return [m["type"] for m in messages]


# --- audio helpers ---------------------------------------------------------------------------


def test_mulaw_matches_audioop_bit_for_bit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    assert mulaw_encode(pcm) == audioop.lin2ulaw(pcm.tobytes(), 2)
    every = bytes(range(256))
    assert mulaw_decode(every).tobytes() == audioop.ulaw2lin(every, 2)


def test_synthetic_speech_is_loud_everywhere_and_deterministic():
    audio = speech_like(1000, seed=7)
    assert len(audio) == 8000
    assert min(rms(audio[i : i + 160]) for i in range(0, 8000, 160)) > 1000
    assert rms(silence(100)) == 0.0
    assert text_audio("hello") == text_audio("hello") != text_audio("hellp")
    assert abs(len(text_audio("x" * 30)) - 30 * 67 * 8) <= 80  # ~67 ms per character
    assert text_audio("  ") == b""


# --- /v1/listen --------------------------------------------------------------------------------


async def test_full_feature_session(server):
    emu, url = server
    emu.script(["hello there"])
    audio = silence(100) + speech_like(500) + silence(1100)
    msgs = await session(
        url, audio, interim_results=True, endpointing=300, utterance_end_ms=1000, vad_events=True
    )
    assert types(msgs)[0] == "SpeechStarted"
    assert types(msgs)[-2:] == ["UtteranceEnd", "Metadata"]
    results = [m for m in msgs if m["type"] == "Results"]
    assert [r["is_final"] for r in results][-1] is True and not results[0]["is_final"]
    final = results[-1]
    alt = final["channel"]["alternatives"][0]
    assert alt["transcript"] == "hello there" and final["speech_final"]
    assert [w["word"] for w in alt["words"]] == ["hello", "there"]
    assert final["start"] == pytest.approx(0.1) and final["duration"] == pytest.approx(0.5)
    meta = msgs[-1]
    assert meta["duration"] == pytest.approx(1.7) and meta["channels"] == 1
    rec = emu.connections[0]
    assert rec.bytes_received == len(audio) and rec.control == [{"type": "CloseStream"}]
    assert rec.query["vad_events"] == "true" and rec.close_reason == "CloseStream"


async def test_features_off_means_no_vad_interims_or_utterance_end(server):
    emu, url = server
    emu.script(["just the final"])
    msgs = await session(url, speech_like(700) + silence(1500), endpointing=300)
    assert types(msgs) == ["Results", "Metadata"]
    assert msgs[0]["is_final"] and msgs[0]["speech_final"]


async def test_endpointing_false_waits_for_close_stream(server):
    emu, url = server
    emu.script(["no endpoint"])
    msgs = await session(url, speech_like(400) + silence(2000), endpointing="false")
    final = msgs[0]
    assert final["is_final"] and not final["speech_final"] and not final["from_finalize"]
    assert final["channel"]["alternatives"][0]["transcript"] == "no endpoint"


async def test_final_latency_counts_from_speech_end(server):
    emu, url = server
    emu.final_latency_ms = 400
    emu.script(["timed"])
    async with client(url).listen.v1.connect(**LISTEN, endpointing=100) as conn:
        speech = speech_like(500)
        for i in range(0, len(speech), 160):
            await conn.send_media(speech[i : i + 160])
        sent_at = asyncio.get_running_loop().time()
        await conn.send_media(silence(300))
        async with asyncio.timeout(5):
            msg = await conn.recv()
        assert asyncio.get_running_loop().time() - sent_at >= 0.39
        assert msg.channel.alternatives[0].transcript == "timed"


async def test_finalize_and_tagged_script(server):
    emu, url = server
    emu.script(["global"])
    emu.script(["for call 7"], tag="call-7")
    async with client(url).listen.v1.connect(**LISTEN, tag="call-7") as conn:
        await conn.send_media(speech_like(300))
        await conn.send_finalize()
        async with asyncio.timeout(5):
            msg = await conn.recv()
    assert msg.from_finalize and msg.is_final and not msg.speech_final
    assert msg.channel.alternatives[0].transcript == "for call 7"
    assert emu.pending_script() == ["global"] and emu.pending_script("call-7") == []


async def test_unsent_final_returns_to_the_script(server):
    emu, url = server
    emu.final_latency_ms = 2000
    emu.script(["keep me", "after"])
    async with client(url).listen.v1.connect(**LISTEN, endpointing=100) as conn:
        await conn.send_media(speech_like(300) + silence(300))
        await asyncio.sleep(0.1)
    for _ in range(50):
        if emu.connections[0].closed:
            break
        await asyncio.sleep(0.02)
    assert emu.pending_script() == ["keep me", "after"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Token nope"}])
async def test_bad_or_missing_key_is_401_before_upgrade(server, headers):
    emu, url = server
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(
            url.replace("http", "ws") + "/v1/listen?encoding=mulaw", additional_headers=headers
        ):
            pass
    assert err.value.response.status_code == 401
    assert emu.connections[0].status == 401


async def test_faults_reject_then_recover(server):
    emu, url = server
    emu.listen_faults = Faults(status=500, times=1)
    with pytest.raises(Exception, match="500"):
        await session(url, b"")
    assert await session(url, silence(100)) != []  # Metadata on the second try


async def test_drop_after_seconds_cuts_the_socket(server):
    emu, url = server
    emu.listen_faults = Faults(drop_after_s=0.1)
    with pytest.raises(websockets.ConnectionClosedError):
        async with websockets.connect(
            url.replace("http", "ws") + "/v1/listen",
            additional_headers={"Authorization": "Token test-key"},
        ) as ws:
            async with asyncio.timeout(3):
                await ws.recv()
    assert emu.connections[0].close_reason == "dropped (fault)"


async def test_idle_socket_closes_with_net0001():
    emu = DeepgramEmulator(idle_timeout_s=0.3)
    async with (
        emu.server() as srv,
        websockets.connect(
            srv.ws_url + "/v1/listen", additional_headers={"Authorization": "Token test-key"}
        ) as ws,
    ):
        with pytest.raises(websockets.ConnectionClosedError) as err:
            async with asyncio.timeout(3):
                await ws.recv()
    assert err.value.rcvd.code == 1011 and "NET-0001" in err.value.rcvd.reason
    assert emu.connections[0].close_reason == NET0001


async def test_any_key_mode_and_unknown_control_message(server):
    emu, url = server
    emu.api_key = None  # accept any key
    async with websockets.connect(
        url.replace("http", "ws") + "/v1/listen", additional_headers={"Authorization": "Token any"}
    ) as ws:
        await ws.send(json.dumps({"type": "Bogus"}))
        async with asyncio.timeout(3):
            reply = json.loads(await ws.recv())
    assert reply["type"] == "Error" and reply["variant"] == "SchemaError"


# --- /v1/speak ---------------------------------------------------------------------------------


async def test_speak_streams_raw_or_wav(server):
    emu, url = server
    dg = client(url)
    raw = b"".join(
        [
            c
            async for c in dg.speak.v1.audio.generate(
                text="Good morning",
                model="aura-2-thalia-en",
                encoding="mulaw",
                sample_rate=8000,
                container="none",
            )
        ]
    )
    wav = b"".join(
        [
            c
            async for c in dg.speak.v1.audio.generate(
                text="Good morning", encoding="mulaw", sample_rate=8000
            )
        ]
    )
    assert raw == text_audio("Good morning")
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and wav[44:] == raw
    pcm = b"".join(
        [
            c
            async for c in dg.speak.v1.audio.generate(
                text="Good morning", encoding="linear16", sample_rate=8000, container="none"
            )
        ]
    )
    assert len(pcm) == 2 * len(raw)
    assert emu.speak_requests[0].query["container"] == "none"


async def test_speak_rejects_formats_it_cannot_make(server):
    emu, url = server
    with pytest.raises(Exception, match="400"):
        async for _ in client(url).speak.v1.audio.generate(text="x", encoding="mp3"):
            pass
    assert emu.speak_requests[0].status == 400


def test_thread_mode_serves_sync_clients():
    emu = DeepgramEmulator()
    srv = EmulatorServer(emu.app()).start_in_thread()
    try:
        dg = DeepgramClient(api_key="test-key", environment=env(srv.base_url))
        audio = b"".join(
            dg.speak.v1.audio.generate(
                text="Sync caller", encoding="mulaw", sample_rate=8000, container="none"
            )
        )
        assert audio == text_audio("Sync caller")
    finally:
        srv.stop()


def test_runs_as_its_own_process():
    proc = subprocess.Popen(
        [sys.executable, "-m", "calls.sandbox.emulators.deepgram", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "deepgram emulator listening on http://127.0.0.1:" in line
        base = line.rsplit(" ", 1)[1].strip()
        req = urllib.request.Request(
            base + "/v1/speak?encoding=mulaw&container=none",
            data=b'{"text": "Hi"}',
            headers={"Authorization": "Token test-key", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.read() == text_audio("Hi")
    finally:
        proc.terminate()
        proc.wait(5)
