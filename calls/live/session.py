"""One live call: runs its pipeline, records audio, persists turns and events, executes actions.

The consumer feeds it frames and gives it a transport; the session outlives a single media stream
(pressing digits reconnects the stream), and is finalised once, when the call's audio ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.core.files.base import ContentFile

from calls import events, services
from calls.live import observers
from calls.live.actions import CallActions, NoActions
from calls.live.persister import Persister
from calls.models import Call, EventType
from calls.pipeline.build import Providers, build_pipeline
from calls.pipeline.context import CallContext
from calls.pipeline.frames import (
    AudioIn,
    EventRecord,
    Frame,
    Hangup,
    Interrupt,
    MarkPlayed,
    Say,
    StageChanged,
    ToolRequest,
    ToolResult,
    TurnRecord,
)
from calls.pipeline.playout import Transport
from calls.pipeline.processor import Pipeline
from calls.pipeline.recorder import StereoRecorder
from calls.pipeline.stacks import await_chain
from calls.pipeline.tools import run_in_session

log = logging.getLogger(__name__)
# After a `stop` we caused (digits pressed), wait this long for the new stream before finalising.
RECONNECT_GRACE_S = 15.0
# A finalisation waits this long at most for a transfer request in flight to be answered.
TRANSFER_WAIT_S = 10.0
# A finalisation still running after this long is logged with where it waits.
SLOW_FINALISE_S = 30.0

# Sessions held by this process, by call UUID (a reconnecting stream finds its session here).
live_sessions: dict[str, CallSession] = {}
# Finalisations under way, held so that they are not collected before they finish.
_finishing: set[asyncio.Task] = set()


@dataclass
class LiveCall:
    """What the session needs of the call, read once when the stream starts."""

    id: int
    uuid: str
    twilio_sid: str
    greeting: str
    resumed: bool  # turns already exist: a reconnected stream, no greeting


PipelineBuilder = Callable[..., Pipeline]


class CallSession:
    """Implements calls.pipeline.tools.SessionEnv: the tools the session runs act through it."""

    def __init__(
        self,
        call: LiveCall,
        ctx: CallContext,
        providers: Providers | None,
        *,
        build: PipelineBuilder | None = None,
        actions: CallActions | None = None,
    ) -> None:
        """`build(ctx, transport, sink, on_audio_out=...)` replaces the STT -> LLM -> TTS chain
        (the speech-to-speech engine); `actions` carries hang-up, transfer and digits to the carrier."""
        self.call = call
        self.actions: CallActions = actions or NoActions()
        self.ctx = ctx
        self.providers = providers
        self.build = build
        self.persister = Persister()
        self.transport: Transport | None = None
        self.recorder: StereoRecorder | None = None
        self.pipeline: Pipeline | None = None
        self._wall0 = time.time() - time.monotonic()  # monotonic -> wall clock
        self._expect_reconnect = False
        self._finalised = False
        self._finish: asyncio.Task | None = None
        self._hangup_reason = ""  # ours, kept over the stream stop our own hang-up causes
        self._reconnect_timer: asyncio.TimerHandle | None = None
        self._actions: set[asyncio.Task] = set()
        self._transfers: set[asyncio.Task] = set()  # carrier requests the finalisation waits for

    # --- life cycle ---------------------------------------------------------------------------
    async def attach(self, transport: Transport) -> None:
        """Start (or resume, on a reconnected stream) with `transport` as the way out."""
        self.transport = transport
        self._expect_reconnect = False
        if self._reconnect_timer:
            self._reconnect_timer.cancel()
        if self.pipeline is not None:
            # A new stream of the same call: the old pipeline's playout belonged to the old socket.
            await self.pipeline.stop()
        if self.recorder is None:  # the first stream of the call
            self.recorder = StereoRecorder(time.monotonic())
        live_sessions[self.call.uuid] = self
        if self.build is not None:
            self.pipeline = self.build(
                self.ctx, _Relay(self), self._sink, on_audio_out=self._record_agent
            )
        else:
            self.pipeline = build_pipeline(
                self.ctx, self.providers, _Relay(self), self._sink, on_audio_out=self._record_agent
            )
        await self.pipeline.start()
        if self.call.greeting and not self.call.resumed:
            self.call.resumed = True
            await self.pipeline.send(Say(self.call.greeting, kind="greeting"))

    async def on_audio(self, mulaw: bytes) -> None:
        if self.recorder is not None:
            self.recorder.caller(mulaw)
        if self.pipeline is not None:
            await self.pipeline.send(AudioIn(mulaw, time.monotonic()))

    async def on_mark(self, name: str) -> None:
        if self.pipeline is not None:
            await self.pipeline.send(MarkPlayed(name))

    async def on_dtmf(self, digit: str) -> None:
        self.persister.write(
            services.event_record,
            call_id=self.call.id,
            type=EventType.DTMF,
            payload={"digit": digit},
        )

    async def stream_stopped(self, reason: str) -> None:
        """The media stream ended; finalise unless we caused it and a new stream is coming."""
        if self._expect_reconnect and not self._finalised:
            loop = asyncio.get_running_loop()
            self._reconnect_timer = loop.call_later(
                RECONNECT_GRACE_S, lambda: loop.create_task(self.finalise("stream not resumed"))
            )
            if self.pipeline is not None:
                await self.pipeline.stop()
                self.pipeline = None
            return
        await self.finalise(reason)

    async def finalise(self, reason: str) -> None:
        """Stop everything and persist what is left: turns, events, recording, end status.

        It runs in a task of its own, to the end, even when the awaiting coroutine is cancelled:
        daphne cancels a consumer 10 s after its socket closed, which a loaded server's
        finalisation can outlast."""
        if self._finish is None:
            self._finalised = True
            loop = asyncio.get_running_loop()
            self._finish = loop.create_task(self._final_writes(reason))
            _finishing.add(self._finish)
            self._finish.add_done_callback(self._finished)
            loop.call_later(SLOW_FINALISE_S, self._report_slow_finalise)
        await asyncio.shield(self._finish)

    def _finished(self, task: asyncio.Task) -> None:
        _finishing.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("finalising call %s failed", self.call.uuid, exc_info=exc)
        elif not task.cancelled() and (observer := observers.current()) is not None:
            observer.call_finalised(self.call.uuid)

    def _report_slow_finalise(self) -> None:
        if self._finish is not None and not self._finish.done():
            log.warning("finalising call %s for %.0f s already; at:\n%s",
                        self.call.uuid, SLOW_FINALISE_S, await_chain(self._finish))  # fmt: skip

    async def _final_writes(self, reason: str) -> None:
        live_sessions.pop(self.call.uuid, None)
        if self.pipeline is not None:
            await self.pipeline.stop()
            self.pipeline = None
        current = asyncio.current_task()  # hang_up() runs as an action: never cancel itself
        for task in list(self._actions):
            if task is not current:
                task.cancel()
        if self._transfers:  # its outcome decides the end reason
            await asyncio.wait(list(self._transfers), timeout=TRANSFER_WAIT_S)
        reason = self._hangup_reason or reason
        self.persister.write(
            services.event_record, call_id=self.call.id, type=EventType.STREAM,
            payload={"event": "stop", "reason": reason},
        )  # fmt: skip
        await self.persister.drain()
        if self.recorder is not None and self.recorder.seconds > 0:
            await events.run_sync(_save_recording, self.call.id, self.recorder.wav())
        await events.run_sync(services.call_end, call_id=self.call.id, reason=reason)

    # --- pipeline output ----------------------------------------------------------------------
    def _wall(self, t: float) -> datetime | None:
        return datetime.fromtimestamp(self._wall0 + t, tz=UTC) if t else None

    def _record_agent(self, mulaw: bytes, play_at: float) -> None:
        if self.recorder is not None:
            self.recorder.agent(mulaw, play_at)

    async def _sink(self, frame: Frame) -> None:
        if isinstance(frame, TurnRecord):
            self.persister.write(
                services.turn_append, call_id=self.call.id, speaker=frame.speaker, text=frame.text,
                heard_text=frame.heard_text, interrupted=frame.interrupted,
                started_at=self._wall(frame.started_at), ended_at=self._wall(frame.ended_at),
                latency=frame.latency,
            )  # fmt: skip
            if frame.latency:
                log.info("turn latency %s", json.dumps({"call": self.call.uuid, **frame.latency}))
        elif isinstance(frame, EventRecord):
            self.persister.write(
                services.event_record, call_id=self.call.id, type=_event_type(frame.type),
                payload={"kind": frame.type, **frame.payload} if frame.type not in EventType.values
                else frame.payload,
            )  # fmt: skip
        elif isinstance(frame, StageChanged):
            self.persister.write(
                services.call_update_outcome, call_id=self.call.id, current_stage=frame.stage
            )
        elif isinstance(frame, ToolRequest):
            self._spawn(self._run_tool(frame))
        elif isinstance(frame, Hangup):
            self._spawn(self.hang_up(frame.reason))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._actions.add(task)
        task.add_done_callback(self._actions.discard)

    # --- actions (calls.pipeline.tools.SessionEnv: the tools run by the session use these) --
    async def _run_tool(self, request: ToolRequest) -> None:
        result = await run_in_session(self, request)
        if self.pipeline is not None:
            await self.pipeline.send(ToolResult(request.call_id, request.name, result))

    async def hang_up(self, reason: str) -> None:
        self._hangup_reason = reason  # the carrier stops the stream before its API call returns
        self.persister.write(
            services.event_record, call_id=self.call.id, type=EventType.CONTROL,
            payload={"action": "hangup", "reason": reason},
        )  # fmt: skip
        try:
            await self.actions.hang_up()
        except Exception as exc:  # the call is finalised here whatever the carrier says
            log.warning("hang-up of %s failed: %s", self.call.uuid, exc)
        await self.finalise(reason)

    async def transfer(self, number: str) -> dict:
        """Hand the caller to `number` (the persona's or the operator's, never the model's)."""
        if not number:
            return {"ok": False, "error": "no transfer number configured"}
        number = await sync_to_async(services.normalize_number)(number)
        # The carrier stops the stream before its API call returns, and the finalisation that
        # follows cancels the tool that asked: the request runs in a task of its own, which the
        # finalisation waits for, so that its outcome is what the call records.
        task = asyncio.get_running_loop().create_task(self._transfer(number))
        self._transfers.add(task)
        task.add_done_callback(self._transfers.discard)
        return await asyncio.shield(task)

    async def _transfer(self, number: str) -> dict:
        previous, self._hangup_reason = self._hangup_reason, f"transferred to {number}"
        try:
            await self.actions.transfer(number)
        except BaseException:
            self._hangup_reason = previous
            raise
        self.persister.write(
            services.event_record, call_id=self.call.id, type=EventType.CONTROL,
            payload={"action": "transferred", "to": number},
        )  # fmt: skip
        return {"ok": True, "to": number}

    async def press_digits(self, digits: str) -> dict:
        digits = "".join(ch for ch in digits if ch in "0123456789*#wW")
        if not digits:
            return {"ok": False, "error": "no valid digits"}
        self._expect_reconnect = True
        await self.actions.press_digits(digits)
        self.persister.write(
            services.event_record, call_id=self.call.id, type=EventType.DTMF,
            payload={"digits": digits, "direction": "sent"},
        )  # fmt: skip
        return {"ok": True, "pressed": digits}

    async def say(self, text: str) -> None:
        if self.pipeline is not None:
            await self.pipeline.send(Interrupt("override"))
            await self.pipeline.send(Say(text, kind="supervisor"))

    async def ask_supervisor(self, question: str) -> dict:
        return {"ok": False, "error": "no supervisor is available; answer yourself"}

    async def control(self, action: str, args: dict) -> None:
        """A request from the API (any process), relayed through the channel layer."""
        handler = self._controls.get(action)
        if handler is None:
            log.warning("unknown control action %r for %s", action, self.call.uuid)
            return
        await handler(args)

    @property
    def _controls(self) -> dict[str, Callable[[dict], Awaitable[object]]]:
        return {
            "hangup": lambda a: self.finalise(str(a.get("reason") or "hung up by operator")),
            "say": lambda a: self.say(str(a.get("text", ""))),
            "transfer": lambda a: self.transfer(str(a.get("to", ""))),
            "press_digits": lambda a: self.press_digits(str(a.get("digits", ""))),
        }


class _Relay:
    """The transport the pipeline sees: whatever socket the session is attached to right now."""

    def __init__(self, session: CallSession) -> None:
        self.session = session

    async def send_media(self, mulaw: bytes) -> None:
        if self.session.transport is not None:
            await self.session.transport.send_media(mulaw)

    async def send_mark(self, name: str) -> None:
        if self.session.transport is not None:
            await self.session.transport.send_mark(name)

    async def send_clear(self) -> None:
        if self.session.transport is not None:
            await self.session.transport.send_clear()


def _event_type(kind: str) -> str:
    return kind if kind in EventType.values else EventType.PROVIDER


def _save_recording(call_id: int, wav: bytes) -> None:
    call = Call.objects.get(pk=call_id)
    call.recording.save(f"call-{call.uuid}.wav", ContentFile(wav), save=False)
    services.call_update_outcome(call_id=call_id, recording=call.recording.name)
