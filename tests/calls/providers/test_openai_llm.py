"""OpenAILLM against the OpenAI emulator, through the real AsyncOpenAI client."""

from __future__ import annotations

import time

import pytest

from calls.providers.llm.base import (
    LLMDone,
    LLMError,
    LLMRequest,
    TextDelta,
    ToolCall,
    parse_arguments,
)
from calls.providers.llm.openai import OpenAILLM
from calls.sandbox.emulators.openai import OpenAIEmulator

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "transfer_call",
            "description": "Transfer the caller",
            "parameters": {"type": "object", "properties": {"to": {"type": "string"}}},
        },
    }
]


def ask(text: str = "hi there", **kw) -> LLMRequest:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    return LLMRequest(messages=messages, **kw)


async def collect(llm: OpenAILLM, request: LLMRequest) -> list:
    return [event async for event in llm.stream(request)]


@pytest.fixture
async def emu():
    emulator = OpenAIEmulator(api_key="sk-test")
    async with emulator.server() as srv:
        emulator.url = f"{srv.base_url}/v1"
        yield emulator


@pytest.fixture
async def llm(emu):
    provider = OpenAILLM(api_key="sk-test", base_url=emu.url, first_token_timeout=2.0)
    yield provider
    await provider.aclose()


async def test_streams_text_deltas_then_done(emu, llm):
    emu.script("Hello there, how are you today?")
    events = await collect(llm, ask(tools=TOOLS, temperature=0.2, max_tokens=50))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 3
    assert "".join(d.text for d in deltas) == "Hello there, how are you today?"
    done = events[-1]
    assert isinstance(done, LLMDone) and done.finish_reason == "stop"
    assert (
        done.usage["total_tokens"] == done.usage["prompt_tokens"] + done.usage["completion_tokens"]
    )
    sent = emu.requests[-1]
    assert sent["model"] == "gpt-4o-mini" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][1] == {"role": "user", "content": "hi there"}
    assert sent["tools"] == TOOLS
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 50


async def test_tool_call_assembled_from_split_arguments(emu, llm):
    emu.script({"name": "transfer_call", "arguments": {"to": "+15551234567", "reason": "asked"}})
    events = await collect(llm, ask(tools=TOOLS))
    assert events == [
        ToolCall(
            id=events[0].id,
            name="transfer_call",
            arguments={"to": "+15551234567", "reason": "asked"},
        ),
        LLMDone(finish_reason="tool_calls", usage=events[-1].usage),
    ]
    assert events[0].id.startswith("call_")


async def test_text_then_tool_call(emu, llm):
    emu.script(["One moment please.", {"name": "transfer_call", "arguments": {"to": "+1555"}}])
    events = await collect(llm, ask(tools=TOOLS))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["TextDelta", "TextDelta", "TextDelta", "ToolCall", "LLMDone"]
    assert events[3].arguments == {"to": "+1555"}
    assert events[-1].finish_reason == "tool_calls"


async def test_parallel_tool_calls_in_index_order(emu, llm):
    emu.script({"tool_calls": [{"name": "a", "arguments": {"x": 1}}, {"name": "b"}]})
    events = await collect(llm, ask(tools=TOOLS))
    assert [(e.name, e.arguments) for e in events if isinstance(e, ToolCall)] == [
        ("a", {"x": 1}),
        ("b", {}),
    ]


async def test_invalid_tool_arguments_surface_raw(emu, llm):
    emu.script({"name": "transfer_call", "arguments": '{"to": "+1555"'})
    events = await collect(llm, ask(tools=TOOLS))
    assert events[0].arguments == {"_raw": '{"to": "+1555"'}
    assert parse_arguments("[1, 2]") == {"_raw": "[1, 2]"} and parse_arguments("") == {}


async def test_default_reply_and_model_override(emu, llm):
    events = await collect(llm, ask("book a table", model="gpt-4.1-nano"))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "book a table" in text
    assert emu.requests[-1]["model"] == "gpt-4.1-nano"


async def test_create_arguments_go_where_the_sdk_puts_them(emu):
    provider = OpenAILLM(
        api_key="sk-test", base_url=emu.url, tool_choice="none",
        extra_body={"seed": 7}, extra_headers={"X-Trace": "t1"}, extra_query={"tag": "q"},
    )  # fmt: skip
    try:
        emu.script("ok")
        await collect(provider, ask())
        await collect(provider, ask())
    finally:
        await provider.aclose()
    body, headers = emu.requests[-1], emu.request_headers[-1]
    assert body["tool_choice"] == "none" and body["seed"] == 7
    assert not {"extra_body", "extra_headers", "extra_query"} & set(body)
    assert headers["x-trace"] == "t1" and headers["authorization"] == "Bearer sk-test"


async def test_bare_function_schemas_are_wrapped(emu, llm):
    await collect(llm, ask(tools=[TOOLS[0]["function"]]))
    assert emu.requests[-1]["tools"] == TOOLS


async def test_first_token_latency_is_observed(emu, llm):
    emu.first_token_latency = 0.25
    emu.script("Sure thing.")
    start = time.perf_counter()
    async for event in llm.stream(ask()):
        assert isinstance(event, TextDelta)
        first = time.perf_counter() - start
        break
    assert 0.25 <= first < 0.6


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("http_500", "HTTP 500"),
        ("http_429", r"HTTP 429 \(rate_limit_exceeded\)"),
        ("stream_error", "server had an error"),
        ("malformed", "malformed stream chunk: 'not an object'"),
        ("drop", "Connection error"),
    ],
)
async def test_faults_raise_llm_error(emu, llm, kind, reason):
    emu.script("Hello there, how are you today?")
    emu.fail_next(kind, after=2)
    with pytest.raises(LLMError, match=reason):
        await collect(llm, ask())
    emu.script("Recovered.")
    events = await collect(llm, ask())  # the same client keeps working afterwards
    assert isinstance(events[-1], LLMDone)


async def test_wrongly_shaped_chunks_are_skipped_until_a_non_object(emu, llm):
    """Fields of the wrong type are ignored (the text before them still streams); a chunk that
    is not a JSON object ends the reply with LLMError, never a TypeError."""
    emu.script("Hello there, how are you today?")
    emu.fail_next("malformed", after=2)
    events: list = []
    with pytest.raises(LLMError, match="malformed"):
        async for event in llm.stream(ask(tools=TOOLS)):
            events.append(event)
    assert [type(e) for e in events] == [TextDelta, TextDelta]


async def test_no_first_token_is_a_timeout(emu):
    emu.fail_next("hang")
    llm = OpenAILLM(api_key="sk-test", base_url=emu.url, first_token_timeout=0.2)
    start = time.perf_counter()
    with pytest.raises(LLMError, match=r"no first token within 0\.2s"):
        await collect(llm, ask())
    assert time.perf_counter() - start < 0.6
    await llm.aclose()


async def test_stall_after_first_token_hits_read_timeout(emu):
    emu.fail_next("hang", after=2)
    llm = OpenAILLM(api_key="sk-test", base_url=emu.url, timeout=0.3, first_token_timeout=2.0)
    events: list = []
    with pytest.raises(LLMError, match=r"Timeout|timed out"):
        async for event in llm.stream(ask()):
            events.append(event)
    assert events and isinstance(events[0], TextDelta)
    await llm.aclose()


async def test_bad_key_is_llm_error(emu):
    llm = OpenAILLM(api_key="sk-wrong-key-123", base_url=emu.url)
    with pytest.raises(LLMError, match="HTTP 401"):
        await collect(llm, ask())
    await llm.aclose()


async def test_unreachable_server_is_llm_error():
    llm = OpenAILLM(api_key="sk-test", base_url="http://127.0.0.1:9/v1", first_token_timeout=2)
    with pytest.raises(LLMError, match="Connection"):
        await collect(llm, ask())
    await llm.aclose()


async def test_environment_is_not_consulted(emu, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    llm = OpenAILLM(api_key="sk-test", base_url=emu.url)
    assert isinstance((await collect(llm, ask()))[-1], LLMDone)
    await llm.aclose()
    assert str(OpenAILLM(api_key="k")._client.base_url) == "https://api.openai.com/v1/"
