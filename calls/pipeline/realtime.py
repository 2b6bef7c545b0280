"""Speech-to-speech on the OpenAI Realtime API, in place of VAD, STT, turn-taking, LLM and TTS.

AudioIn     -> input_audio_buffer.append (the caller's mu-law, unchanged)
Say         -> a response that speaks the text            ToolResult -> function_call_output
caller speech over the agent, or Interrupt -> response.cancel, Interrupt (the playout clears and
               records the heard text), conversation.item.truncate(audio_end_ms = ms played)
server events -> CallerSpeechStarted/Stopped, TurnRecord(caller), ReplyStarted, SpeechChunk*,
               ReplyDone (one reply per response), ToolRequest, StageChanged, EventRecord
a dropped socket -> EventRecord, then a fresh session whose instructions carry the history
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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
    SpeechChunk,
    StageChanged,
    ToolRequest,
    ToolResult,
    TurnRecord,
)
from calls.pipeline.llm import TOOL_RESULT_TIMEOUT_S, reply_ids
from calls.pipeline.playout import PlayoutProcessor
from calls.pipeline.processor import Processor
from calls.pipeline.tools import FOLLOW_UP

log = logging.getLogger(__name__)

BYTES_PER_MS = 8  # G.711 mu-law, 8 kHz
# At the start of an item, agent audio waits up to this much for its first transcript words.
HOLD_START_BYTES = 1000 * BYTES_PER_MS
# Caller audio kept while the socket is down and replayed to the next session (2 s of frames).
REPLAY_FRAMES = 100
CONNECT_TIMEOUT_S = 10.0
SAY_INSTRUCTIONS = "Say exactly the following words, and nothing else: {text}"
# A cancel that raced the server's own cancel on speech start: expected, not a fault.
_BENIGN_ERRORS = frozenset({"response_cancel_not_active"})


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


def take_words(pending: str) -> tuple[str, str]:
    """Split streamed transcript into (words to give a segment now, a possibly unfinished word).

    " Hello, how are yo" -> ("Hello, how are", " yo"); a single word goes out whole.
    """
    if pending[-1:].isspace():
        return pending.strip(), ""
    words = pending.lstrip()
    cut = words.rfind(" ")
    if cut < 0:
        return words, ""
    return words[:cut].rstrip(), words[cut:]


def _arguments(raw: str) -> dict:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass
class _Item:
    """One assistant audio item: audio waiting for its words, and which segments carry it."""

    id: str
    held: bytearray = field(default_factory=bytearray)
    text: str = ""  # transcript not yet given to a segment
    transcript: str = ""
    received_ms: int = 0  # counted per delta, in whole ms, as the server counts it
    segments: dict[int, int] = field(default_factory=dict)  # segment -> audio bytes


@dataclass
class _Reply:
    """One Realtime response, spoken as one reply."""

    id: int
    response_id: str
    rt: RealtimeClient
    say: Say | None = None
    items: dict[str, _Item] = field(default_factory=dict)
    item: _Item | None = None  # the item being streamed
    segment: int | None = None  # the open segment
    segment_text: str = ""
    calls: list[dict] = field(default_factory=list)  # its tool calls, chat format
    results: list[asyncio.Future] = field(default_factory=list)  # -> (call_id, result)
    end_call: bool = False
    follow_up: bool = False
    interrupted: bool = False

    @property
    def text(self) -> str:
        return " ".join(t for t in (i.transcript.strip() for i in self.items.values()) if t)


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
        self.factory = client_factory
        self.playout = playout
        self.reconnect_delays = tuple(reconnect_delays)
        self.connect_timeout_s = connect_timeout_s
        self.rt: RealtimeClient | None = None  # set while a session is up and caught up
        self._backlog: deque[bytes] = deque(maxlen=REPLAY_FRAMES)
        self._reply: _Reply | None = None  # the response being generated
        self._responses: dict[str, _Reply] = {}  # until their response.done
        self._audible: dict[int, _Reply] = {}  # replies whose audio may still be playing
        self._says: deque[Say] = deque()
        self._say_sent: Say | None = None  # asked for, its response not created yet
        self._results: dict[str, asyncio.Future] = {}
        self._segments = itertools.count(1)
        self._auto_pending = False  # the server VAD committed a turn and will respond
        self._speech_start = self._speech_end = self._stt_final = 0.0
        self._tool_steps = 0
        self._carried: dict[str, float] | None = None  # timings for a tool follow-up
        self._sessions = 0
        self._healthy = False

    async def start(self) -> None:
        self.spawn(self._run(), "realtime")

    async def stop(self) -> None:
        self.rt = None
        await super().stop()

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, AudioIn):
            await self._send_audio(frame.mulaw)
        elif isinstance(frame, Say):
            self._says.append(frame)
            await self._next_say()
        elif isinstance(frame, ToolResult):
            future = self._results.pop(frame.call_id, None)
            if future is not None and not future.done():
                future.set_result(frame.result)
        elif isinstance(frame, Interrupt):
            await self._barge_in(frame.reason)
        else:
            await self.push(frame)

    # --- the connection -----------------------------------------------------------------------
    async def _send_audio(self, mulaw: bytes) -> None:
        rt = self.rt
        if rt is None:
            self._backlog.append(mulaw)
            return
        try:
            await rt.send_audio(mulaw)
        except Exception as exc:  # the reader sees the drop and reconnects; keep the audio
            log.debug("realtime send failed: %s", exc)
            self._backlog.append(mulaw)

    def _instructions(self, *, fresh: bool = True) -> str:
        """The persona's prompt; a fresh session (a reconnect, a resumed stream) also gets the
        conversation so far, unless the prompt template already renders it."""
        prompt = self.ctx.system_prompt(self.ctx.conversation)
        history = self.ctx.conversation.transcript()
        if fresh and history and history not in prompt:
            prompt += f"\n\nThe conversation so far (the call continues from here):\n{history}"
        return prompt

    async def _run(self) -> None:
        """Keep one session up; after a drop, a fresh one primed with the conversation so far."""
        failures = 0
        while True:
            rt: RealtimeClient | None = None
            self._healthy = False
            try:
                try:
                    rt = self.factory(self._instructions(), realtime_tools(self.ctx.tools))
                    async with asyncio.timeout(self.connect_timeout_s):
                        await rt.connect()
                except Exception as exc:
                    reason = f"connect failed: {_describe(exc)}"
                else:
                    reason = await self._serve(rt)
            finally:
                self.rt = None
                if rt is not None:
                    with contextlib.suppress(Exception):
                        await rt.close()
            await self._lost(rt)
            failures = 0 if self._healthy else failures + 1
            await self.push(
                EventRecord("error", {"provider": "realtime", "reason": reason,
                                      "failures": failures})
            )  # fmt: skip
            if failures > len(self.reconnect_delays):
                await self.push(
                    EventRecord("error", {"provider": "realtime", "fatal": True,
                                          "reason": f"gave up after {failures} failures"})
                )  # fmt: skip
                await self.push(Hangup("speech-to-speech engine unavailable"))
                return
            await asyncio.sleep(self.reconnect_delays[max(0, failures - 1)])

    async def _serve(self, rt: RealtimeClient) -> str:
        """Run one connected session until it ends; returns why it ended."""
        self._sessions += 1
        if self._sessions > 1:
            await self.push(EventRecord("provider", {"provider": "realtime",
                                                     "action": "reconnected"}))  # fmt: skip
        try:
            while self._backlog:  # the caller audio the previous session missed, in order
                await rt.send_audio(self._backlog.popleft())
            self.rt = rt  # no await since the backlog emptied: nothing is sent out of order
            await self._next_say()
            async for event in rt.events():
                await self._on_event(rt, event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return _describe(exc)
        return "connection closed by the server"

    async def _lost(self, rt: RealtimeClient | None) -> None:
        """The session is gone: end its replies with what was received, re-ask a pending Say."""
        self._auto_pending = False
        if self._say_sent is not None:
            self._says.appendleft(self._say_sent)
            self._say_sent = None
        for reply in [r for r in self._responses.values() if r.rt is rt]:
            if reply.say is not None and not reply.text and not reply.interrupted:
                self._says.appendleft(reply.say)  # not a word of it came: ask again
                reply.end_call = False
            await self._response_done(reply)

    # --- server events ------------------------------------------------------------------------
    async def _on_event(self, rt: RealtimeClient, event: Any) -> None:
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
                await self._flush(reply, reply.items[event.item_id])
        elif kind == "response.function_call_arguments.done":
            await self._tool_call(event)
        elif kind == "response.done":
            reply = self._responses.get(event.response.id)
            status = event.response.status
            if status == "completed":
                self._healthy = True
            elif status == "failed":
                await self._failed(reply, event.response.status_details)
            if reply is not None:
                await self._response_done(reply)
        elif kind == "error":
            await self._error(event.error)

    def _current(self, event: Any) -> _Reply | None:
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
        self._tool_steps = 0
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
        if self._say_sent is not None and not self._auto_pending:
            say, self._say_sent = self._say_sent, None
        reply = _Reply(next(reply_ids), response_id, rt, say=say)
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
        for done in [r for r in self._audible.values() if self.playout.played_ms(r.id) is None]:
            del self._audible[done.id]  # played out in full
        await self.push(ReplyStarted(reply.id))

    # --- agent audio -> segments ----------------------------------------------------------------
    async def _item(self, reply: _Reply, item_id: str) -> _Item:
        item = reply.items.get(item_id)
        if item is None:
            if reply.item is not None:
                await self._flush(reply, reply.item)
            item = reply.items[item_id] = _Item(item_id)
            reply.item = item
        return item

    async def _audio(self, event: Any) -> None:
        reply = self._current(event)
        if reply is None:
            return  # a cancelled response still streaming
        data = base64.b64decode(event.delta)
        now = self.ctx.clock()
        metrics = self.ctx.metrics.setdefault(reply.id, {})
        metrics.setdefault("llm_first_token", now)
        metrics.setdefault("tts_first_byte", now)
        item = await self._item(reply, event.item_id)
        # Audio normally arrives next to its words; audio with none waits one delta at most,
        # except at the start of an item, where it waits (up to a bound) for the first words.
        waited = reply.segment is not None or len(item.held) >= HOLD_START_BYTES
        if item.held and not item.text.strip() and waited:
            if reply.segment is None:
                await self._open(reply, "")
            await self._emit(reply, item)
        item.held += data
        item.received_ms += len(data) // BYTES_PER_MS
        await self._pair(reply, item)

    async def _transcript(self, event: Any) -> None:
        reply = self._current(event)
        if reply is None:
            return
        self.ctx.metrics.get(reply.id, {}).setdefault("llm_first_token", self.ctx.clock())
        item = await self._item(reply, event.item_id)
        item.text += event.delta
        item.transcript += event.delta
        await self._pair(reply, item)

    async def _pair(self, reply: _Reply, item: _Item) -> None:
        """Held audio and new words go out together as a new segment."""
        if item.held and item.text.strip():
            words, item.text = take_words(item.text)
            await self._open(reply, words)
            await self._emit(reply, item)

    async def _open(self, reply: _Reply, text: str) -> None:
        await self._close(reply)
        reply.segment, reply.segment_text = next(self._segments), text

    async def _close(self, reply: _Reply) -> None:
        if reply.segment is not None:
            segment, reply.segment = reply.segment, None
            await self.push(SpeechChunk(reply.id, segment, reply.segment_text, b"", end=True))

    async def _emit(self, reply: _Reply, item: _Item) -> None:
        data = bytes(item.held)
        item.held.clear()
        assert reply.segment is not None
        item.segments[reply.segment] = item.segments.get(reply.segment, 0) + len(data)
        self._audible[reply.id] = reply
        await self.push(SpeechChunk(reply.id, reply.segment, reply.segment_text, data))

    async def _flush(self, reply: _Reply, item: _Item) -> None:
        """The item is complete: send what is held with the words left, close the segment."""
        text, item.text = item.text.strip(), ""
        if item.held:
            if text or reply.segment is None:
                await self._open(reply, text)
            await self._emit(reply, item)
        elif text:
            await self._open(reply, text)  # words without audio: a silent segment
        await self._close(reply)
        if reply.item is item:
            reply.item = None

    # --- the end of a response ------------------------------------------------------------------
    async def _response_done(self, reply: _Reply) -> None:
        self._responses.pop(reply.response_id, None)
        if self._reply is reply:
            self._reply = None
        if not reply.interrupted:
            await self._finish(reply)
        if reply.results:
            self.spawn(self._deliver(reply), f"tools-{reply.id}")
        await self._next_say()

    async def _failed(self, reply: _Reply | None, details: Any) -> None:
        error = getattr(details, "error", None)
        reason = getattr(error, "message", None) or getattr(error, "code", None) or str(details)
        await self.push(EventRecord("error", {"provider": "realtime", "reason": reason}))
        if reply is not None and not reply.text and reply.say is None:
            self._says.append(Say(self.ctx.options.fallback_text, kind="fallback"))

    async def _finish(self, reply: _Reply) -> None:
        for item in list(reply.items.values()):
            await self._flush(reply, item)
        text = reply.text
        if text or reply.calls:
            self.ctx.conversation.add_agent(text, tool_calls=reply.calls or None, reply_id=reply.id)
        if reply.id not in self._audible:  # no audio: the playout never records its timings
            metrics = self.ctx.metrics.pop(reply.id, None)
            if reply.follow_up and metrics:
                self._carried = metrics  # the follow-up answers the same caller turn
        end_call = reply.end_call
        if end_call and not text and self.ctx.persona.goodbye:
            end_call = False  # hang up after the goodbye instead
            self._says.appendleft(Say(self.ctx.persona.goodbye, kind="goodbye", end_call=True))
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
        cuts = self._cuts()  # before the playout forgets its playhead
        await self.push(Interrupt(reason))  # `clear` first: the caller stops hearing us now
        if reply is not None:
            self.ctx.metrics.pop(reply.id, None)
            if rt is not None and rt is reply.rt:
                try:
                    await rt.cancel()
                except Exception as exc:
                    log.debug("realtime cancel failed: %s", exc)
        for client, item_id, played_ms in cuts:
            if client is not self.rt:
                continue  # that session is gone, and its items with it
            try:
                await client.truncate(played_ms, item_id)
            except Exception as exc:
                log.debug("realtime truncate failed: %s", exc)

    def _cuts(self) -> list[tuple[RealtimeClient, str, int]]:
        """(session, item, audio_end_ms) for every agent item the caller did not hear in full."""
        cuts = []
        for reply in list(self._audible.values()):
            del self._audible[reply.id]  # after the interrupt none of it plays any more
            played = self.playout.played_ms(reply.id)
            if played is None:
                continue  # already played out in full
            for item in reply.items.values():
                heard = sum(
                    min(size, int(played.get(segment, 0.0) * BYTES_PER_MS))
                    for segment, size in item.segments.items()
                )
                end_ms = min(item.received_ms, heard // BYTES_PER_MS)
                if end_ms < item.received_ms:
                    cuts.append((reply.rt, item.id, end_ms))
        return cuts

    # --- tools ----------------------------------------------------------------------------------
    async def _tool_call(self, event: Any) -> None:
        reply = self._responses.get(event.response_id)
        if reply is None or reply.interrupted:
            log.debug("tool call %s of a cancelled response ignored", event.name)
            return
        name, call_id, arguments = event.name, event.call_id, _arguments(event.arguments)
        await self.push(EventRecord("tool_call", {"name": name, "arguments": arguments}))
        reply.calls.append(
            {"id": call_id, "type": "function",
             "function": {"name": name, "arguments": event.arguments}}
        )  # fmt: skip
        if name in ("end_call", "set_stage"):
            if name == "end_call":
                reply.end_call = True
                result = {"ok": True}
            else:
                result = await self._set_stage(str(arguments.get("stage", "")))
            done = asyncio.get_running_loop().create_future()
            done.set_result((call_id, result))
            reply.results.append(done)
        else:
            reply.results.append(self.spawn(self._run_tool(reply, call_id, name, arguments)))
        reply.follow_up |= name in FOLLOW_UP

    async def _set_stage(self, stage: str) -> dict:
        if stage not in {s.name for s in self.ctx.persona.stages}:
            return {"ok": False, "error": f"unknown stage {stage!r}"}
        if stage != self.ctx.conversation.stage:
            self.ctx.conversation.stage = stage
            await self.push(StageChanged(stage))
            rt = self.rt
            if rt is not None:  # the prompt names the current stage
                try:
                    await rt.update_session(instructions=self._instructions(fresh=False))
                except Exception as exc:
                    log.debug("realtime session update failed: %s", exc)
        return {"ok": True}

    async def _run_tool(
        self, reply: _Reply, call_id: str, name: str, arguments: dict
    ) -> tuple[str, dict]:
        future = asyncio.get_running_loop().create_future()
        self._results[call_id] = future
        await self.push(ToolRequest(reply.id, call_id, name, arguments))
        try:  # not `wait_for`: on 3.11 it drops a cancellation that lands with the result
            async with asyncio.timeout(TOOL_RESULT_TIMEOUT_S):
                result = await future
        except TimeoutError:
            result = {"ok": False, "error": "timed out"}
        finally:
            self._results.pop(call_id, None)
        return call_id, result

    async def _deliver(self, reply: _Reply) -> None:
        """Once its response is over: tool results to the model, and a follow-up if one is due."""
        results = await asyncio.gather(*reply.results)
        for call_id, result in results:
            self.ctx.conversation.add_tool_result(call_id, result)
        rt = self.rt
        if rt is None or rt is not reply.rt:
            return  # that session is gone; the results are in the history the next one gets
        try:
            for call_id, result in results:
                await rt.send_tool_result(call_id, json.dumps(result), respond=False)
            if (
                reply.follow_up and not reply.end_call and not reply.interrupted
                and self._reply is None and self._tool_steps < self.ctx.options.max_tool_steps
            ):  # fmt: skip
                self._tool_steps += 1
                await rt.respond()
        except Exception as exc:
            log.debug("realtime tool result not sent: %s", exc)

    # --- spoken lines and errors ----------------------------------------------------------------
    async def _next_say(self) -> None:
        """Ask for the next queued line once no response is in progress."""
        rt = self.rt
        if rt is None or not self._says or self._say_sent is not None or self._reply is not None:
            return
        say = self._say_sent = self._says.popleft()
        try:
            await rt.respond(SAY_INSTRUCTIONS.format(text=say.text))
        except Exception as exc:  # the reader sees the drop; the line is asked again after it
            log.debug("realtime response.create failed: %s", exc)

    async def _error(self, error: Any) -> None:
        code = getattr(error, "code", None) or ""
        if code in _BENIGN_ERRORS:
            return
        say, self._say_sent = self._say_sent, None
        if say is not None and code == "conversation_already_has_active_response":
            self._says.appendleft(say)  # asked again when that response is done
            return
        await self.push(
            EventRecord("error", {"provider": "realtime", "code": code,
                                  "reason": getattr(error, "message", "") or str(error)})
        )  # fmt: skip
        if say is not None and say.end_call:  # the goodbye cannot be said: hang up anyway
            await self.push(Hangup("agent ended the call"))
