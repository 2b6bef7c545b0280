"""The whole processor chain (build_pipeline) with small provider doubles and the fake phone, which
plays audio in real time and echoes marks: conversations, tools, barge-in, backchannels, faults,
idle."""

from __future__ import annotations

import asyncio
import copy
import time
from collections import deque
from collections.abc import AsyncIterator

import pytest

from calls.core.persona import PersonaSpec
from calls.pipeline import idle as idle_module
from calls.pipeline.build import Providers, build_pipeline
from calls.pipeline.context import CallContext, PipelineOptions
from calls.pipeline.frames import (
    AudioIn,
    EventRecord,
    Frame,
    Hangup,
    Say,
    ToolRequest,
    ToolResult,
    TurnRecord,
)
from calls.pipeline.tools import tool_schemas
from calls.providers.llm.base import (
    LLMDone,
    LLMError,
    LLMEvent,
    LLMProvider,
    LLMRequest,
    TextDelta,
    ToolCall,
)
from calls.providers.stt.base import STTOptions, Transcript
from calls.providers.tts.base import TTSError, TTSOptions, TTSProvider
from calls.providers.vad.base import SpeechDetector
from tests.support.pipeline import EnergyVAD, FakeSTT, PipelinePhone
from tests.support.wait import wait_until

PERSONA = PersonaSpec(
    name="recruiting", agent_name="Myra", goodbye="Thanks, goodbye!",
    tools=("end_call", "transfer_call"), transfer_number="+14155550142",
)  # fmt: skip
GREETING = "Hi Ann, this is Myra."
VOICED, SILENT = b"\x10" * 160, b"\xff" * 160
FALLBACK = PipelineOptions().fallback_text
NUDGE = PipelineOptions().nudge_text


# --- provider doubles ----------------------------------------------------------------------
class ScriptedLLM(LLMProvider):
    """Each request plays the next script (str -> TextDelta; Exception raised; Event awaited)."""

    def __init__(self, *scripts: list) -> None:
        self.scripts = deque(scripts)
        self.requests: list[list[dict]] = []

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        self.requests.append(copy.deepcopy(request.messages))
        for item in self.scripts.popleft() if self.scripts else ["Okay."]:
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, asyncio.Event):
                await item.wait()
            else:
                yield TextDelta(item) if isinstance(item, str) else item
        yield LLMDone()


class FakeTTS(TTSProvider):
    """`ms_per_char` of non-silent mu-law per character, in two pieces; can fail every request."""

    def __init__(self, byte: int = 0x22, *, ms_per_char: float = 5, failing: bool = False):
        self.byte, self.ms_per_char, self.failing = byte, ms_per_char, failing
        self.calls: list[str] = []

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncIterator[bytes]:
        self.calls.append(text)
        if self.failing:
            raise TTSError("HTTP 500: injected")
        audio = bytes([self.byte]) * int(len(text) * self.ms_per_char * 8)
        half = len(audio) // 2
        yield audio[:half]
        await asyncio.sleep(0)
        yield audio[half:]


class Call:
    """One call's pipeline, as the session builds it, with doubles for every provider."""

    def __init__(
        self, *scripts: list, tts: FakeTTS | None = None, fallback: FakeTTS | None = None,
        **options,
    ) -> None:  # fmt: skip
        self.ctx = CallContext(
            persona=PERSONA,
            system_prompt=lambda conversation: "You are Myra.\n" + conversation.transcript(),
            tools=tool_schemas(PERSONA),
            options=PipelineOptions(**options),
        )
        self.stt, self.llm, self.tts = FakeSTT(), ScriptedLLM(*scripts), tts or FakeTTS()
        providers = Providers(
            stt=self.stt, llm=self.llm, tts=self.tts, tts_fallback=fallback,
            detector=SpeechDetector(EnergyVAD(), start_ms=40, stop_ms=100),
            stt_options=STTOptions(), tts_options=TTSOptions(voice="primary"),
            tts_fallback_options=TTSOptions(voice="backup"),
        )  # fmt: skip
        self.phone = PipelinePhone()
        self.out: list[Frame] = []
        self.pipeline = build_pipeline(self.ctx, providers, self.phone, self._sink)
        self.phone.pipeline = self.pipeline

    async def _sink(self, frame: Frame) -> None:
        self.out.append(frame)
        if isinstance(frame, ToolRequest):  # what the session does for a transfer
            result = {"ok": True, "to": frame.arguments.get("to") or PERSONA.transfer_number}
            await self.pipeline.send(ToolResult(frame.call_id, frame.name, result))

    async def __aenter__(self) -> Call:
        await self.pipeline.start()
        await self.until(lambda: self.stt.sessions)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pipeline.stop()
        await self.phone.close()

    async def audio(self, voiced_ms: int, silent_ms: int = 0) -> None:
        """Caller audio as a burst of frames stamped 20 ms apart, as if they had arrived in real
        time up to now (the turn-taker measures speech by these stamps)."""
        frames = [VOICED] * (voiced_ms // 20) + [SILENT] * (silent_ms // 20)
        t0 = time.monotonic() - len(frames) * 0.02
        for i, frame in enumerate(frames, start=1):
            await self.pipeline.send(AudioIn(frame, t0 + i * 0.02))

    async def say(self, text: str, *, interim: str = "", voiced_ms: int = 300) -> None:
        """The caller says `text` (recognised at the end, an optional interim first)."""
        if interim:
            await self.stt.sessions[0].emit(Transcript(interim, final=False))
        await self.audio(voiced_ms, 200)
        await self.stt.sessions[0].emit(Transcript(text, final=True, speech_final=True))

    async def until(self, predicate, limit: float = 5.0) -> None:
        await wait_until(predicate, limit, state=lambda: f"out={self.out}")

    def records(self, speaker: str | None = None) -> list[TurnRecord]:
        return [
            f for f in self.out
            if isinstance(f, TurnRecord) and (speaker is None or f.speaker == speaker)
        ]  # fmt: skip

    def events(self, kind: str) -> list[EventRecord]:
        return [f for f in self.out if isinstance(f, EventRecord) and f.type == kind]


async def test_a_whole_conversation():
    async with Call(["Great to hear. ", "When are you free this week?"]) as call:
        await call.pipeline.send(Say(GREETING, kind="greeting"))
        await call.until(lambda: call.records("agent"))
        await call.say("Yes, I am still interested.")
        await call.until(lambda: len(call.records()) == 3)
    assert [(r.speaker, r.text, r.interrupted) for r in call.records()] == [
        ("agent", GREETING, False),
        ("caller", "Yes, I am still interested.", False),
        ("agent", "Great to hear. When are you free this week?", False),
    ]
    reply = call.records()[-1]
    assert reply.latency["voice_to_voice_ms"] > 0
    assert set(reply.latency) >= {"stt_final_ms", "llm_first_token_ms", "tts_first_byte_ms"}
    assert call.llm.requests == [
        [
            {
                "role": "system",
                "content": f"You are Myra.\nAgent: {GREETING}\nCaller: Yes, I am still interested.",
            },
            {"role": "assistant", "content": GREETING},
            {"role": "user", "content": "Yes, I am still interested."},
        ]
    ]
    # the reply's two sentences were both there when its synthesis began: one request
    assert call.tts.calls == [GREETING, "Great to hear. When are you free this week?"]
    assert len(call.stt.sessions[0].audio) == 25 * 160  # every caller frame reached the STT
    media = [e[1] for e in call.phone.sent if e[0] == "media"]
    assert media and all(len(frame) % 160 == 0 and len(frame) <= 800 for frame in media)
    assert call.phone.count("mark") == 2 and call.phone.count("clear") == 0
    assert not call.ctx.agent_speaking


async def test_end_call_says_goodbye_and_hangs_up_after_it_played():
    async with Call([ToolCall("c1", "end_call", {"reason": "done"})]) as call:
        await call.say("No thanks, not interested.")
        await call.until(lambda: any(isinstance(f, Hangup) for f in call.out))
    goodbye = call.records("agent")[-1]
    assert goodbye.text == "Thanks, goodbye!"
    assert call.out.index(goodbye) < call.out.index(Hangup("agent ended the call"))
    # end_call is the pipeline's own (no ToolRequest), but on record like any tool call
    assert [e.payload["name"] for e in call.events("tool_call")] == ["end_call"]


async def test_transfer_goes_to_the_session_and_its_result_into_history():
    async with Call(["Let me transfer you. ", ToolCall("t1", "transfer_call", {})]) as call:
        await call.say("Can I talk to a person?")
        await call.until(lambda: call.records("agent"))
    [request] = [f for f in call.out if isinstance(f, ToolRequest)]
    assert (request.name, request.arguments) == ("transfer_call", {})
    assert call.ctx.conversation.messages[-1] == {
        "role": "tool", "tool_call_id": "t1", "content": '{"ok": true, "to": "+14155550142"}',
    }  # fmt: skip
    assert [e.payload["name"] for e in call.events("tool_call")] == ["transfer_call"]


LONG = (
    "Great to hear. The interview is with the hiring manager and takes about thirty minutes. "
    "We can do Tuesday or Thursday afternoon, whichever suits you best."
)


async def test_barge_in_stops_the_agent_and_history_keeps_only_the_heard_words():
    tts = FakeTTS(ms_per_char=10)  # about 1.5 s of speech
    async with Call([LONG], ["It pays well."], tts=tts) as call:
        await call.say("Yes, I am still interested.")
        await call.until(lambda: call.phone.count("media") > 0)
        await asyncio.sleep(0.4)  # the caller hears part of it
        await call.say("Wait, what about the salary?", interim="Wait, what", voiced_ms=600)
        await call.until(lambda: len(call.records("agent")) == 2)
    interrupted, answer = call.records("agent")
    assert call.phone.count("clear") == 1
    assert interrupted.interrupted and interrupted.text == LONG
    assert interrupted.heard_text and LONG.startswith(interrupted.heard_text)
    assert len(interrupted.heard_text) < len(LONG)
    assert answer.text == "It pays well."
    history = call.llm.requests[1]
    assert history[-2:] == [
        {"role": "assistant", "content": interrupted.heard_text},
        {"role": "user", "content": "Wait, what about the salary?"},
    ]
    assert "whichever suits you" not in str(history)  # not in the prompt's transcript either
    assert tts.calls[-1] == "It pays well."  # the rest of the long reply was never synthesised


async def test_a_backchannel_over_the_agent_is_not_an_interruption_nor_a_turn():
    tts = FakeTTS(ms_per_char=8)
    async with Call([LONG], tts=tts) as call:
        await call.say("Yes, I am still interested.")
        await call.until(lambda: call.phone.count("media") > 0)
        await asyncio.sleep(0.2)
        await call.say("Uh-huh.", interim="Uh-huh", voiced_ms=700)
        assert call.events("backchannel") == [EventRecord("backchannel", {"text": "Uh-huh."})]
        await call.until(lambda: len(call.records("agent")) == 1)
    [reply] = call.records("agent")
    assert (reply.text, reply.interrupted) == (LONG, False)
    assert call.phone.count("clear") == 0
    assert [r.text for r in call.records("caller")] == ["Yes, I am still interested."]
    assert len(call.llm.requests) == 1


async def test_a_turn_during_a_reply_in_flight_does_not_stall_later_replies():
    more = asyncio.Event()  # the model never finishes its first reply
    async with Call(["Let me check that for you. ", more, "It is."], ["Sure, go ahead."]) as call:
        await call.say("Is the role hybrid?")
        await call.until(lambda: call.phone.count("media") > 0)
        await call.say("Oh, and one more thing.", voiced_ms=100)  # too short to barge in
        await call.until(lambda: len(call.records("agent")) == 2)
        await call.until(lambda: not call.ctx.agent_speaking)
    assert [r.text for r in call.records("agent")] == [
        "Let me check that for you.",
        "Sure, go ahead.",
    ]


async def test_an_llm_failing_twice_speaks_the_fallback_line():
    async with Call([LLMError("HTTP 500")], [LLMError("HTTP 500")]) as call:
        await call.say("Hello?")
        await call.until(lambda: call.records("agent"))
    assert call.records("agent")[0].text == FALLBACK
    assert [e.payload["provider"] for e in call.events("error")] == ["llm", "llm"]


async def test_a_failing_tts_is_replaced_by_the_fallback_tts():
    primary, backup = FakeTTS(failing=True), FakeTTS(0x33)
    async with Call(["Sure thing."], tts=primary, fallback=backup) as call:
        await call.say("Can you help?")
        await call.until(lambda: call.records("agent"))
    assert call.records("agent")[0].text == "Sure thing."
    assert backup.calls == ["Sure thing."]
    [error] = call.events("error")
    assert error.payload["provider"] == "tts" and "injected" in error.payload["reason"]
    media = b"".join(e[1] for e in call.phone.sent if e[0] == "media")
    assert media.strip(b"\xff") == b"\x33" * len(media.strip(b"\xff"))  # the backup's voice


async def test_a_silent_caller_is_nudged_then_the_call_ends(monkeypatch):
    monkeypatch.setattr(idle_module, "TICK_S", 0.01)
    async with Call(silence_timeout_s=0.15) as call:
        await call.until(lambda: any(isinstance(f, Hangup) for f in call.out))
    assert [r.text for r in call.records("agent")] == [NUDGE, "Thanks, goodbye!"]
    assert call.out[-1] == Hangup("agent ended the call")
    assert [e.payload for e in call.events("silence")] == [
        {"action": "nudge"},
        {"reason": "caller silent"},
    ]


@pytest.mark.parametrize("stop_at", ["greeting", "reply"])
async def test_stopping_mid_speech_records_the_unfinished_reply(stop_at):
    tts = FakeTTS(ms_per_char=20)
    call = Call([LONG], tts=tts)
    await call.pipeline.start()
    await call.until(lambda: call.stt.sessions)
    await call.pipeline.send(Say(GREETING, kind="greeting"))
    if stop_at == "reply":
        await call.until(lambda: call.records("agent"))
        await call.say("Yes.")
    await call.until(lambda: call.phone.count("media") > 2)
    await call.pipeline.stop()
    await call.phone.close()
    last = call.records("agent")[-1]
    assert last.interrupted and (GREETING if stop_at == "greeting" else LONG) == last.text
