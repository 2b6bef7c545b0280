"""OpenAIRealtime against the OpenAI emulator, through the real SDK's realtime.connect."""

from __future__ import annotations

import asyncio

import pytest

from calls.providers.realtime.openai import OpenAIRealtime, RealtimeError
from calls.sandbox.emulators.base import silence, speech_like
from calls.sandbox.emulators.openai import OpenAIEmulator


@pytest.fixture
async def emu():
    emulator = OpenAIEmulator(api_key="sk-test")
    async with emulator.server() as srv:
        emulator.srv = srv
        yield emulator


def session(emu, key: str = "sk-test") -> OpenAIRealtime:
    return OpenAIRealtime(
        api_key=key,
        base_url=f"{emu.srv.base_url}/v1",
        websocket_base_url=f"{emu.srv.ws_url}/v1",
        instructions="Be brief.",
        silence_duration_ms=300,
    )


async def test_turn_then_truncate_on_barge_in(emu):
    emu.script_transcript("what time is it")
    emu.script_realtime("It is ten o'clock.")
    rt = session(emu)
    await rt.connect()
    try:
        sent = emu.realtime_events[0]["session"]
        assert sent["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        assert sent["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 300
        audio = silence(200) + speech_like(600) + silence(400)
        for i in range(0, len(audio), 160):
            await rt.send_audio(audio[i : i + 160])
        async with asyncio.timeout(2):
            async for event in rt.events():
                if event.type == "response.done":
                    break
        assert rt.audio_item_id and rt.audio_ms > 1000
        await rt.truncate(10_000)  # clamped to the audio actually received
        await rt.truncate(400)
        async with asyncio.timeout(2):
            seen = [e.audio_end_ms async for e in _truncated(rt, 2)]
        assert seen == [rt.audio_ms, 400]
    finally:
        await rt.close()
    assert [t["audio_end_ms"] for t in emu.truncations] == [rt.audio_ms, 400]


async def _truncated(rt: OpenAIRealtime, count: int):
    async for event in rt.events():
        if event.type == "conversation.item.truncated":
            yield event
            count -= 1
            if not count:
                return


async def test_tool_result_starts_the_next_response(emu):
    emu.script_realtime("Done, goodbye.")
    rt = session(emu)
    await rt.connect()
    try:
        await rt.send_tool_result("call_9", '{"ok": true}')
        async with asyncio.timeout(2):
            async for event in rt.events():
                if event.type == "response.output_audio_transcript.done":
                    assert event.transcript == "Done, goodbye."
                    break
    finally:
        await rt.close()
    types = [e["type"] for e in emu.realtime_events]
    assert types == ["session.update", "conversation.item.create", "response.create"]


async def test_bad_key_is_realtime_error(emu):
    with pytest.raises(RealtimeError, match="401"):
        await session(emu, key="sk-bad").connect()
