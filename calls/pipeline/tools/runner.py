"""Runs the model's tool calls through the registry: in the engine, or by asking the session."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from calls.pipeline.context import CallContext
from calls.pipeline.frames import EventRecord, Frame, ToolRequest, ToolResult
from calls.pipeline.tools.env import PipelineEnv, SessionEnv
from calls.pipeline.tools.registry import REGISTRY, ToolSpec, Where

log = logging.getLogger(__name__)
TOOL_RESULT_TIMEOUT_S = 10.0


def offered_spec(ctx: CallContext, name: str) -> ToolSpec | None:
    """The entry for `name` if it was offered on this call (a tool not offered does not run)."""
    spec = REGISTRY.get(name)
    if spec is None or not any((t.get("function") or t).get("name") == name for t in ctx.tools):
        return None
    return spec


def _failed(name: str, exc: Exception) -> dict:
    log.warning("tool %s failed: %s", name, exc)
    return {"ok": False, "error": str(exc) or type(exc).__name__}


class ToolRunner:
    """One engine's tool calls. A pipeline tool runs here; a session tool goes downstream as a
    ToolRequest (so it acts only once the words before it have played) and its ToolResult comes
    back through `resolve`. Only the tools offered on the call (`ctx.tools`) run."""

    def __init__(self, env: PipelineEnv, push: Callable[[Frame], Awaitable[None]]) -> None:
        self.env = env
        self.push = push
        self.timeout_s = TOOL_RESULT_TIMEOUT_S
        self._waiting: dict[str, asyncio.Future[dict]] = {}

    def spec(self, name: str) -> ToolSpec | None:
        return offered_spec(self.env.ctx, name)

    async def record(self, name: str, arguments: dict) -> None:
        await self.push(EventRecord("tool_call", {"name": name, "arguments": arguments}))

    async def run(self, reply_id: int, call_id: str, name: str, arguments: dict) -> dict:
        """The result of one call, for the model."""
        spec = self.spec(name)
        if spec is None:
            return {"ok": False, "error": f"unknown tool {name}"}
        if spec.where is Where.SESSION:
            return await self._from_session(ToolRequest(reply_id, call_id, name, arguments))
        try:
            return await spec.handler(self.env, arguments)
        except Exception as exc:
            return _failed(name, exc)

    def resolve(self, frame: ToolResult) -> None:
        future = self._waiting.pop(frame.call_id, None)
        if future is not None and not future.done():
            future.set_result(frame.result)

    async def _from_session(self, request: ToolRequest) -> dict:
        future = asyncio.get_running_loop().create_future()
        self._waiting[request.call_id] = future
        await self.push(request)
        try:  # not `wait_for`: on 3.11 it drops a cancellation that lands with the result
            async with asyncio.timeout(self.timeout_s):
                return await future
        except TimeoutError:
            return {"ok": False, "error": "timed out"}
        finally:
            self._waiting.pop(request.call_id, None)


async def run_in_session(env: SessionEnv, request: ToolRequest) -> dict:
    """The session's side of a ToolRequest: its handler's result, or why there is none."""
    spec = offered_spec(env.ctx, request.name)
    if spec is None or spec.where is not Where.SESSION:
        return {"ok": False, "error": f"unknown tool {request.name}"}
    try:
        return await spec.handler(env, request.arguments)
    except Exception as exc:
        return _failed(request.name, exc)
