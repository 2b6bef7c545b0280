"""The OpenAI emulator on the wire: SSE chunk shapes, and Realtime driven by the real SDK."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys

import aiohttp
import numpy as np
import pytest
from openai import AsyncOpenAI

from calls.sandbox.emulators.base import Faults, mulaw_decode, silence, speech_like
from calls.sandbox.emulators.openai import MS_PER_CHAR, OpenAIEmulator

PCMU = {"type": "audio/pcmu"}
SESSION = {
    "type": "realtime",
    "instructions": "Be brief.",
    "output_modalities": ["audio"],
    "audio": {
        "input": {
            "format": PCMU,
            "transcription": {"model": "gpt-4o-transcribe"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
        },
        "output": {"format": PCMU, "voice": "alloy"},
    },
}


@pytest.fixture
async def emu():
    emulator = OpenAIEmulator(api_key="sk-test")
    async with emulator.server() as srv:
        emulator.srv = srv
        yield emulator


@pytest.fixture
async def client(emu):
    c = AsyncOpenAI(
        api_key="sk-test",
        base_url=f"{emu.srv.base_url}/v1",
        websocket_base_url=f"{emu.srv.ws_url}/v1",
        max_retries=0,
    )
    yield c
    await c.close()


async def raw_sse(emu, body: dict, key: str = "sk-test") -> tuple[int, list]:
    """POST a chat request and return (status, parsed `data:` payloads, "[DONE]" kept)."""
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emu.srv.base_url}/v1/chat/completions", json=body, headers=headers) as r,
    ):
        if r.content_type != "text/event-stream":
            return r.status, [await r.json()]
        text = await r.text()
    assert text.endswith("\n\n")
    events = [e.removeprefix("data: ") for e in text.split("\n\n") if e]
    return r.status, [e if e == "[DONE]" else json.loads(e) for e in events]


def chat(**kw) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **kw}


# ---------------------------------------------------------------------------- chat completions
async def test_sse_text_and_tool_call_chunks_match_the_protocol(emu):
    emu.script(["Let me check.", {"name": "transfer_call", "arguments": {"to": "+15551234567"}}])
    status, events = await raw_sse(emu, chat(stream=True, stream_options={"include_usage": True}))
    assert status == 200 and events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": "Let"}
    assert "".join(d.get("content") or "" for d in deltas) == "Let me check."
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    head, rest = calls[0], calls[1:]
    assert head["id"].startswith("call_") and head["type"] == "function"
    assert head["function"] == {"name": "transfer_call", "arguments": ""}
    assert len(rest) >= 3 and all(set(c) == {"index", "function"} for c in rest)
    assert all(set(c["function"]) == {"arguments"} for c in rest)
    assert json.loads("".join(c["function"]["arguments"] for c in rest)) == {"to": "+15551234567"}
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish[0]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])


async def test_without_include_usage_there_is_no_usage_chunk(emu):
    _, events = await raw_sse(emu, chat(stream=True))
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in e for e in events[:-1])


async def test_bad_key_gets_openai_401_json(emu):
    status, [body] = await raw_sse(emu, chat(stream=True), key="sk-nope-123456")
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert not emu.requests


async def test_in_stream_error_event(emu):
    emu.fail_next("stream_error", after=1, message="overloaded")
    _, events = await raw_sse(emu, chat(stream=True))
    assert events[1] == {
        "error": {"message": "overloaded", "type": "server_error", "param": None, "code": None}
    }
    assert events[-1] == "[DONE]"


async def test_non_streaming_completion_via_sdk(emu, client):
    emu.script(["Okay.", {"name": "end_call", "arguments": {"reason": "done"}}])
    result = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "bye"}]
    )
    message = result.choices[0].message
    assert message.content == "Okay." and result.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls[0].function.name == "end_call"
    assert json.loads(message.tool_calls[0].function.arguments) == {"reason": "done"}
    assert emu.requests[-1]["messages"] == [{"role": "user", "content": "bye"}]


async def test_persistent_faults_with_times(emu, client):
    from calls.sandbox.emulators.openai import ChatFaults

    emu.chat_faults = ChatFaults(status=503, times=2)
    for _ in range(2):
        status, [body] = await raw_sse(emu, chat(stream=True))
        assert status == 503 and body["error"]["type"] == "server_error"
    status, _ = await raw_sse(emu, chat(stream=True))
    assert status == 200


async def test_fail_next_rejects_unknown_kinds(emu):
    with pytest.raises(ValueError, match="unknown fault"):
        emu.fail_next("explode")


# ---------------------------------------------------------------------------- realtime
async def next_of(conn, *types: str):
    """Skip events until one of `types` arrives (2 s at most); return it."""
    async with asyncio.timeout(2):
        while True:
            event = await conn.recv()
            if event.type in types:
                return event


async def speak(conn, audio: bytes) -> None:
    for i in range(0, len(audio), 160):
        await conn.input_audio_buffer.append(audio=base64.b64encode(audio[i : i + 160]).decode())


async def test_realtime_session_update_and_voice_turn(emu, client):
    emu.script_transcript("I would like to reschedule")
    emu.script_realtime("Of course, which day suits you?")
    async with client.realtime.connect(model="gpt-realtime") as conn:
        created = await conn.recv()
        assert created.type == "session.created" and created.session.model == "gpt-realtime"
        await conn.session.update(session=SESSION)
        updated = await next_of(conn, "session.updated")
        assert updated.session.audio.input.format.type == "audio/pcmu"
        assert updated.session.audio.output.format.type == "audio/pcmu"
        assert updated.session.instructions == "Be brief."

        await speak(conn, silence(400) + speech_like(600) + silence(400))
        started = await next_of(conn, "input_audio_buffer.speech_started")
        assert started.audio_start_ms == 100  # speech at 400 ms minus 300 ms prefix padding
        stopped = await next_of(conn, "input_audio_buffer.speech_stopped")
        assert stopped.audio_end_ms == 1300 and stopped.item_id == started.item_id
        committed = await next_of(conn, "input_audio_buffer.committed")
        assert committed.item_id == started.item_id
        heard = await next_of(conn, "conversation.item.input_audio_transcription.completed")
        assert heard.transcript == "I would like to reschedule"

        audio, transcript, types = b"", "", []
        while (event := await next_of(conn, *RESPONSE_EVENTS)).type != "response.done":
            types.append(event.type)
            if event.type == "response.output_audio.delta":
                audio += base64.b64decode(event.delta)
                item_id = event.item_id
            elif event.type == "response.output_audio_transcript.delta":
                transcript += event.delta
        assert types[:2] == ["response.created", "response.output_item.added"]
        assert event.response.status == "completed"
        assert transcript == "Of course, which day suits you?"
        assert abs(len(audio) / 8 - len(transcript) * MS_PER_CHAR) <= 20 * 6  # 20 ms per word
        pcm = mulaw_decode(audio).astype(np.float64)
        assert np.sqrt(np.mean(pcm * pcm)) > 1000  # loud enough for any energy VAD

        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=640)
        truncated = await next_of(conn, "conversation.item.truncated", "error")
        assert truncated.type == "conversation.item.truncated" and truncated.audio_end_ms == 640
        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=9999)
        assert (await next_of(conn, "conversation.item.truncated", "error")).type == "error"

    assert emu.truncations == [{"item_id": item_id, "content_index": 0, "audio_end_ms": 640}]
    assert emu.realtime_connections[0]["model"] == "gpt-realtime"
    types = [e["type"] for e in emu.realtime_events]
    assert types[0] == "session.update" and "input_audio_buffer.append" in types
    assert types[-2:] == ["conversation.item.truncate"] * 2


RESPONSE_EVENTS = (
    "response.created",
    "response.output_item.added",
    "response.output_audio.delta",
    "response.output_audio_transcript.delta",
    "response.output_audio_transcript.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.done",
)


async def test_realtime_function_call_round_trip(emu, client):
    emu.script_realtime(
        {"name": "lookup_slot", "arguments": {"day": "friday"}, "id": "call_1"},
        "Friday at ten works.",
    )
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={**SESSION, "output_modalities": ["audio"]})
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Friday?"}],
            }
        )
        await conn.response.create()
        pieces = []
        while (event := await next_of(conn, *RESPONSE_EVENTS)).type != "response.done":
            if event.type == "response.function_call_arguments.delta":
                pieces.append(event.delta)
            elif event.type == "response.function_call_arguments.done":
                done = event
        assert len(pieces) >= 2 and "".join(pieces) == done.arguments
        assert (done.name, done.call_id, json.loads(done.arguments)) == (
            "lookup_slot",
            "call_1",
            {"day": "friday"},
        )
        assert event.response.output[0].type == "function_call"

        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": "call_1", "output": '{"ok":true}'}
        )
        await conn.response.create()
        done = await next_of(conn, "response.output_audio_transcript.done")
        assert done.transcript == "Friday at ten works."
    outputs = [e for e in emu.realtime_events if e["type"] == "conversation.item.create"]
    assert outputs[-1]["item"]["output"] == '{"ok":true}'


async def test_realtime_cancel_and_barge_in(emu, client):
    emu.token_delay = 0.05
    emu.script_realtime("This is a long answer that the caller will not wait for at all.")
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=SESSION)
        await conn.response.create()
        await next_of(conn, "response.output_audio.delta")
        await conn.response.cancel()
        done = await next_of(conn, "response.done")
        assert done.response.status == "cancelled"
        assert done.response.status_details.reason == "client_cancelled"

        await conn.response.create()
        await next_of(conn, "response.output_audio.delta")
        await speak(conn, speech_like(100))  # the caller talks over the bot
        await next_of(conn, "input_audio_buffer.speech_started")
        done = await next_of(conn, "response.done")
        assert done.response.status == "cancelled"
        assert done.response.status_details.reason == "turn_detected"

        await conn.response.cancel()
        error = await next_of(conn, "error")
        assert error.error.code == "response_cancel_not_active"


async def test_realtime_manual_commit_without_vad(emu, client):
    emu.script_transcript("just text")
    session = json.loads(json.dumps(SESSION))
    session["audio"]["input"]["turn_detection"] = None
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=session)
        await speak(conn, speech_like(300))
        await conn.input_audio_buffer.commit()
        committed = await next_of(conn, "input_audio_buffer.committed", "speech_started")
        assert committed.type == "input_audio_buffer.committed"
        heard = await next_of(conn, "conversation.item.input_audio_transcription.completed")
        assert heard.transcript == "just text"
        await conn.input_audio_buffer.commit()
        assert (await next_of(conn, "error")).error.code == "input_audio_buffer_commit_empty"


async def test_realtime_item_retrieve_delete_and_audio_not_recorded(emu, client):
    emu.record_audio = False
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=SESSION)
        await speak(conn, speech_like(100))
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}
        await conn.conversation.item.create(item={**item, "id": "item_mine"})
        await conn.conversation.item.retrieve(item_id="item_mine")
        retrieved = await next_of(conn, "conversation.item.retrieved")
        assert retrieved.item.content[0].text == "x"
        await conn.conversation.item.delete(item_id="item_mine")
        assert (await next_of(conn, "conversation.item.deleted")).item_id == "item_mine"
        await conn.conversation.item.delete(item_id="item_mine")
        assert (await next_of(conn, "error")).error.param == "item_id"
    assert "input_audio_buffer.append" not in {e["type"] for e in emu.realtime_events}


async def test_realtime_rejects_ga_session_without_type(emu, client):
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.send({"type": "session.update", "session": {"instructions": "x"}})
        error = await next_of(conn, "error")
        assert error.error.param == "session.type"


async def test_realtime_bad_key_and_handshake_fault(emu, client):
    bad = AsyncOpenAI(
        api_key="sk-bad", base_url="http://x/v1", websocket_base_url=f"{emu.srv.ws_url}/v1"
    )
    with pytest.raises(Exception, match="401"):
        async with bad.realtime.connect(model="gpt-realtime"):
            pass
    emu.realtime_faults = Faults(status=500, times=1)
    with pytest.raises(Exception, match="500"):
        async with client.realtime.connect(model="gpt-realtime"):
            pass
    emu.realtime_faults = Faults(drop_after_messages=1, times=1)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        assert (await conn.recv()).type == "session.created"
        await conn.session.update(session=SESSION)
        with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces the websockets close error
            await asyncio.wait_for(conn.recv(), 2)


# ---------------------------------------------------------------------------- as a process
def test_cli_serves_on_the_requested_port():
    proc = subprocess.Popen(
        [sys.executable, "-m", "calls.sandbox.emulators.openai", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("openai emulator listening on http://127.0.0.1:")
    finally:
        proc.terminate()
        proc.wait(5)
