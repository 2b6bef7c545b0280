"""OpenAI chat completions (`POST /v1/chat/completions`): JSON or SSE stream, and its faults."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from calls.sandbox.emulators.base import Faults, abort
from calls.sandbox.emulators.openai_http import (
    api_error,
    auth_error,
    authorized,
    gate,
    hang,
    status_error,
)
from calls.sandbox.emulators.openai_replies import (
    Reply,
    argument_pieces,
    default_reply,
    pause,
    text_pieces,
)

if TYPE_CHECKING:
    from calls.sandbox.emulators.openai import OpenAIEmulator

FAULT_KINDS = ("http_500", "http_429", "stream_error", "malformed", "drop", "hang")


@dataclass
class ChatFaults(Faults):
    """`Faults` plus chat-stream faults; "messages"/"chunks" count SSE chunks already sent.

    `latency_ms`, `hang` and `status` act before the response headers (status answers with
    OpenAI's error JSON); `drop_after_messages` / `drop_after_s` cut the stream.
    """

    error_after_chunks: int | None = None  # send `data: {"error": ...}` then [DONE]
    hang_after_chunks: int | None = None  # stall mid-stream until the client gives up
    # send chunks of the wrong shape (fields of the wrong type, then a bare string), then [DONE]
    malformed_after_chunks: int | None = None
    message: str = ""


def chat_fault(kind: str, *, after: int | None, count: int, message: str) -> ChatFaults:
    """The ChatFaults for one of FAULT_KINDS (see `OpenAIEmulator.fail_next`)."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
    faults = ChatFaults(times=count, message=message)
    if kind.startswith("http_"):
        faults.status = int(kind[5:])
    elif kind == "stream_error":
        faults.error_after_chunks = 1 if after is None else after
    elif kind == "malformed":
        faults.malformed_after_chunks = 1 if after is None else after
    elif kind == "drop":
        faults.drop_after_messages = 1 if after is None else after
    elif after is None:
        faults.hang = True
    else:
        faults.hang_after_chunks = after
    return faults


def _last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content or "").strip()
    return ""


async def handle_chat(emu: OpenAIEmulator, request: web.Request) -> web.StreamResponse:
    if not authorized(request, emu.api_key):
        return auth_error(request)
    try:
        body = await request.json()
    except ValueError:
        return api_error(
            400,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            None,
        )
    emu.requests.append(body)
    emu.request_headers.append({k.lower(): v for k, v in request.headers.items()})
    for name in ("model", "messages"):
        if name not in body:
            return api_error(
                400,
                f"Missing required parameter: '{name}'.",
                "invalid_request_error",
                "missing_required_parameter",
            )
    faults = emu.chat_faults.take()
    if not isinstance(faults, ChatFaults):  # Faults.take() answers a plain Faults() once spent
        faults = ChatFaults()
    early = await gate(request, faults, emu.stopping)
    if early is not None:
        return early
    reply = (
        emu.replies.popleft()
        if emu.replies
        else Reply(default_reply(_last_user_text(body["messages"])))
    )
    if body.get("stream"):
        return await _stream(emu, request, body, reply, faults)
    await pause(emu.first_token_latency)
    if faults.drop_after_messages is not None or faults.drop_after_s is not None:
        abort(request)
    if faults.error_after_chunks is not None:
        return status_error(500, faults.message)
    return web.json_response(_completion(body, reply, emu.new_id))


def _usage(body: dict, reply: Reply) -> dict:
    prompt = sum(len(str(m.get("content") or "").split()) + 4 for m in body["messages"])
    completion = len(reply.text.split()) + sum(
        len(c.arguments_json) // 4 + 1 for c in reply.tool_calls
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _finish_reason(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _completion(body: dict, reply: Reply, new_id: Callable[[str], str]) -> dict:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text or None,
        "refusal": None,
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id or new_id("call"),
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments_json},
            }
            for c in reply.tool_calls
        ]
    return {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "system_fingerprint": "fp_emulator",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(reply),
            }
        ],
        "usage": _usage(body, reply),
    }


def _deltas(reply: Reply, new_id: Callable[[str], str]) -> list[dict]:
    """Content pieces first (the first carries the role), then each tool call: a head
    delta with id/name, then its arguments split over several deltas."""
    deltas = [{"content": piece} for piece in text_pieces(reply.text)]
    for index, call in enumerate(reply.tool_calls):
        head = {
            "index": index,
            "id": call.id or new_id("call"),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"tool_calls": [head]} if deltas else {"content": None, "tool_calls": [head]})
        deltas.extend(
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in argument_pieces(call.arguments_json)
        )
    if not deltas:
        deltas.append({"content": ""})
    deltas[0] = {"role": "assistant", **deltas[0]}
    return deltas


async def _stream(
    emu: OpenAIEmulator, request: web.Request, body: dict, reply: Reply, faults: ChatFaults
) -> web.StreamResponse:
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    chunk_id, created, model = emu.new_id("chatcmpl"), int(time.time()), body["model"]

    def chunk(delta: dict | None, finish: str | None = None) -> dict:
        data: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_emulator",
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            data["usage"] = None
        return data

    frames = [chunk(d) for d in _deltas(reply, emu.new_id)]
    frames.append(chunk({}, _finish_reason(reply)))
    if include_usage:
        frames.append({**chunk(None), "usage": _usage(body, reply)})

    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
        }
    )
    await response.prepare(request)
    started = time.monotonic()
    await pause(emu.first_token_latency)
    try:
        for sent, frame in enumerate(frames):
            if sent:
                await pause(emu.token_delay)
            if await _stream_fault(emu, request, response, faults, sent, started):
                return response
            await _sse(response, frame)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away; nothing left to tell it
    return response


async def _stream_fault(
    emu: OpenAIEmulator,
    request: web.Request,
    response: web.StreamResponse,
    faults: ChatFaults,
    sent: int,
    started: float,
) -> bool:
    """Apply a mid-stream fault due before chunk number `sent`; True ends the stream."""
    if faults.error_after_chunks is not None and sent >= faults.error_after_chunks:
        await _sse(
            response,
            {
                "error": {
                    "message": faults.message
                    or "The server had an error while processing your request. Sorry about that!",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
        )
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return True
    if faults.malformed_after_chunks is not None and sent >= faults.malformed_after_chunks:
        for data in _MALFORMED:
            await _sse(response, data)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return True
    dropped = faults.drop_after_messages is not None and sent >= faults.drop_after_messages
    late = faults.drop_after_s is not None and time.monotonic() - started >= faults.drop_after_s
    if dropped or late:
        abort(request)
        return True
    if faults.hang_after_chunks is not None and sent >= faults.hang_after_chunks:
        await hang(request, emu.stopping)
        return True
    return False


# Valid JSON, wrong shapes: what a broken proxy or a protocol change could deliver.
_MALFORMED: tuple[Any, ...] = (
    {"choices": "not a list", "usage": 3},
    {
        "choices": [
            7,
            {"delta": "x"},
            {"delta": {"content": 5, "tool_calls": "y"}, "finish_reason": 1},
        ]
    },
    {"choices": [{"delta": {"tool_calls": [{"index": "0", "function": "f"}, 3]}}]},
    "not an object",
)


async def _sse(response: web.StreamResponse, data: Any) -> None:
    await response.write(b"data: " + json.dumps(data).encode() + b"\n\n")
