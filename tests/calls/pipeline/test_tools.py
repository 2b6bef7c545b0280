"""The tool registry: schemas per persona, where each tool runs, transfer destinations, and a new
tool added as one entry that both the chat engine and the session pick up."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator

import pytest

from calls.core.persona import PersonaSpec, Stage, TransferDestination
from calls.pipeline.context import CallContext
from calls.pipeline.frames import (
    CallerTurn,
    Frame,
    Interrupt,
    ReplyDone,
    TextChunk,
    ToolRequest,
    ToolResult,
)
from calls.pipeline.llm import LLMProcessor
from calls.pipeline.processor import Pipeline, Sink
from calls.pipeline.tools import (
    REGISTRY,
    PipelineEnv,
    SessionEnv,
    Where,
    persona_tools,
    run_in_session,
    tool,
    tool_schemas,
)
from calls.providers.llm.base import LLMDone, LLMEvent, LLMProvider, LLMRequest, TextDelta, ToolCall

SALES = TransferDestination("sales", "+14155550199", "New orders")
PERSONA = PersonaSpec(
    name="support", agent_name="Sam", transfer_number="+14155550142",
    tools=("transfer_call", "end_call", "press_digits", "no_such_tool"),
    stages=(Stage("intro"), Stage("help")), transfer_destinations=(SALES,),
)  # fmt: skip


def functions(persona: PersonaSpec) -> dict[str, dict]:
    return {t["function"]["name"]: t["function"] for t in tool_schemas(persona)}


def test_the_schemas_follow_the_persona():
    offered = functions(PERSONA)
    assert list(offered) == ["transfer_call", "end_call", "press_digits", "set_stage"]
    assert offered["set_stage"]["parameters"]["properties"]["stage"]["enum"] == ["intro", "help"]
    transfer = offered["transfer_call"]["parameters"]
    assert transfer["properties"]["destination"]["enum"] == ["sales"]
    assert "New orders" in transfer["properties"]["destination"]["description"]
    assert transfer["additionalProperties"] is False and "required" not in transfer  # a default
    assert list(transfer["properties"]) == ["destination"]  # no number to fill in

    only_named = PersonaSpec("x", "X", tools=("transfer_call",), transfer_destinations=(SALES,))
    assert functions(only_named)["transfer_call"]["parameters"]["required"] == ["destination"]
    only_default = PersonaSpec("x", "X", tools=("transfer_call",), transfer_number="+14155550142")
    assert functions(only_default)["transfer_call"]["parameters"]["properties"] == {}
    assert list(functions(PersonaSpec("x", "X"))) == []  # no stages: no set_stage


def test_what_a_persona_may_list_and_each_entry():
    assert persona_tools() == {
        "end_call": "End call", "transfer_call": "Transfer call",
        "press_digits": "Press digits (DTMF)", "request_supervisor": "Ask a supervisor",
    }  # fmt: skip
    where = {name: (spec.where, spec.follow_up, spec.ends_call) for name, spec in REGISTRY.items()}
    assert where == {
        "end_call": (Where.PIPELINE, False, True),
        "set_stage": (Where.PIPELINE, True, False),
        "transfer_call": (Where.SESSION, False, False),
        "press_digits": (Where.SESSION, False, False),
        "request_supervisor": (Where.SESSION, True, False),
    }
    with pytest.raises(ValueError, match="registered twice"):
        tool("end_call", label="x", description="x", where=Where.PIPELINE)(
            REGISTRY["end_call"].handler
        )


class Session:
    """A SessionEnv that records what the tools asked of the call."""

    def __init__(self, persona: PersonaSpec = PERSONA) -> None:
        self.ctx = CallContext(persona, lambda _c: "", tools=tool_schemas(persona))
        self.asked: list[tuple[str, str]] = []

    async def hang_up(self, reason: str) -> None:
        self.asked.append(("hang_up", reason))

    async def transfer(self, number: str) -> dict:
        self.asked.append(("transfer", number))
        return {"ok": True, "to": number}

    async def press_digits(self, digits: str) -> dict:
        self.asked.append(("press_digits", digits))
        return {"ok": True, "pressed": digits}

    async def ask_supervisor(self, question: str) -> dict:
        return {"ok": False, "error": "no supervisor"}


def request(name: str, arguments: dict) -> ToolRequest:
    return ToolRequest(1, "c1", name, arguments)


@pytest.mark.parametrize(
    ("arguments", "number"),
    [({"destination": "sales"}, "+14155550199"), ({}, "+14155550142"),
     ({"destination": ""}, "+14155550142")],
)  # fmt: skip
async def test_transfer_goes_to_a_named_destination_or_the_default(arguments, number):
    session = Session()
    result = await run_in_session(session, request("transfer_call", arguments))
    assert result == {"ok": True, "to": number} and session.asked == [("transfer", number)]


@pytest.mark.parametrize(
    ("persona", "arguments", "error"),
    [
        (PERSONA, {"to": "+19002223333"}, "does not take a number"),
        (PERSONA, {"destination": "sales", "to": "+19002223333"}, "does not take a number"),
        (PERSONA, {"destination": "+19002223333"}, "unknown destination '+19002223333'"),
        (PERSONA, {"destination": ["sales"]}, "unknown destination"),
        (PERSONA, {"_raw": "{to: +1900"}, "does not take a number"),
        (PersonaSpec("x", "X", tools=("transfer_call",), transfer_destinations=(SALES,)), {},
         "choose a destination from ['sales']"),
        (PersonaSpec("x", "X", tools=("transfer_call",)), {}, "no transfer number configured"),
    ],
)  # fmt: skip
async def test_the_model_never_chooses_the_number(persona, arguments, error):
    session = Session(persona)
    result = await run_in_session(session, request("transfer_call", arguments))
    assert result["ok"] is False and error in result["error"]
    assert session.asked == []  # nothing reached the carrier


async def test_a_tool_not_offered_or_not_the_sessions_does_not_run_there():
    session = Session(PersonaSpec("x", "X", tools=("end_call",)))
    for name in ("transfer_call", "end_call", "nothing"):
        result = await run_in_session(session, request(name, {}))
        assert result == {"ok": False, "error": f"unknown tool {name}"}
    assert session.asked == []


# --- the chat engine ------------------------------------------------------------------------
class Model(LLMProvider):
    """Plays one script per request: str -> TextDelta, a ToolCall as it is."""

    def __init__(self, *scripts: list) -> None:
        self.scripts = deque(scripts)
        self.requests: list[LLMRequest] = []

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        self.requests.append(request)
        for item in self.scripts.popleft() if self.scripts else ["Okay."]:
            yield TextDelta(item) if isinstance(item, str) else item
        yield LLMDone()


class Engine:
    """The LLM processor with a session behind it that runs session tools through the registry."""

    def __init__(self, persona: PersonaSpec, *scripts: list, answer: bool = True) -> None:
        self.session = Session(persona)
        self.ctx = self.session.ctx
        self.model = Model(*scripts)
        self.llm = LLMProcessor(self.ctx, self.model)
        self.answer = answer
        self.out: list[Frame] = []
        self.pipeline = Pipeline([self.llm, Sink(self._sink)])

    async def _sink(self, frame: Frame) -> None:
        self.out.append(frame)
        if isinstance(frame, ToolRequest) and self.answer:
            result = await run_in_session(self.session, frame)
            await self.pipeline.send(ToolResult(frame.call_id, frame.name, result))

    async def until(self, predicate) -> None:
        async with asyncio.timeout(3):
            while True:
                if predicate():
                    return
                await asyncio.sleep(0.005)

    def of(self, kind: type) -> list:
        return [f for f in self.out if isinstance(f, kind)]


@pytest.fixture
def new_tools():
    """Two tools added the way a feature adds one: an entry and its handler, nothing else."""

    @tool(
        "check_order", label="Check an order", where=Where.SESSION,
        description="Look up an order.",
        parameters={"type": "object", "properties": {"order": {"type": "string"}}},
    )  # fmt: skip
    async def check_order(env: SessionEnv, arguments: dict) -> dict:
        await env.press_digits(str(arguments["order"]))  # what a session tool may do
        return {"ok": True, "status": "shipped"}

    @tool(
        "take_note", label="Take a note", where=Where.PIPELINE, follow_up=True,
        description="Remember something the caller said.",
        parameters={"type": "object", "properties": {"note": {"type": "string"}}},
    )  # fmt: skip
    async def take_note(env: PipelineEnv, arguments: dict) -> dict:
        env.ctx.metrics.setdefault(0, {})["noted"] = 1.0
        return {"ok": True}

    yield
    del REGISTRY["check_order"], REGISTRY["take_note"]


async def test_a_new_tool_is_one_entry_and_both_sides_pick_it_up(new_tools):
    persona = PersonaSpec("x", "X", tools=("take_note", "check_order"))
    assert {"take_note", "check_order"} <= set(persona_tools())  # a persona may list them
    e = Engine(
        persona,
        ["Let me check. ", ToolCall("c1", "take_note", {"note": "in a hurry"}),
         ToolCall("c2", "check_order", {"order": "42"})],
        ["It has shipped."],
    )  # fmt: skip
    await e.pipeline.send(CallerTurn("Where is order 42?", 1.0, 1.0))
    await e.until(lambda: e.of(ReplyDone))

    first = e.model.requests[0]
    assert [t["function"]["name"] for t in first.tools] == ["take_note", "check_order"]
    assert e.ctx.metrics[0] == {"noted": 1.0}  # the pipeline tool ran in the engine
    assert [r.name for r in e.of(ToolRequest)] == ["check_order"]  # the session tool went down
    assert e.session.asked == [("press_digits", "42")]
    tool_results = [json.loads(m["content"]) for m in e.ctx.conversation.messages
                    if m["role"] == "tool"]  # fmt: skip
    assert tool_results == [{"ok": True}, {"ok": True, "status": "shipped"}]
    assert [c.text for c in e.of(TextChunk)] == ["Let me check.", "It has shipped."]  # follow-up
    await e.pipeline.stop()


async def test_the_engine_refuses_a_tool_it_did_not_offer():
    e = Engine(PersonaSpec("x", "X", tools=("end_call",)),
               [ToolCall("c1", "transfer_call", {"to": "+19002223333"})])  # fmt: skip
    await e.pipeline.send(CallerTurn("Transfer me.", 1.0, 1.0))
    await e.until(lambda: e.of(ReplyDone))
    assert not e.of(ToolRequest) and e.session.asked == []
    assert json.loads(e.ctx.conversation.messages[-1]["content"]) == {
        "ok": False, "error": "unknown tool transfer_call"
    }  # fmt: skip
    await e.pipeline.stop()


async def test_an_interrupted_tool_call_still_has_a_result_in_the_history():
    e = Engine(PERSONA, [ToolCall("c1", "press_digits", {"digits": "1"})], answer=False)
    await e.pipeline.send(CallerTurn("Press one.", 1.0, 1.0))
    await e.until(lambda: e.of(ToolRequest))
    await e.pipeline.send(Interrupt("barge-in"))
    await e.until(lambda: e.of(ReplyDone))
    roles = [m["role"] for m in e.ctx.conversation.messages]
    assert roles == ["user", "assistant", "tool"]  # a valid history for the next request
    assert json.loads(e.ctx.conversation.messages[-1]["content"]) == {
        "ok": False, "error": "interrupted"
    }  # fmt: skip
    await e.pipeline.stop()


def test_reply_ids_are_numbered_per_call():
    a, b = (CallContext(PERSONA, lambda _c: "") for _ in range(2))
    assert [a.next_reply_id(), a.next_reply_id(), b.next_reply_id()] == [1, 2, 1]
