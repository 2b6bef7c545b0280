"""The Twilio Media Streams WebSocket: parses frames and hands them to the call's session.

`receive` only parses and dispatches: the session runs the pipeline in its own tasks, so inbound
audio never waits on the database, the LLM or the channel layer. The stream token is checked before
any audio is processed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from calls import events, services
from calls.core.audio import FRAME_BYTES
from calls.events import control_group
from calls.live import observers
from calls.live.session import CallSession, live_sessions
from calls.runtime.factory import build_session
from calls.status import CallStatus
from calls.telephony import protocol, signature, tokens
from calls.telephony.protocol import Connected, Dtmf, MarkEcho, Media, Start, Stop

log = logging.getLogger(__name__)

# WebSocket close codes, all in the private range: daphne (autobahn) refuses an application's
# close with any code but 1000 and 3000-4999, and closes with 1011 instead. 40xx mirrors the RFC
# 6455 code of the same meaning (1008 policy violation, 1002 protocol error).
POLICY_VIOLATION = 4008
PROTOCOL_ERROR = 4002
TOO_MANY_ERRORS = 4000
# Malformed frames tolerated (logged and dropped) before the socket is closed.
MAX_BAD_FRAMES = 20
# Media before `start` is dropped; this much of it means the peer is not following the protocol.
MAX_EARLY_FRAMES = 50
# Stream ends handled after their consumer was cancelled, held until they finish.
_stopping: set[asyncio.Task] = set()
# Sockets accepted that have no call yet (no valid `start`): bounded by MAX_PENDING_STREAMS.
_pending: set[MediaStreamConsumer] = set()


def _claim(start: Start) -> CallSession | None:
    """Verify and consume the stream token, then build (or find) the call's session."""
    token = start.params.get("token", "")
    try:
        grant = tokens.verify(token)
    except tokens.InvalidToken as exc:
        log.warning("media stream %s refused: token %s", start.stream_sid, exc)
        return None
    if start.params.get("call") not in ("", None, grant.call_uuid):
        log.warning("media stream %s refused: token is for another call", start.stream_sid)
        return None
    if start.account_sid != settings.TWILIO_ACCOUNT_SID or not start.call_sid:
        log.warning("media stream %s refused: account %r is not ours, or no call SID",
                    start.stream_sid, start.account_sid)  # fmt: skip
        return None
    call = services.stream_claim(
        call_uuid=grant.call_uuid, nonce=grant.nonce, stream_sid=start.stream_sid,
        twilio_sid=start.call_sid,
    )  # fmt: skip
    if call is None:
        log.warning("media stream %s refused: token already used or call ended", start.stream_sid)
        return None
    if call.status != CallStatus.IN_PROGRESS:
        services.call_set_status(call_id=call.pk, status=CallStatus.IN_PROGRESS)
    session = live_sessions.get(str(call.uuid))
    return session or build_session(call)


class MediaStreamConsumer(AsyncWebsocketConsumer):
    session: CallSession | None = None
    stream_sid: str = ""
    group: str = ""
    stopped: bool = False
    closing: bool = False  # our close went out: frames still queued behind it are dropped
    _start_timer: asyncio.TimerHandle | None = None

    async def __call__(self, scope, receive, send) -> None:
        """Channels' consumer loop without its cost per message (a new task and an
        `asyncio.wait` for each 20 ms frame, in `await_many_dispatch`): the socket is read in a
        plain loop, the channel layer (live control) in a side task, and a lock keeps Channels'
        guarantee of one message handled at a time."""
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        lock = asyncio.Lock()
        control = None
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()

            async def read_control() -> None:
                while True:
                    try:
                        message = await self.channel_layer.receive(self.channel_name)
                    except Exception:  # the layer is down: the call goes on, control waits
                        log.warning("control channel unavailable", exc_info=True)
                        await asyncio.sleep(1.0)
                        continue
                    try:
                        async with lock:
                            await self.dispatch(message)
                    except Exception:
                        log.exception("control message %s failed", message.get("type"))

            control = asyncio.get_running_loop().create_task(read_control())
        try:
            while True:
                message = await receive()
                await lock.acquire()  # not `async with`: two coroutines fewer per 20 ms frame
                try:
                    text = message.get("text")
                    if text is not None and message["type"] == "websocket.receive":
                        await self.receive(text_data=text)  # each 20 ms frame: no dispatch hop
                    else:
                        await self.dispatch(message)
                finally:
                    lock.release()
        except StopConsumer:
            pass
        finally:
            self._not_pending()
            if self.session is not None and not self.stopped:
                # Cancelled before the stream's end was handled (daphne cancels a consumer 10 s
                # after its socket closed): the call must still be finalised.
                task = asyncio.get_running_loop().create_task(
                    self._stop("stream handler cancelled"), name="stream-stop"
                )
                _stopping.add(task)
                task.add_done_callback(_stopping.discard)
            if control is not None:
                control.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await control

    async def dispatch(self, message: dict) -> None:
        """Like Channels' dispatch, without closing stale DB connections on every message: that
        hop through the shared database thread would be paid by each 20 ms frame. Database work
        runs in `database_sync_to_async`, which closes stale connections itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.bad_frames = 0
        self.early_frames = 0
        self.stopped = False
        if not signature.stream_upgrade_allowed(self.scope):
            log.warning("media stream refused: the upgrade is not signed by Twilio")
            await self.close()  # before accept: the upgrade is refused (HTTP 403)
            return
        if len(_pending) >= settings.MAX_PENDING_STREAMS:
            log.warning(
                "media stream refused: %d sockets already wait for their start", len(_pending)
            )
            await self.close()  # before accept: the upgrade is refused (HTTP 403)
            return
        _pending.add(self)
        self._start_timer = asyncio.get_running_loop().call_later(
            settings.STREAM_START_TIMEOUT_SECONDS, self._start_overdue
        )
        if (observer := observers.current()) is not None:
            self._observe(observer)
        await self.accept()

    def _start_overdue(self) -> None:
        task = asyncio.get_running_loop().create_task(self._close_without_start())
        _stopping.add(task)
        task.add_done_callback(_stopping.discard)

    async def _close_without_start(self) -> None:
        # Decided when the task runs: a start that arrived meanwhile left `_pending` (its claim
        # may still be under way) and keeps the socket.
        if self in _pending and not self.closing:
            await self._close(POLICY_VIOLATION, "no start in time")

    def _not_pending(self) -> None:
        _pending.discard(self)
        if self._start_timer is not None:
            self._start_timer.cancel()
            self._start_timer = None

    def _observe(self, observer: observers.StreamObserver) -> None:
        """Report this socket's frames to `observer`, through wrappers set on this instance only:
        without an observer the per-frame path is the class's, with nothing added."""
        receive, send_media, clock = self.receive, self.send_media, time.monotonic

        async def receive_observed(text_data: str | None = None, bytes_data: bytes | None = None):
            await receive(text_data, bytes_data)
            if text_data is not None and self.stream_sid:
                observer.message_in(self.stream_sid, text_data, clock())

        async def send_media_observed(mulaw: bytes) -> None:
            observer.media_out(self.stream_sid, len(mulaw) // FRAME_BYTES, clock())
            await send_media(mulaw)

        self.receive, self.send_media = receive_observed, send_media_observed

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:  # frames queued behind our close
            return
        try:
            message = protocol.parse(text_data)
        except protocol.ProtocolError as exc:
            await self._bad_frame(str(exc))
            return
        if isinstance(message, Media):
            if self.session is None:
                self.early_frames += 1
                if self.early_frames > MAX_EARLY_FRAMES:
                    await self._close(PROTOCOL_ERROR, "media without start")
                return
            if message.stream_sid == self.stream_sid:
                await self.session.on_audio(message.payload)
        elif isinstance(message, MarkEcho):
            if self.session is not None and message.stream_sid == self.stream_sid:
                await self.session.on_mark(message.name)
        elif isinstance(message, Start):
            await self._start(message)
        elif isinstance(message, Dtmf):
            if self.session is not None and message.stream_sid == self.stream_sid:
                await self.session.on_dtmf(message.digit)
        elif isinstance(message, Stop):
            if self.session is not None and message.stream_sid != self.stream_sid:
                log.warning("stop for another stream %s ignored", message.stream_sid)
                return
            await self._stop("stream stopped")
            await self.close()
        elif isinstance(message, Connected):
            pass

    async def _bad_frame(self, reason: str) -> None:
        if self.session is None:  # a peer that cannot send a valid `start` is not Twilio
            await self._close(PROTOCOL_ERROR, f"malformed frame before start: {reason}")
            return
        self.bad_frames += 1
        log.warning("bad media stream frame (%s): %s", self.stream_sid or "before start", reason)
        if self.bad_frames > MAX_BAD_FRAMES:
            await self._close(TOO_MANY_ERRORS, "too many malformed frames")

    async def _start(self, start: Start) -> None:
        if self.session is not None:
            log.warning("second start on stream %s ignored", self.stream_sid)
            return
        if start.encoding != "audio/x-mulaw" or start.sample_rate != 8000:
            await self._close(POLICY_VIOLATION, f"unsupported media format {start.encoding}")
            return
        self._not_pending()  # a well-formed start: the claim below decides, however long it takes
        t0 = time.monotonic()
        try:
            session = await events.run_sync(_claim, start)
        except Exception:
            log.exception("media stream %s: session could not be built", start.stream_sid)
            session = None
        if session is None:
            await self._close(POLICY_VIOLATION, "stream not authorised")
            return
        self.session, self.stream_sid = session, start.stream_sid
        self.group = control_group(session.call.uuid)
        await session.attach(self)
        log.info("stream %s started for call %s in %.1f ms", start.stream_sid,
                 session.call.uuid, (time.monotonic() - t0) * 1000)  # fmt: skip
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
        except Exception:  # live control is degraded, the call itself goes on
            log.exception("joining %s failed", self.group)

    async def _stop(self, reason: str) -> None:
        self._not_pending()
        if self.stopped:
            return
        self.stopped = True
        if self.stream_sid and (observer := observers.current()) is not None:
            observer.stream_stopped(self.stream_sid, time.monotonic())
        if self.group:
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            except Exception:
                log.debug("leaving %s failed", self.group, exc_info=True)
        if self.session is not None:
            if self.session.transport is self:
                self.session.transport = None
            await self.session.stream_stopped(reason)

    async def _close(self, code: int, reason: str) -> None:
        log.warning("closing media stream %s: %s", self.stream_sid or "(no start)", reason)
        await self._stop(reason)
        await self.close(code=code, reason=reason)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Once: a second `websocket.close` is an ASGI error (uvicorn raises; daphne ignores it)."""
        if not self.closing:
            self.closing = True
            await super().close(code=code, reason=reason)

    async def disconnect(self, code: int) -> None:
        await self._stop(f"socket closed ({code}) without stop")

    # --- the transport the session's playout uses --------------------------------------------
    async def send_media(self, mulaw: bytes) -> None:
        await self._send_text(protocol.media_message(self.stream_sid, mulaw))

    async def send_mark(self, name: str) -> None:
        await self._send_text(protocol.mark_message(self.stream_sid, name))

    async def send_clear(self) -> None:
        await self._send_text(protocol.clear_message(self.stream_sid))

    async def _send_text(self, text: str) -> None:
        if self.closing:
            return
        try:
            await self.send(text_data=text)
        except OSError:  # the peer is gone (uvicorn raises; daphne drops the message): its
            # disconnect, already on its way, ends the stream
            log.debug("media stream %s: send after the socket closed", self.stream_sid)

    # --- live control from the API, through the channel layer ---------------------------------
    async def call_control(self, event: dict) -> None:
        if self.session is not None:
            args = {k: v for k, v in event.items() if k not in ("type", "action")}
            await self.session.control(event.get("action", ""), args)
