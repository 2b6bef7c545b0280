"""The Realtime (speech-to-speech) chain against the OpenAI emulator, through the real SDK.

RealtimeProcessor -> PlayoutProcessor -> IdleMonitor -> a list, with the fake phone as the far
end: it plays media at real-time pace and echoes each mark when playback reaches it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from calls.core.persona import PersonaSpec, Stage
from calls.pipeline.build import build_realtime_pipeline
from calls.pipeline.context import CallContext, PipelineOptions
from calls.pipeline.frames import (
    AudioIn,
    EventRecord,
    Frame,
    Hangup,
    Interrupt,
    Say,
    StageChanged,
    ToolRequest,
    ToolResult,
    TurnRecord,
)
from calls.pipeline.idle import IdleMonitor
from calls.pipeline.playout import PlayoutProcessor
from calls.pipeline.processor import Pipeline, Sink
from calls.pipeline.realtime import RealtimeProcessor, realtime_tools, take_words
from calls.pipeline.tools import tool_schemas
from calls.providers.realtime.openai import RealtimeOptions, websocket_url
from calls.sandbox.emulators.base import Faults, silence, speech_like, text_audio
from calls.sandbox.emulators.openai import OpenAIEmulator, text_pieces
from tests.support.pipeline import PipelinePhone
from tests.support.wait import wait_until

PERSONA = PersonaSpec(
    name="Test", agent_name="Ava", goodbye="Thanks, bye.", tools=("end_call", "transfer_call"),
    stages=(Stage("intro"), Stage("interest")),
)  # fmt: skip


def prompt(conversation) -> str:
    return f"You are Ava, calling about a job. Current stage: {conversation.stage or 'intro'}."


class Call:
    """One pipeline under test: frames out, tool requests answered like the session does."""

    def __init__(self, emu: OpenAIEmulator, pipeline_for=None) -> None:
        self.ctx = CallContext(
            persona=PERSONA, system_prompt=prompt, tools=tool_schemas(PERSONA),
            options=PipelineOptions(silence_timeout_s=60),
        )  # fmt: skip
        self.carrier = PipelinePhone()
        self.out: list[Frame] = []
        self.options = RealtimeOptions(
            api_key="sk-test", base_url=f"{emu.srv.base_url}/v1", silence_duration_ms=300
        )
        build = pipeline_for or build_realtime_pipeline
        self.pipeline = build(self.ctx, self.options, self.carrier, self._sink)
        self.carrier.pipeline = self.pipeline

    def _sink(self, frame: Frame) -> None:
        self.out.append(frame)
        if isinstance(frame, ToolRequest):
            result = {"ok": True, **frame.arguments}
            reply = ToolResult(frame.call_id, frame.name, result)
            asyncio.get_running_loop().create_task(self.pipeline.send(reply))

    async def speak(self, audio: bytes) -> None:
        for i in range(0, len(audio), 160):
            await self.pipeline.send(AudioIn(audio[i : i + 160], time.monotonic()))

    async def utterance(self, ms: int = 400) -> None:
        await self.speak(silence(60) + speech_like(ms) + silence(400))

    def turns(self, speaker: str | None = None) -> list[TurnRecord]:
        return [f for f in self.out if isinstance(f, TurnRecord) and speaker in (None, f.speaker)]

    def events(self, kind: str) -> list[EventRecord]:
        return [f for f in self.out if isinstance(f, EventRecord) and f.type == kind]

    async def until(self, predicate, limit: float = 6.0) -> None:
        await wait_until(predicate, limit, state=lambda: f"out={self.out}")


@pytest.fixture
async def emu():
    emulator = OpenAIEmulator(api_key="sk-test")
    async with emulator.server() as srv:
        emulator.srv = srv
        yield emulator


@pytest.fixture
async def call(emu):
    c = Call(emu)
    await c.pipeline.start()
    yield c
    await c.pipeline.stop()
    await c.carrier.close()


def client_events(emu: OpenAIEmulator, kind: str) -> list[dict]:
    return [e for e in emu.realtime_events if e["type"] == kind]


def spoken(text: str) -> bytes:
    """The emulator's audio for `text`: one speech-like piece per word."""
    return b"".join(text_audio(piece) for piece in text_pieces(text))


def test_tool_shapes_and_word_split():
    tools = realtime_tools(tool_schemas(PERSONA))
    assert [t["name"] for t in tools] == ["end_call", "transfer_call", "set_stage"]
    assert all(t["type"] == "function" and "function" not in t for t in tools)
    assert tools[2]["parameters"]["properties"]["stage"]["enum"] == ["intro", "interest"]
    assert take_words(" Hello, how are yo") == ("Hello, how are", " yo")
    assert take_words(" there") == ("there", "")
    assert take_words("fine ") == ("fine", "")
    assert websocket_url("https://api.openai.com/v1") == "wss://api.openai.com/v1"
    assert websocket_url("http://127.0.0.1:8097/v1") == "ws://127.0.0.1:8097/v1"


async def test_a_whole_exchange(emu, call):
    emu.script_realtime("Hi, this is Ava.", "It is ten.")
    emu.script_transcript("what time is it")
    await call.pipeline.send(Say("Hi, this is Ava.", kind="greeting"))
    await call.until(lambda: call.turns("agent"))
    caller_audio = silence(60) + speech_like(400) + silence(400)
    await call.speak(caller_audio)
    await call.until(lambda: len(call.turns("agent")) == 2)

    greeting, caller, reply = call.turns()
    assert (greeting.speaker, greeting.text) == ("agent", "Hi, this is Ava.")
    assert (caller.speaker, caller.text) == ("caller", "what time is it")
    assert (reply.speaker, reply.text, reply.interrupted) == ("agent", "It is ten.", False)
    assert reply.latency["voice_to_voice_ms"] > 0 and "stt_final_ms" in reply.latency
    assert caller.started_at <= caller.ended_at <= reply.started_at
    # mu-law straight through both ways: no resampling, no re-encoding
    appended = b"".join(
        base64.b64decode(e["audio"]) for e in client_events(emu, "input_audio_buffer.append")
    )
    assert appended == caller_audio
    assert b"".join(call.carrier.media) == spoken("Hi, this is Ava.") + spoken("It is ten.")
    session = emu.realtime_events[0]["session"]
    assert session["instructions"] == prompt(call.ctx.conversation)
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert session["audio"]["input"]["transcription"]["model"]
    assert [t["name"] for t in session["tools"]] == ["end_call", "transfer_call", "set_stage"]
    [greet] = client_events(emu, "response.create")
    assert "Hi, this is Ava." in greet["response"]["instructions"]
    assert call.ctx.conversation.messages == [
        {"role": "assistant", "content": "Hi, this is Ava."},
        {"role": "user", "content": "what time is it"},
        {"role": "assistant", "content": "It is ten."},
    ]
    assert not call.events("error") and not call.carrier.clears


async def test_barge_in_truncates_at_what_was_played(emu, call):
    text = "One two three four five six seven eight nine ten eleven twelve thirteen."
    emu.script_realtime(text)
    emu.token_delay = 0.12  # still generating when the caller cuts in
    await call.utterance()
    await call.until(lambda: len(call.carrier.media) >= 40)  # 800 ms sent, ~600 ms played
    await call.speak(speech_like(200))
    await call.until(lambda: call.turns("agent"))

    [turn] = call.turns("agent")
    assert turn.interrupted and turn.text.startswith("One two")
    heard = turn.heard_text.split()
    assert 1 <= len(heard) < len(text.split()) and heard == text.split()[: len(heard)]
    assert call.carrier.clears == 1
    [cut] = emu.truncations
    played = call.carrier.played_at_clear_ms[0]
    assert cut["content_index"] == 0 and abs(cut["audio_end_ms"] - played) <= 60
    assert client_events(emu, "response.cancel")  # it was still generating
    # only what was heard stays in the history
    assert call.ctx.conversation.messages[-1] == {"role": "assistant", "content": turn.heard_text}
    assert not call.events("error")  # the server's own cancel racing ours is not a fault
    sent = len(call.carrier.media)
    await asyncio.sleep(0.2)
    assert len(call.carrier.media) == sent  # nothing of the cancelled reply plays afterwards


async def test_a_supervisor_line_cuts_in(emu, call):
    emu.script_realtime("Let me tell you all about our benefits and the office.", "Hello, I'm Sam.")
    await call.utterance()
    await call.until(lambda: len(call.carrier.media) >= 20)
    await call.pipeline.send(Interrupt("override"))  # what CallSession.say sends
    await call.pipeline.send(Say("Hello, I'm Sam.", kind="supervisor"))
    await call.until(lambda: len(call.turns("agent")) == 2)

    first, second = call.turns("agent")
    assert first.interrupted and first.heard_text and second.text == "Hello, I'm Sam."
    assert call.carrier.clears == 1 and len(emu.truncations) == 1
    [say] = client_events(emu, "response.create")
    assert "Hello, I'm Sam." in say["response"]["instructions"]


async def test_set_stage_then_end_call(emu, call):
    emu.script_transcript("yes I am interested", "no questions, bye")
    emu.script_realtime(
        {"name": "set_stage", "arguments": {"stage": "interest"}},
        "Great. Which day?",
        {"text": "Goodbye!", "tool_calls": [{"name": "end_call", "arguments": {"reason": "done"}}]},
    )
    await call.utterance()
    await call.until(lambda: call.turns("agent"))
    assert call.ctx.conversation.stage == "interest"
    await call.utterance()
    await call.until(lambda: any(isinstance(f, Hangup) for f in call.out))

    order = [(type(f).__name__, getattr(f, "speaker", "")) for f in call.out
             if isinstance(f, StageChanged | TurnRecord | Hangup)]  # fmt: skip
    assert order == [
        ("TurnRecord", "caller"), ("StageChanged", ""), ("TurnRecord", "agent"),
        ("TurnRecord", "caller"), ("TurnRecord", "agent"), ("Hangup", ""),
    ]  # fmt: skip
    assert [t.text for t in call.turns("agent")] == ["Great. Which day?", "Goodbye!"]
    assert call.turns("agent")[0].latency["voice_to_voice_ms"] > 0  # timed across the tool step
    assert [e.payload["name"] for e in call.events("tool_call")] == ["set_stage", "end_call"]
    outputs = [e["item"] for e in client_events(emu, "conversation.item.create")]
    assert [json.loads(o["output"]) for o in outputs] == [{"ok": True}, {"ok": True}]
    assert len(client_events(emu, "response.create")) == 1  # the follow-up after set_stage only
    [update] = [e for e in client_events(emu, "session.update")[1:]]
    assert "Current stage: interest" in update["session"]["instructions"]


async def test_transfer_waits_for_the_session_result(emu, call):
    emu.script_realtime(
        {"text": "Transferring you now.",
         "tool_calls": [{"name": "transfer_call", "arguments": {"to": "+14155550142"}}]}
    )  # fmt: skip
    await call.utterance()
    await call.until(lambda: client_events(emu, "conversation.item.create"))
    [request] = [f for f in call.out if isinstance(f, ToolRequest)]
    assert (request.name, request.arguments) == ("transfer_call", {"to": "+14155550142"})
    [item] = [e["item"] for e in client_events(emu, "conversation.item.create")]
    assert item["call_id"] == request.call_id
    assert json.loads(item["output"]) == {"ok": True, "to": "+14155550142"}
    assert not client_events(emu, "response.create")  # no follow-up after a transfer
    assert call.events("tool_call")[0].payload["name"] == "transfer_call"


async def test_a_dropped_socket_reconnects_with_the_history(emu, call):
    emu.script_transcript("what time is it", "and the date")
    emu.script_realtime("It is ten.", "It is Monday.")
    # session.created, .updated, 6 events for the caller's turn, 4 to start the reply, then
    # two words of audio and transcript: the socket is cut mid-reply.
    emu.realtime_faults = Faults(drop_after_messages=16, times=1)
    await call.utterance()
    await call.until(lambda: len(emu.realtime_connections) == 2 and call.events("provider"))
    await call.until(lambda: call.turns("agent"))
    assert call.turns("agent")[0].text == "It is"  # what was received before the drop plays
    [error] = call.events("error")
    assert error.payload["provider"] == "realtime" and error.payload["reason"]
    await call.until(lambda: call.pipeline.processors[0].rt is not None)  # caught up
    await call.utterance()
    await call.until(lambda: len(call.turns("agent")) == 2)
    assert call.turns("agent")[1].text == "It is Monday."
    second = client_events(emu, "session.update")[1]["session"]["instructions"]
    assert "Caller: what time is it" in second and "Agent: It is" in second
    assert [t.text for t in call.turns("caller")] == ["what time is it", "and the date"]


async def test_a_dead_service_is_bounded_then_hangs_up(emu):
    emu.realtime_faults = Faults(status=500)

    def build(ctx, options, transport, sink):
        playout = PlayoutProcessor(ctx, transport)
        processor = RealtimeProcessor(ctx, options, playout=playout, reconnect_delays=(0.0, 0.05))
        return Pipeline([processor, playout, IdleMonitor(ctx, processor.process), Sink(sink)])

    c = Call(emu, pipeline_for=build)
    await c.pipeline.start()
    try:
        await c.until(lambda: any(isinstance(f, Hangup) for f in c.out))
        await c.speak(speech_like(100))  # audio after giving up is simply dropped
    finally:
        await c.pipeline.stop()
        await c.carrier.close()
    errors = c.events("error")
    assert len(errors) == 4 and errors[-1].payload["fatal"]
    assert all("connect failed" in e.payload["reason"] for e in errors[:-1])
