"""The Realtime processor: server events in, frames out, one reply per response."""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from typing import Any

from calls.pipeline.context import CallContext
from calls.pipeline.frames import (
    AudioIn,
    CallerSpeechStarted,
    CallerSpeechStopped,
    EventRecord,
    Frame,
    Hangup,
    Interrupt,
    ReplyDone,
    ReplyStarted,
    Say,
    StageChanged,
    ToolResult,
    TurnRecord,
)
from calls.pipeline.playout import PlayoutProcessor
from calls.pipeline.processor import Processor
from calls.pipeline.realtime import bargein
from calls.pipeline.realtime.client import RealtimeClient, RealtimeClientFactory
from calls.pipeline.realtime.connection import CONNECT_TIMEOUT_S, Connection
from calls.pipeline.realtime.says import SayQueue
from calls.pipeline.realtime.segments import Reply, Segmenter
from calls.pipeline.realtime.tools import RealtimeTools

log = logging.getLogger(__name__)

# A cancel that raced the server's own cancel on speech start: expected, not a fault.
_BENIGN_ERRORS = frozenset({"response_cancel_not_active"})


class RealtimeProcessor(Processor):
    def __init__(
        self,
        ctx: CallContext,
        client_factory: RealtimeClientFactory,
        *,
        playout: PlayoutProcessor,
        reconnect_delays: Sequence[float] = (0.0, 0.5, 2.0),
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.playout = playout
        self.link = Connection(
            client_factory, self, self.push,
            reconnect_delays=reconnect_delays, connect_timeout_s=connect_timeout_s,
        )  # fmt: skip
        self.segments = Segmenter(self.push)
        self.says = SayQueue()
        self.tools = RealtimeTools(self, self.push, self.spawn)
        self._reply: Reply | None = None  # the response being generated
        self._responses: dict[str, Reply] = {}  # until their response.done
        self._auto_pending = False  # the server VAD committed a turn and will respond
        self._speech_start = self._speech_end = self._stt_final = 0.0
        self._carried: dict[str, float] | None = None  # timings for a tool follow-up

    @property
    def rt(self) -> RealtimeClient | None:
        """The session of the moment, while one is up and caught up."""
        return self.link.rt

    async def start(self) -> None:
        self.spawn(self.link.run(), "realtime")

    async def stop(self) -> None:
        self.link.rt = None
        await super().stop()

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, AudioIn):
            await self.link.send_audio(frame.mulaw)
        elif isinstance(frame, Say):
            self.says.add(frame)
            await self._next_say()
        elif isinstance(frame, ToolResult):
            self.tools.runner.resolve(frame)
        elif isinstance(frame, Interrupt):
            await self._barge_in(frame.reason)
        else:
            await self.push(frame)

    # --- the connection's handler -------------------------------------------------------------
    def instructions(self, *, fresh: bool = True) -> str:
        """The persona's prompt; a fresh session (a reconnect, a resumed stream) also gets the
        conversation so far, unless the prompt template already renders it."""
        prompt = self.ctx.system_prompt(self.ctx.conversation)
        history = self.ctx.conversation.transcript()
        if fresh and history and history not in prompt:
            prompt += f"\n\nThe conversation so far (the call continues from here):\n{history}"
        return prompt

    def tools_offered(self) -> list[dict]:
        return self.ctx.tools

    async def ready(self) -> None:
        await self._next_say()

    async def lost(self, rt: RealtimeClient | None) -> None:
        """The session is gone: end its replies with what was received, re-ask a pending Say."""
        self._auto_pending = False
        if (sent := self.says.take_sent()) is not None:
            self.says.again(sent)
        for reply in [r for r in self._responses.values() if r.rt is rt]:
            if reply.say is not None and not reply.text and not reply.interrupted:
                self.says.again(reply.say)  # not a word of it came: ask again
                reply.end_call = False
            await self._response_done(reply)

    async def on_event(self, rt: RealtimeClient, event: Any) -> None:
        kind = getattr(event, "type", "")
        if kind == "response.output_audio.delta":
            await self._audio(event)
        elif kind == "response.output_audio_transcript.delta":
            await self._transcript(event)
        elif kind == "input_audio_buffer.speech_started":
            await self._speech_started()
        elif kind == "input_audio_buffer.speech_stopped":
            self._speech_end = self.ctx.clock()
            self._auto_pending = True
            await self.push(CallerSpeechStopped(self._speech_end))
        elif kind == "conversation.item.input_audio_transcription.completed":
            await self._caller_turn(event.transcript or "")
        elif kind == "response.created":
            await self._response_created(rt, event.response.id)
        elif kind == "response.output_audio.done":
            reply = self._current(event)
            if reply is not None and event.item_id in reply.items:
                await self.segments.flush(reply, reply.items[event.item_id])
        elif kind == "response.function_call_arguments.done":
            reply = self._responses.get(event.response_id)
            if reply is None or reply.interrupted:
                log.debug("tool call %s of a cancelled response ignored", event.name)
            else:
                await self.tools.call(reply, event.call_id, event.name, event.arguments)
        elif kind == "response.done":
            reply = self._responses.get(event.response.id)
            status = event.response.status
            if status == "completed":
                self.link.healthy = True
            elif status == "failed":
                await self._failed(reply, event.response.status_details)
            if reply is not None:
                await self._response_done(reply)
        elif kind == "error":
            await self._error(event.error)

    # --- the engine's side of the tools (calls.pipeline.tools.PipelineEnv) --------------------
    async def stage_changed(self, stage: str) -> None:
        await self.push(StageChanged(stage))
        rt = self.rt
        if rt is not None:  # the prompt names the current stage
            try:
                await rt.update_session(instructions=self.instructions(fresh=False))
            except Exception as exc:
                log.debug("realtime session update failed: %s", exc)

    # --- server events --------------------------------------------------------------------------
    def _current(self, event: Any) -> Reply | None:
        reply = self._reply
        return reply if reply is not None and reply.response_id == event.response_id else None

    async def _speech_started(self) -> None:
        self._speech_start = self.ctx.clock()
        if self._reply is not None or self.ctx.agent_speaking:
            await self._barge_in("barge-in")
        await self.push(CallerSpeechStarted(self._speech_start))

    async def _caller_turn(self, transcript: str) -> None:
        now = self.ctx.clock()
        self._stt_final = now
        self.tools.steps = 0
        text = transcript.strip()
        if not text:
            return
        self.ctx.conversation.add_caller(text)
        reply = self._reply
        if reply is not None and reply.id in self.ctx.metrics:
            self.ctx.metrics[reply.id].setdefault("stt_final", now)
        await self.push(
            TurnRecord("caller", text, started_at=self._speech_start or now,
                       ended_at=self._speech_end or now)
        )  # fmt: skip

    async def _response_created(self, rt: RealtimeClient, response_id: str) -> None:
        say = None
        if self.says.sent is not None and not self._auto_pending:
            say = self.says.take_sent()
        reply = Reply(self.ctx.next_reply_id(), response_id, rt, say=say)
        reply.end_call = bool(say and say.end_call)
        if self._auto_pending:  # answering the caller's speech: time it from its end
            metrics = {"speech_end": self._speech_end}
            if self._stt_final >= self._speech_end:
                metrics["stt_final"] = self._stt_final
            self.ctx.metrics[reply.id] = metrics
        elif say is None and self._carried:
            self.ctx.metrics[reply.id] = self._carried
        self._auto_pending, self._carried = False, None
        self._reply = reply
        self._responses[response_id] = reply
        audible = self.segments.audible
        for done in [r for r in audible.values() if self.playout.played_ms(r.id) is None]:
            del audible[done.id]  # played out in full
        await self.push(ReplyStarted(reply.id))

    async def _audio(self, event: Any) -> None:
        reply = self._current(event)
        if reply is None:
            return  # a cancelled response still streaming
        data = base64.b64decode(event.delta)
        now = self.ctx.clock()
        metrics = self.ctx.metrics.setdefault(reply.id, {})
        metrics.setdefault("llm_first_token", now)
        metrics.setdefault("tts_first_byte", now)
        await self.segments.audio(reply, event.item_id, data)

    async def _transcript(self, event: Any) -> None:
        reply = self._current(event)
        if reply is None:
            return
        self.ctx.metrics.get(reply.id, {}).setdefault("llm_first_token", self.ctx.clock())
        await self.segments.transcript(reply, event.item_id, event.delta)

    # --- the end of a response ------------------------------------------------------------------
    async def _response_done(self, reply: Reply) -> None:
        self._responses.pop(reply.response_id, None)
        if self._reply is reply:
            self._reply = None
        if not reply.interrupted:
            await self._finish(reply)
        if reply.results:
            self.spawn(
                self.tools.deliver(reply, lambda: self.rt, lambda: self._reply is not None),
                f"tools-{reply.id}",
            )
        await self._next_say()

    async def _failed(self, reply: Reply | None, details: Any) -> None:
        error = getattr(details, "error", None)
        reason = getattr(error, "message", None) or getattr(error, "code", None) or str(details)
        await self.push(EventRecord("error", {"provider": "realtime", "reason": reason}))
        if reply is not None and not reply.text and reply.say is None:
            self.says.add(Say(self.ctx.options.fallback_text, kind="fallback"))

    async def _finish(self, reply: Reply) -> None:
        for item in list(reply.items.values()):
            await self.segments.flush(reply, item)
        text = reply.text
        if text or reply.calls:
            self.ctx.conversation.add_agent(text, tool_calls=reply.calls or None, reply_id=reply.id)
        if reply.id not in self.segments.audible:  # no audio: the playout never records timings
            metrics = self.ctx.metrics.pop(reply.id, None)
            if reply.follow_up and metrics:
                self._carried = metrics  # the follow-up answers the same caller turn
        end_call = reply.end_call
        if end_call and not text and self.ctx.persona.goodbye:
            end_call = False  # hang up after the goodbye instead
            self.says.again(Say(self.ctx.persona.goodbye, kind="goodbye", end_call=True))
        await self.push(ReplyDone(reply.id, end_call=end_call))

    # --- barge-in -------------------------------------------------------------------------------
    async def _barge_in(self, reason: str) -> None:
        rt, reply = self.rt, self._reply
        if reply is not None:  # stop taking its audio; what it said so far goes into the history
            self._reply = None
            reply.interrupted = True
            text = reply.text
            if text or reply.calls:
                self.ctx.conversation.add_agent(
                    text, tool_calls=reply.calls or None, reply_id=reply.id
                )
        cuts = bargein.cuts(self.segments.audible, self.playout)  # before the playhead is lost
        await self.push(Interrupt(reason))  # `clear` first: the caller stops hearing us now
        if reply is not None:
            self.ctx.metrics.pop(reply.id, None)
            if rt is not None and rt is reply.rt:
                try:
                    await rt.cancel()
                except Exception as exc:
                    log.debug("realtime cancel failed: %s", exc)
        await bargein.truncate(self.rt, cuts)

    # --- spoken lines and errors ----------------------------------------------------------------
    async def _next_say(self) -> None:
        await self.says.next(self.rt, busy=self._reply is not None)

    async def _error(self, error: Any) -> None:
        code = getattr(error, "code", None) or ""
        if code in _BENIGN_ERRORS:
            return
        say = self.says.take_sent()
        if say is not None and code == "conversation_already_has_active_response":
            self.says.again(say)  # asked again when that response is done
            return
        await self.push(
            EventRecord("error", {"provider": "realtime", "code": code,
                                  "reason": getattr(error, "message", "") or str(error)})
        )  # fmt: skip
        if say is not None and say.end_call:  # the goodbye cannot be said: hang up anyway
            await self.push(Hangup("agent ended the call"))
