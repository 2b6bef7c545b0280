"""The Realtime session the processor drives (its interface), and the tool schemas in its shape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol


class RealtimeClient(Protocol):
    """One Realtime session (calls.providers.realtime.openai.OpenAIRealtime)."""

    async def connect(self) -> None: ...
    def events(self) -> AsyncIterator[Any]: ...
    async def send_audio(self, mulaw: bytes) -> None: ...
    async def truncate(self, played_ms: int, item_id: str = "") -> None: ...
    async def cancel(self) -> None: ...
    async def respond(self, instructions: str = "") -> None: ...
    async def update_session(self, **fields: Any) -> None: ...
    async def send_tool_result(
        self, call_id: str, output: str, *, respond: bool = True
    ) -> None: ...
    async def close(self) -> None: ...


# (instructions, tools in the Realtime shape) -> a new, not yet connected session.
RealtimeClientFactory = Callable[[str, list[dict]], RealtimeClient]


def realtime_tools(tools: Sequence[dict]) -> list[dict]:
    """Chat-completions function schemas (`{"type", "function": {...}}`) in the Realtime shape."""
    shaped = []
    for tool in tools:
        fn = tool.get("function", tool)
        shaped.append(
            {
                "type": "function",
                "name": fn["name"],
                "description": fn.get("description", ""),
                "parameters": fn.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    return shaped


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
