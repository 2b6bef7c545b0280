"""The LLM processor: streamed text chunks, tools, stages, retries and the fallback, interruption."""

from __future__ import annotations

import asyncio
import copy
import json
from collections import deque
from collections.abc import AsyncIterator

import pytest

from calls.core.persona import PersonaSpec, Stage
from calls.pipeline.context import PipelineOptions
from calls.pipeline.frames import (
    CallerTurn,
    EventRecord,
    Frame,
    Interrupt,
    ReplyDone,
    ReplyStarted,
    StageChanged,
    TextChunk,
    ToolRequest,
    ToolResult,
)
from calls.pipeline.llm import LLMProcessor
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
from tests.support import pipeline as support

PERSONA = PersonaSpec(
    name="recruiting", agent_name="Myra", goodbye="Thanks, goodbye!",
    stages=(Stage("introduction"), Stage("availability")),
    tools=("end_call", "transfer_call", "press_digits"),
)  # fmt: skip
FALLBACK = PipelineOptions().fallback_text


class ScriptedLLM(LLMProvider):
    """Each request plays the next script: str -> TextDelta, events as given, an Exception is
    raised, an asyncio.Event is waited for. LLMDone is added unless the script raised."""

    def __init__(self, *scripts: list) -> None:
        self.scripts = deque(scripts)
        self.requests: list[LLMRequest] = []

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        self.requests.append(copy.deepcopy(request))
        for item in self.scripts.popleft() if self.scripts else ["Okay."]:
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, asyncio.Event):
                await item.wait()
            else:
                yield TextDelta(item) if isinstance(item, str) else item
        yield LLMDone()


class Harness(support.Harness):
    def __init__(self, *scripts: list, tool_results: dict | None = None) -> None:
        super().__init__(
            persona=PERSONA, system_prompt=lambda conversation: "You are Myra.",
            tools=tool_schemas(PERSONA),
        )  # fmt: skip
        self.provider = ScriptedLLM(*scripts)
        self.llm = LLMProcessor(self.ctx, self.provider, model="m")
        self.tool_results = tool_results  # name -> result, sent back for each ToolRequest
        self.turns = 0
        self.chain(self.llm, sink=self._sink)

    async def _sink(self, frame: Frame) -> None:
        self.out.append(frame)
        if isinstance(frame, ToolRequest) and self.tool_results is not None:
            result = self.tool_results[frame.name]
            await self.llm.process(ToolResult(frame.call_id, frame.name, result))

    async def turn(self, text: str, *, wait: bool = True) -> None:
        """The caller's turn; with `wait`, until every reply so far is done."""
        self.turns += 1
        await self.pipeline.send(CallerTurn(text, speech_end=1.0, stt_final=1.2))
        if wait:
            await self.until(lambda: len(self.of(ReplyDone)) >= self.turns)

    def texts(self) -> list[str]:
        return [f.text for f in self.of(TextChunk)]

    @property
    def history(self) -> list[dict]:
        return self.ctx.conversation.messages

    async def stop(self) -> None:
        await self.pipeline.stop()


async def test_streamed_text_goes_out_in_order_while_the_model_still_streams():
    release = asyncio.Event()
    h = Harness(
        ["Sure, I can ", "help you with that, ", release, "the interview ", "is on Tuesday. ",
         "See you then."],
    )  # fmt: skip
    await h.turn("When is the interview?", wait=False)
    await h.until(lambda: h.texts())
    assert h.texts() == ["Sure, I can help you with that,"]  # before the model finished
    assert not h.of(ReplyDone)
    release.set()
    await h.until(lambda: h.of(ReplyDone))
    assert h.texts() == [
        "Sure, I can help you with that,",
        "the interview is on Tuesday.",
        "See you then.",
    ]
    [started] = h.of(ReplyStarted)
    assert h.out[0] == started and h.out[-1] == ReplyDone(started.reply_id, end_call=False)
    assert {f.reply_id for f in h.of(TextChunk)} == {started.reply_id}

    [request] = h.provider.requests
    assert request.model == "m" and request.persona == PERSONA
    assert {t["function"]["name"] for t in request.tools} >= {"end_call", "set_stage"}
    assert request.messages == [
        {"role": "system", "content": "You are Myra."},
        {"role": "user", "content": "When is the interview?"},
    ]
    assert h.history[-1] == {
        "role": "assistant",
        "content": "Sure, I can help you with that, the interview is on Tuesday. See you then.",
    }
    metrics = h.ctx.metrics[started.reply_id]
    assert metrics["speech_end"] == 1.0 and metrics["stt_final"] == 1.2
    assert metrics["llm_first_token"] >= metrics["llm_request"]
    await h.stop()


async def test_end_call_without_words_speaks_the_goodbye_then_ends():
    h = Harness([ToolCall("c1", "end_call", {"reason": "not interested"})])
    await h.turn("Not interested, bye.")
    assert h.texts() == ["Thanks, goodbye!"]
    assert h.of(ReplyDone)[0].end_call is True
    assert h.out.index(h.of(TextChunk)[0]) < h.out.index(h.of(ReplyDone)[0])
    assert len(h.provider.requests) == 1  # no completion after end_call
    assert not h.of(ToolRequest)  # the pipeline hangs up itself, after the goodbye played
    roles = [(m["role"], m.get("content")) for m in h.history]
    assert roles == [
        ("user", "Not interested, bye."),
        ("assistant", None),
        ("tool", json.dumps({"ok": True})),
        ("assistant", "Thanks, goodbye!"),
    ]
    assert h.history[1]["tool_calls"][0]["function"]["name"] == "end_call"
    await h.stop()


async def test_end_call_after_words_does_not_add_the_goodbye():
    h = Harness(["Thank you for your time, ", "bye now.", ToolCall("c1", "end_call", {})])
    await h.turn("That's all.")
    assert h.texts() == ["Thank you for your time,", "bye now."]
    assert h.of(ReplyDone)[0].end_call is True
    await h.stop()


@pytest.mark.parametrize(
    ("name", "arguments", "result"),
    [
        ("transfer_call", {"to": "+14155550142"}, {"ok": True, "to": "+14155550142"}),
        ("press_digits", {"digits": "1#"}, {"ok": True, "pressed": "1#"}),
    ],
)
async def test_transfer_and_digits_are_requested_and_their_result_goes_into_history(
    name, arguments, result
):
    h = Harness(
        ["One moment please. ", ToolCall("call_9", name, arguments)],
        tool_results={name: result},
    )
    await h.turn("Can I talk to a human?")
    assert h.texts() == ["One moment please."]
    [request] = h.of(ToolRequest)
    assert (request.call_id, request.name, request.arguments) == ("call_9", name, arguments)
    assert [(e.type, e.payload) for e in h.of(EventRecord)] == [
        ("tool_call", {"name": name, "arguments": arguments})
    ]
    assert h.out.index(h.of(TextChunk)[0]) < h.out.index(request)
    assert h.of(ReplyDone)[0].end_call is False
    assert h.history[1]["content"] == "One moment please."
    assert h.history[1]["tool_calls"][0]["id"] == "call_9"
    assert h.history[2] == {"role": "tool", "tool_call_id": "call_9", "content": json.dumps(result)}
    assert len(h.provider.requests) == 1  # the model spoke before acting: nothing more to say
    await h.stop()


async def test_a_tool_result_that_never_comes_times_out():
    h = Harness([ToolCall("c2", "press_digits", {"digits": "3"})])
    h.llm.tools.timeout_s = 0.05
    await h.turn("Press three.")
    assert json.loads(h.history[-1]["content"]) == {"ok": False, "error": "timed out"}
    assert h.of(ReplyDone)
    await h.stop()


async def test_set_stage_changes_the_stage_and_the_model_goes_on_with_the_result():
    h = Harness(
        [ToolCall("s1", "set_stage", {"stage": "availability"})],
        ["When are you free this week?"],
    )
    await h.turn("Yes, still interested.")
    assert h.of(StageChanged) == [StageChanged("availability")]
    assert h.ctx.conversation.stage == "availability"
    assert h.texts() == ["When are you free this week?"]
    follow_up = h.provider.requests[1].messages
    assert follow_up[-2]["tool_calls"][0]["function"]["name"] == "set_stage"
    assert follow_up[-1] == {"role": "tool", "tool_call_id": "s1", "content": '{"ok": true}'}
    assert len(h.of(ReplyStarted)) == len(h.of(ReplyDone)) == 1  # one reply, two completions
    await h.stop()


async def test_set_stage_to_an_unknown_or_the_same_stage_changes_nothing():
    h = Harness(
        [ToolCall("s1", "set_stage", {"stage": "negotiation"})],
        ["Right."],
        [ToolCall("s2", "set_stage", {"stage": "introduction"})],
        ["Hello."],
        [ToolCall("s3", "set_stage", {"stage": "introduction"})],
        ["Hi again."],
    )
    await h.turn("Hi.")
    assert not h.of(StageChanged)
    assert json.loads(h.history[2]["content"])["ok"] is False
    await h.turn("Hello?")
    await h.turn("Hello??")
    assert h.of(StageChanged) == [StageChanged("introduction")]
    await h.stop()


async def test_tool_steps_per_reply_are_bounded():
    loop = [[ToolCall(f"s{i}", "set_stage", {"stage": "availability"})] for i in range(6)]
    h = Harness(*loop)
    await h.turn("Go on.")
    assert len(h.provider.requests) == PipelineOptions().max_tool_steps
    assert h.of(ReplyDone)
    await h.stop()


async def test_a_failure_is_retried_once_and_recorded():
    h = Harness([LLMError("HTTP 500: boom")], ["Here you go."])
    await h.turn("Hello?")
    assert h.texts() == ["Here you go."]
    assert [(e.type, e.payload) for e in h.of(EventRecord)] == [
        ("error", {"provider": "llm", "attempt": 1, "reason": "HTTP 500: boom"})
    ]
    first, second = h.provider.requests
    assert first.messages == second.messages
    await h.stop()


async def test_a_second_failure_is_answered_with_the_spoken_fallback_line():
    h = Harness([LLMError("HTTP 500")], [TimeoutError()])
    await h.turn("Hello?")
    assert h.texts() == [FALLBACK]
    assert [e.payload["attempt"] for e in h.of(EventRecord)] == [1, 2]
    assert h.of(ReplyDone)[0].end_call is False
    assert h.history[-1] == {"role": "assistant", "content": FALLBACK}
    await h.stop()


async def test_a_failure_after_words_were_spoken_is_not_retried():
    h = Harness(["I think the answer is yes. And ", LLMError("stream dropped")])
    await h.turn("Is it remote?")
    assert h.texts() == ["I think the answer is yes.", FALLBACK]  # never said twice
    assert len(h.provider.requests) == 1
    await h.stop()


async def test_an_unexpected_provider_exception_still_gets_the_fallback():
    h = Harness([RuntimeError("adapter bug")], [ValueError("bad chunk")])
    await h.turn("Hello?")
    assert h.texts() == [FALLBACK]
    assert [e.payload["reason"] for e in h.of(EventRecord)] == ["adapter bug", "bad chunk"]
    assert h.of(ReplyDone)
    await h.stop()


async def test_an_interruption_cancels_the_reply_and_history_keeps_only_what_was_said():
    never = asyncio.Event()
    h = Harness(["Our offices are in San Jose. ", never, "We also have a remote option."])
    await h.turn("Where are you?", wait=False)
    await h.until(lambda: h.texts())
    await h.pipeline.send(Interrupt("barge-in"))
    assert h.out[-1] == Interrupt("barge-in")  # passed on after the reply stopped
    await asyncio.sleep(0.02)
    assert h.texts() == ["Our offices are in San Jose."]
    assert h.history[-1] == {"role": "assistant", "content": "Our offices are in San Jose."}
    assert "remote" not in json.dumps(h.history)
    await h.turn("Okay, thanks.")
    assert h.provider.requests[-1].messages[-2:] == [
        {"role": "assistant", "content": "Our offices are in San Jose."},
        {"role": "user", "content": "Okay, thanks."},
    ]
    await h.stop()


async def test_a_new_turn_supersedes_the_reply_in_flight_and_closes_it():
    never = asyncio.Event()
    h = Harness(["Let me check that for you. ", never, "It is."], ["Sure, go ahead."])
    await h.turn("Is it hybrid?", wait=False)
    await h.until(lambda: h.texts())
    await h.turn("Actually, one more thing.")
    first, second = h.of(ReplyStarted)
    # the superseded reply is closed, so the playout can finish it and what follows it
    assert [d.reply_id for d in h.of(ReplyDone)] == [first.reply_id, second.reply_id]
    assert [(m["role"], m["content"]) for m in h.history] == [
        ("user", "Is it hybrid?"),
        ("assistant", "Let me check that for you."),
        ("user", "Actually, one more thing."),
        ("assistant", "Sure, go ahead."),
    ]
    await h.stop()


async def test_other_frames_pass_through():
    h = Harness()
    await h.pipeline.send(StageChanged("x"))
    assert h.out == [StageChanged("x")]
    await h.stop()
