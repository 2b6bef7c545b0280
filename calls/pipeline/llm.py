"""Runs the LLM for each caller turn and streams its reply out as speakable text chunks.

CallerTurn -> ReplyStarted, TextChunk*, ToolRequest*, ReplyDone
Interrupt  -> cancels the reply in flight (history keeps what was said so far)
"""

from __future__ import annotations

import asyncio
import json
import logging

from calls.pipeline.chunker import TextChunker
from calls.pipeline.context import CallContext
from calls.pipeline.frames import (
    CallerTurn,
    EventRecord,
    Frame,
    Interrupt,
    ReplyDone,
    ReplyStarted,
    StageChanged,
    TextChunk,
    ToolResult,
)
from calls.pipeline.processor import Processor
from calls.pipeline.tools import ToolRunner
from calls.providers.llm.base import LLMDone, LLMProvider, LLMRequest, TextDelta, ToolCall

log = logging.getLogger(__name__)


class LLMProcessor(Processor):
    def __init__(self, ctx: CallContext, provider: LLMProvider, *, model: str = "") -> None:
        super().__init__()
        self.ctx = ctx
        self.provider = provider
        self.model = model
        self._reply: asyncio.Task | None = None
        self._reply_id = 0
        self.tools = ToolRunner(self, self.push)

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, CallerTurn):
            await self._cancel()
            self.ctx.conversation.add_caller(frame.text)
            reply_id = self._reply_id = self.ctx.next_reply_id()
            self.ctx.metrics[reply_id] = {
                "speech_end": frame.speech_end,
                "stt_final": frame.stt_final,
            }
            self._reply = self.spawn(self._respond(reply_id), f"reply-{reply_id}")
            return
        if isinstance(frame, ToolResult):
            self.tools.resolve(frame)
            return
        if isinstance(frame, Interrupt):
            await self._cancel()
        await self.push(frame)

    async def _cancel(self) -> None:
        """Stop the reply in flight. It still ends with ReplyDone: the playout closes replies in
        order, so one left open would hold back the record of every reply after it."""
        reply, self._reply = self._reply, None
        if reply is not None and not reply.done():
            reply.cancel()
            await asyncio.gather(reply, return_exceptions=True)
            await self.push(ReplyDone(self._reply_id))

    async def _respond(self, reply_id: int) -> None:
        await self.push(ReplyStarted(reply_id))
        spoken: list[str] = []
        end_call = False
        unanswered: list[ToolCall] = []  # in the history, their results not yet
        try:
            for _step in range(self.ctx.options.max_tool_steps):
                calls = await self._one_completion(reply_id, spoken)
                if calls is None:  # failed: the fallback line was spoken
                    break
                follow_up, unanswered = False, list(calls)
                for call in calls:
                    await self.tools.record(call.name, call.arguments)
                    result = await self.tools.run(reply_id, call.id, call.name, call.arguments)
                    self.ctx.conversation.add_tool_result(call.id, result)
                    unanswered.remove(call)
                    spec = self.tools.spec(call.name)
                    if spec is not None:
                        follow_up |= spec.follow_up
                        end_call |= spec.ends_call
                if not follow_up or end_call:
                    break
        except asyncio.CancelledError:
            for call in unanswered:  # every tool call needs its result before the next request
                self.ctx.conversation.add_tool_result(
                    call.id, {"ok": False, "error": "interrupted"}
                )
            self._remember(reply_id, spoken)
            raise
        said = spoken or any(
            m.get("content") for m in self.ctx.conversation.replies.get(reply_id, [])
        )
        if end_call and not said and self.ctx.persona.goodbye:
            await self._speak(reply_id, self.ctx.persona.goodbye, spoken)
        self._remember(reply_id, spoken)
        await self.push(ReplyDone(reply_id, end_call=end_call))

    def _remember(self, reply_id: int, spoken: list[str]) -> None:
        if spoken:
            self.ctx.conversation.add_agent(" ".join(spoken), reply_id=reply_id)
            spoken.clear()

    async def _speak(self, reply_id: int, text: str, spoken: list[str]) -> None:
        spoken.append(text)
        await self.push(TextChunk(reply_id, text))

    async def _one_completion(self, reply_id: int, spoken: list[str]) -> list[ToolCall] | None:
        """Stream one completion; returns its tool calls, or None after a failure and fallback."""
        metrics = self.ctx.metrics.setdefault(reply_id, {})
        for attempt in range(self.ctx.options.llm_retries + 1):
            chunker, calls, text_sent = TextChunker(), [], False
            request = LLMRequest(
                messages=self.ctx.llm_messages(), tools=self.ctx.tools, persona=self.ctx.persona,
                model=self.model,
            )  # fmt: skip
            metrics.setdefault("llm_request", self.ctx.clock())
            try:
                async for event in self.provider.stream(request):
                    if isinstance(event, TextDelta):
                        metrics.setdefault("llm_first_token", self.ctx.clock())
                        for piece in chunker.push(event.text):
                            text_sent = True
                            await self._speak(reply_id, piece, spoken)
                    elif isinstance(event, ToolCall):
                        metrics.setdefault("llm_first_token", self.ctx.clock())
                        calls.append(event)
                    elif isinstance(event, LLMDone):
                        break
                for piece in chunker.flush():
                    await self._speak(reply_id, piece, spoken)
                self._record_tool_calls(reply_id, spoken, calls)
                return calls
            except Exception as exc:  # any failure, not only LLMError: the caller must hear back
                reason = str(exc) or type(exc).__name__
                await self.push(EventRecord("error", {"provider": "llm", "attempt": attempt + 1,
                                                      "reason": reason}))  # fmt: skip
                if text_sent:
                    break  # never repeat words the caller already heard
        await self._speak(reply_id, self.ctx.options.fallback_text, spoken)
        return None

    def _record_tool_calls(self, reply_id: int, spoken: list[str], calls: list[ToolCall]) -> None:
        if not calls:
            return
        self.ctx.conversation.add_agent(
            " ".join(spoken),
            tool_calls=[
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for c in calls
            ],
            reply_id=reply_id,
        )
        spoken.clear()

    async def stage_changed(self, stage: str) -> None:
        await self.push(StageChanged(stage))
