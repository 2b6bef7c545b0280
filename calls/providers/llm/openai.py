"""OpenAI chat-completions adapter: streamed text and tool calls over one reused client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

from calls.providers.llm.base import (
    LLMDone,
    LLMError,
    LLMEvent,
    LLMProvider,
    LLMRequest,
    TextDelta,
    ToolCall,
    parse_arguments,
)

try:
    from openai import APIError, APIStatusError, AsyncOpenAI, AsyncStream
    from openai.types.chat import ChatCompletion
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("OpenAILLM needs the OpenAI SDK: pip install 'openai>=3.51'") from exc

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# `chat.completions.create` keyword arguments that are request options, not body fields.
_OPTION_KWARGS = {"extra_headers": "headers", "extra_query": "params"}

_END = object()


class _PendingCall:
    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []

    def add(self, delta: dict) -> None:
        """Fold in one streamed tool-call delta (id and name arrive once, arguments in pieces)."""
        if _text(delta.get("id")):
            self.id = delta["id"]
        function = delta.get("function")
        if isinstance(function, dict):
            if _text(function.get("name")):
                self.name = function["name"]
            if _text(function.get("arguments")):
                self.arguments.append(function["arguments"])

    def finish(self) -> ToolCall:
        raw = "".join(self.arguments)
        return ToolCall(id=self.id, name=self.name, arguments=parse_arguments(raw))


def _tool_schema(tool: dict) -> dict:
    """Accept both `{"type":"function","function":{...}}` and a bare function schema."""
    return tool if "type" in tool else {"type": "function", "function": tool}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        code = f" ({body['code']})" if body.get("code") else ""
        return f"HTTP {exc.status_code}{code}: {body.get('message') or exc.message}"
    if isinstance(exc, APIError):
        return f"{type(exc).__name__}: {exc.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class OpenAILLM(LLMProvider):
    """Streams `chat.completions` with tools.

    `timeout` bounds each network wait (connect, and the gap between streamed chunks);
    `first_token_timeout` bounds the time from the request to the first content, tool-call or
    finish chunk. Any failure is raised as LLMError. Extra keyword arguments are what
    `chat.completions.create` takes (e.g. `tool_choice`, `parallel_tool_calls`, `extra_body`).

    The request goes through the client's `post` with the body already in OpenAI's wire shape:
    `create` would walk every message through the SDK's type-driven transform on the event loop,
    a cost that grows with the history, and draw a uuid4 per request for an idempotency key (a
    getrandom syscall; OpenAI sends no such header, so a counter serves). Streamed chunks are
    read as the JSON objects the SDK decoded (`AsyncStream[object]`) rather than built into
    `ChatCompletionChunk` models, the largest CPU cost of a reply otherwise (bench/README.md).
    HTTP, errors (including error events inside the stream), retries and SSE parsing are the
    SDK's.
    """

    name = "openai"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "",
        model: str = "gpt-4o-mini",
        timeout: float = 10.0,
        first_token_timeout: float = 5.0,
        **kw: Any,
    ) -> None:
        self.model = model
        self.first_token_timeout = first_token_timeout
        self._options = {_OPTION_KWARGS[k]: kw.pop(k) for k in list(kw) if k in _OPTION_KWARGS}
        self._extra_body = kw.pop("extra_body", None) or {}
        self._create_kwargs = kw
        prefix = f"callcenter-{uuid.uuid4().hex[:12]}"
        self._keys = (f"{prefix}-{n}" for n in itertools.count(1))
        # base_url is always explicit so OPENAI_BASE_URL in the environment cannot redirect us.
        self._client = AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or DEFAULT_BASE_URL,
            timeout=timeout,
            max_retries=0,
        )

    async def aclose(self) -> None:
        await self._client.close()

    def _params(self, request: LLMRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            params["tools"] = [_tool_schema(t) for t in request.tools]
        params.update(self._create_kwargs)
        params.update(self._extra_body)
        return params

    def _failure(self, exc: Exception, deadline: float | None) -> LLMError:
        # asyncio.timeout_at raises TimeoutError; an SDK timeout before the deadline is not ours.
        loop_time = asyncio.get_running_loop().time()
        if isinstance(exc, TimeoutError) and deadline is not None and loop_time >= deadline:
            return LLMError(f"no first token within {self.first_token_timeout:g}s")
        return LLMError(_describe(exc))

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        # `deadline` guards the first token only; afterwards the SDK's read timeout applies.
        deadline: float | None = asyncio.get_running_loop().time() + self.first_token_timeout
        try:
            async with asyncio.timeout_at(deadline):
                sdk_stream = await self._client.post(
                    "/chat/completions",
                    body=self._params(request),
                    cast_to=ChatCompletion,
                    stream=True,
                    stream_cls=AsyncStream[object],
                    options={**self._options, "idempotency_key": next(self._keys)},
                )
        except Exception as exc:
            raise self._failure(exc, deadline) from exc

        chunks = sdk_stream.__aiter__()
        pending: dict[int, _PendingCall] = {}
        finish_reason = ""
        usage: dict = {}
        try:
            while True:
                try:
                    chunk = await _next_chunk(chunks, deadline)
                except Exception as exc:  # httpx2 transport errors surface unwrapped mid-stream
                    raise self._failure(exc, deadline) from exc
                if chunk is _END:
                    break
                if not isinstance(chunk, dict):
                    raise LLMError(f"malformed stream chunk: {str(chunk)[:80]!r}")
                if isinstance(chunk.get("usage"), dict):
                    usage = {k: v for k, v in chunk["usage"].items() if v is not None}
                for choice in _dicts(chunk.get("choices")):
                    delta = choice.get("delta")
                    delta = delta if isinstance(delta, dict) else {}
                    if _text(delta.get("content")):
                        deadline = None
                        yield TextDelta(delta["content"])
                    for tc in _dicts(delta.get("tool_calls")):
                        deadline = None
                        index = tc.get("index")
                        index = index if isinstance(index, int) else 0
                        if index not in pending:
                            # A new index means every earlier call is complete.
                            for idx in sorted(i for i in pending if i < index):
                                yield pending.pop(idx).finish()
                            pending[index] = _PendingCall()
                        pending[index].add(tc)
                    if _text(choice.get("finish_reason")):
                        deadline = None
                        finish_reason = choice["finish_reason"]
                        for idx in sorted(pending):
                            yield pending.pop(idx).finish()
        finally:
            with contextlib.suppress(Exception):
                await sdk_stream.close()

        if not finish_reason:
            raise LLMError("stream ended without a finish_reason (connection dropped?)")
        yield LLMDone(finish_reason=finish_reason, usage=usage)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _dicts(value: Any) -> list[dict]:
    """The objects of a JSON array (anything else in it, or a non-array, is ignored)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


async def _next_chunk(chunks: AsyncIterator[Any], deadline: float | None) -> Any:
    if deadline is None:
        return await anext(chunks, _END)
    async with asyncio.timeout_at(deadline):
        return await anext(chunks, _END)
