"""The ElevenLabs emulator on the wire: the elevenlabs SDK (REST) and a raw stream-input client."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator

import pytest
import websockets
from elevenlabs import AsyncElevenLabs, ElevenLabs
from elevenlabs.core.api_error import ApiError

from calls.sandbox.emulators.base import EmulatorServer, Faults, text_audio
from calls.sandbox.emulators.elevenlabs import ElevenLabsEmulator

KEY = {"xi-api-key": "test-key"}


@pytest.fixture
async def server() -> AsyncIterator[tuple[ElevenLabsEmulator, str]]:
    emu = ElevenLabsEmulator()
    async with emu.server() as srv:
        yield emu, srv.base_url


def stream_input_url(base: str, voice: str = "v1", fmt: str = "ulaw_8000") -> str:
    return (
        base.replace("http://", "ws://") + f"/v1/text-to-speech/{voice}/stream-input"
        f"?model_id=eleven_flash_v2_5&output_format={fmt}"
    )


async def read_all(ws, *, until_error: bool = False) -> list[dict]:
    """Every message until the server closes (an error close raises unless `until_error`)."""
    out = []
    async with asyncio.timeout(5):
        try:
            async for raw in ws:
                out.append(json.loads(raw))
        except websockets.ConnectionClosedError:
            if not until_error:
                raise
    return out


# --- REST --------------------------------------------------------------------------------------


async def test_stream_and_convert_via_sdk(server):
    emu, url = server
    el = AsyncElevenLabs(api_key="test-key", base_url=url)
    streamed = b"".join(
        [
            c
            async for c in el.text_to_speech.stream(
                "voice-9",
                text="Hello there",
                model_id="eleven_flash_v2_5",
                output_format="ulaw_8000",
                optimize_streaming_latency=3,
            )
        ]
    )
    converted = b"".join(
        [
            c
            async for c in el.text_to_speech.convert(
                "voice-9", text="Hello there", output_format="ulaw_8000"
            )
        ]
    )
    assert streamed == converted == text_audio("Hello there")
    first, second = emu.requests
    assert first.streaming and not second.streaming and first.voice_id == "voice-9"
    assert first.query == {"optimize_streaming_latency": "3", "output_format": "ulaw_8000"}
    assert first.body == {"text": "Hello there", "model_id": "eleven_flash_v2_5"}


async def test_pcm_output_is_twice_the_bytes(server):
    _, url = server
    el = AsyncElevenLabs(api_key="test-key", base_url=url)
    pcm = b"".join(
        [
            c
            async for c in el.text_to_speech.stream(
                "v", text="Hello there", output_format="pcm_8000"
            )
        ]
    )
    assert len(pcm) == 2 * len(text_audio("Hello there"))


@pytest.mark.parametrize(
    ("key", "fmt", "status"),
    [
        ("wrong", "ulaw_8000", 401),
        ("test-key", "mp3_44100_128", 400),
    ],
)
async def test_rest_errors(server, key, fmt, status):
    emu, url = server
    el = AsyncElevenLabs(api_key=key, base_url=url)
    with pytest.raises(ApiError) as err:
        async for _ in el.text_to_speech.stream("v", text="Hi", output_format=fmt):
            pass
    assert err.value.status_code == status and emu.requests[0].status == status


async def test_rest_fault_then_recovery(server):
    emu, url = server
    emu.http_faults = Faults(status=503, times=1)
    el = AsyncElevenLabs(api_key="test-key", base_url=url)
    with pytest.raises(ApiError):
        async for _ in el.text_to_speech.stream(
            "v", text="Hi", output_format="ulaw_8000", request_options={"max_retries": 0}
        ):
            pass
    audio = b"".join(
        [c async for c in el.text_to_speech.stream("v", text="Hi", output_format="ulaw_8000")]
    )
    assert audio == text_audio("Hi")


def test_thread_mode_serves_sync_clients():
    emu = ElevenLabsEmulator()
    srv = EmulatorServer(emu.app()).start_in_thread()
    try:
        el = ElevenLabs(api_key="test-key", base_url=srv.base_url)
        audio = b"".join(el.text_to_speech.stream("v", text="Sync", output_format="ulaw_8000"))
        assert audio == text_audio("Sync")
    finally:
        srv.stop()


# --- stream-input WebSocket ----------------------------------------------------------------


async def test_stream_input_protocol(server):
    emu, url = server
    async with websockets.connect(stream_input_url(url), additional_headers=KEY) as ws:
        await ws.send(
            json.dumps(
                {
                    "text": " ",
                    "voice_settings": {"stability": 0.5},
                    "generation_config": {"chunk_length_schedule": [50]},
                }
            )
        )
        await ws.send(json.dumps({"text": "Hello there. "}))
        await ws.send(json.dumps({"text": "How are you today? ", "flush": True}))
        await ws.send(json.dumps({"text": "Bye. "}))
        await ws.send(json.dumps({"text": ""}))
        msgs = await read_all(ws)
    assert ws.close_code == 1000
    assert msgs[-1] == {"isFinal": True}
    audio_msgs = msgs[:-1]
    assert all(m["isFinal"] is None for m in audio_msgs)
    audio = b"".join(base64.b64decode(m["audio"]) for m in audio_msgs)
    texts = ["Hello there. How are you today? ", "Bye. "]
    assert audio == b"".join(text_audio(t) for t in texts)
    chars = "".join("".join(m["alignment"]["chars"]) for m in audio_msgs)
    assert chars == "".join(texts)
    assert all(
        len(m["normalizedAlignment"]["charStartTimesMs"]) == len(m["normalizedAlignment"]["chars"])
        for m in audio_msgs
    )
    assert emu.ws_sessions[0].generations == texts


async def test_stream_input_schedule_triggers_generation_before_close(server):
    _, url = server
    async with websockets.connect(stream_input_url(url), additional_headers=KEY) as ws:
        await ws.send(
            json.dumps({"text": " ", "generation_config": {"chunk_length_schedule": [20]}})
        )
        await ws.send(json.dumps({"text": "This sentence is long enough. "}))
        async with asyncio.timeout(3):
            first = json.loads(await ws.recv())
        assert first["audio"]
        await ws.send(json.dumps({"text": ""}))
        await read_all(ws)


async def test_stream_input_key_in_first_message(server):
    _, url = server
    async with websockets.connect(stream_input_url(url)) as ws:
        await ws.send(json.dumps({"text": " ", "xi-api-key": "test-key"}))
        await ws.send(json.dumps({"text": "Hi. ", "flush": True}))
        await ws.send(json.dumps({"text": ""}))
        assert (await read_all(ws))[-1] == {"isFinal": True}
    async with websockets.connect(stream_input_url(url)) as ws:
        await ws.send(json.dumps({"text": " ", "xi-api-key": "wrong"}))
        msgs = await read_all(ws, until_error=True)
    assert msgs == [{"message": "Invalid API key", "error": "invalid_api_key", "code": 1008}]
    assert ws.close_code == 1008


async def test_stream_input_bad_header_key_is_401(server):
    _, url = server
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(
            stream_input_url(url), additional_headers={"xi-api-key": "wrong"}
        ):
            pass
    assert err.value.response.status_code == 401


async def test_stream_input_inactivity_timeout(server):
    _, url = server
    async with websockets.connect(
        stream_input_url(url) + "&inactivity_timeout=0.2", additional_headers=KEY
    ) as ws:
        await ws.send(json.dumps({"text": " "}))
        msgs = await read_all(ws, until_error=True)
    assert msgs[0]["error"] == "input_timeout_exceeded" and ws.close_code == 1008


async def test_stream_input_drop_fault(server):
    emu, url = server
    emu.ws_faults = Faults(drop_after_messages=2)
    async with websockets.connect(stream_input_url(url), additional_headers=KEY) as ws:
        await ws.send(json.dumps({"text": " "}))
        await ws.send(
            json.dumps({"text": "A long enough sentence to need chunks. ", "flush": True})
        )
        with pytest.raises(websockets.ConnectionClosedError):
            await read_all(ws)
    assert emu.ws_sessions[0].audio_messages == 2


def test_runs_as_its_own_process():
    proc = subprocess.Popen(
        [sys.executable, "-m", "calls.sandbox.emulators.elevenlabs", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "elevenlabs emulator listening on http://127.0.0.1:" in line
        base = line.rsplit(" ", 1)[1].strip()
        req = urllib.request.Request(
            base + "/v1/text-to-speech/v/stream?output_format=ulaw_8000",
            data=b'{"text": "Hi"}',
            headers={**KEY, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.read() == text_audio("Hi")
    finally:
        proc.terminate()
        proc.wait(5)
