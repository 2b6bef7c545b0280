"""The model's tool calls on a Realtime session: run through the registry, their results sent once
the response is over, and a follow-up response when the tool asks for one."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from calls.pipeline.frames import Frame
from calls.pipeline.realtime.client import RealtimeClient
from calls.pipeline.realtime.segments import Reply
from calls.pipeline.tools import PipelineEnv, ToolRunner, Where
from calls.providers.llm.base import parse_arguments

log = logging.getLogger(__name__)


class RealtimeTools:
    def __init__(
        self,
        env: PipelineEnv,
        push: Callable[[Frame], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task],
    ) -> None:
        self.ctx = env.ctx
        self.runner = ToolRunner(env, push)
        self.spawn = spawn
        self.steps = 0  # follow-ups asked for since the caller last spoke

    async def call(self, reply: Reply, call_id: str, name: str, raw_arguments: str) -> None:
        """One `response.function_call_arguments.done`: a pipeline tool runs now, a session tool
        is asked for; either result waits for the end of the response (`deliver`)."""
        arguments = parse_arguments(raw_arguments)
        await self.runner.record(name, arguments)
        reply.calls.append(
            {"id": call_id, "type": "function",
             "function": {"name": name, "arguments": raw_arguments}}
        )  # fmt: skip
        spec = self.runner.spec(name)
        if spec is not None and spec.where is Where.SESSION:
            reply.results.append(self.spawn(self._result(reply.id, call_id, name, arguments)))
        else:
            done = asyncio.get_running_loop().create_future()
            done.set_result(await self._result(reply.id, call_id, name, arguments))
            reply.results.append(done)
        if spec is not None:
            reply.follow_up |= spec.follow_up
            reply.end_call |= spec.ends_call

    async def _result(
        self, reply_id: int, call_id: str, name: str, arguments: dict
    ) -> tuple[str, dict]:
        return call_id, await self.runner.run(reply_id, call_id, name, arguments)

    async def deliver(
        self, reply: Reply, current: Callable[[], RealtimeClient | None], busy: Callable[[], bool]
    ) -> None:
        """Once its response is over: tool results to the model, and a follow-up if one is due
        (`current()`: the session of the moment; `busy()`: a response is in progress)."""
        results = await asyncio.gather(*reply.results)
        for call_id, result in results:
            self.ctx.conversation.add_tool_result(call_id, result)
        rt = current()
        if rt is None or rt is not reply.rt:
            return  # that session is gone; the results are in the history the next one gets
        try:
            for call_id, result in results:
                await rt.send_tool_result(call_id, json.dumps(result), respond=False)
            if (
                reply.follow_up and not reply.end_call and not reply.interrupted
                and not busy() and self.steps < self.ctx.options.max_tool_steps
            ):  # fmt: skip
                self.steps += 1
                await rt.respond()
        except Exception as exc:
            log.debug("realtime tool result not sent: %s", exc)
