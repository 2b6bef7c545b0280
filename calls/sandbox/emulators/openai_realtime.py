"""The OpenAI Realtime GA WebSocket (`GET /v1/realtime`): one session per connection.

Client events update the session, fill the input buffer (server VAD commits turns and starts
responses), edit the conversation (create, truncate, retrieve, delete items) and start or
cancel responses (`openai_realtime_response.RealtimeResponse`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from calls.sandbox.emulators.base import Faults, abort, track_ws
from calls.sandbox.emulators.openai_http import api_error, auth_error, authorized, gate
from calls.sandbox.emulators.openai_realtime_config import (
    SERVER_VAD_DEFAULTS,
    AudioFormat,
    deep_merge,
    default_session,
)
from calls.sandbox.emulators.openai_realtime_response import RealtimeResponse
from calls.sandbox.emulators.openai_replies import Reply, default_reply

if TYPE_CHECKING:
    from calls.sandbox.emulators.openai import OpenAIEmulator


async def handle_realtime(emu: OpenAIEmulator, request: web.Request) -> web.StreamResponse:
    if not authorized(request, emu.api_key):
        return auth_error(request)
    model = request.query.get("model", "")
    if not model:
        return api_error(
            400,
            "Missing required parameter: 'model'.",
            "invalid_request_error",
            "missing_required_parameter",
        )
    faults = emu.realtime_faults.take()
    early = await gate(request, faults, emu.stopping)
    if early is not None:
        return early
    ws = web.WebSocketResponse(max_msg_size=0)
    await ws.prepare(request)
    emu.realtime_connections.append(
        {
            "model": model,
            "query": dict(request.query),
            "beta": request.headers.get("OpenAI-Beta", ""),
        }
    )
    session = RealtimeSession(emu, request, ws, model, faults)
    with track_ws(request, ws):
        try:
            await session.run()
        finally:
            await session.close()
    return ws


class RealtimeSession:
    """One Realtime connection: session config, input buffer + VAD, conversation, responses."""

    FRAME_MS = 20

    def __init__(
        self,
        emu: OpenAIEmulator,
        request: web.Request,
        ws: web.WebSocketResponse,
        model: str,
        faults: Faults,
    ) -> None:
        self.emu = emu
        self.request = request
        self.ws = ws
        self.faults = faults
        self.sent = 0
        self.drop_timer: asyncio.TimerHandle | None = None
        self.session = default_session(model, emu.new_id("sess"))
        self.lock = asyncio.Lock()
        self.items: dict[str, dict] = {}
        self.item_audio_ms: dict[str, int] = {}
        self.last_item_id: str | None = None
        self.buffer_ms = 0  # audio appended since the session started
        self.pending = bytearray()  # a partial VAD frame
        self.uncommitted_ms = 0
        self.speaking = False
        self.speech_item_id = ""
        self.last_voice_ms = 0
        self.last_transcript = ""
        self.response: RealtimeResponse | None = None

    # plumbing ----------------------------------------------------------------
    async def send(self, event: dict) -> None:
        event = {"event_id": self.emu.new_id("event"), **event}
        async with self.lock:
            limit = self.faults.drop_after_messages
            if limit is not None and self.sent >= limit:
                abort(self.request)
                return
            if not self.ws.closed:
                self.sent += 1
                await self.ws.send_str(json.dumps(event))

    async def error(
        self,
        message: str,
        *,
        code: str = "invalid_value",
        param: str | None = None,
        client_event_id: str | None = None,
    ) -> None:
        await self.send(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "param": param,
                    "event_id": client_event_id,
                },
            }
        )

    @property
    def input_format(self) -> AudioFormat:
        return AudioFormat.of(self.session["audio"]["input"].get("format"))

    @property
    def output_format(self) -> AudioFormat:
        return AudioFormat.of(self.session["audio"]["output"].get("format"))

    @property
    def turn_detection(self) -> dict | None:
        return self.session["audio"]["input"].get("turn_detection")

    async def run(self) -> None:
        if self.faults.drop_after_s is not None:
            self.drop_timer = asyncio.get_running_loop().call_later(
                self.faults.drop_after_s, abort, self.request
            )
        await self.send({"type": "session.created", "session": self.session})
        async for msg in self.ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.BINARY:
                    await self.error("Binary frames are not supported.", code="invalid_event")
                continue
            try:
                event = json.loads(msg.data)
            except ValueError:
                await self.error("Invalid JSON.", code="invalid_json")
                continue
            if self.emu.record_audio or event.get("type") != "input_audio_buffer.append":
                self.emu.realtime_events.append(event)
            handler = self.HANDLERS.get(event.get("type", ""))
            if handler is None:
                await self.error(
                    f"Invalid event type: {event.get('type')!r}",
                    code="invalid_event_type",
                    client_event_id=event.get("event_id"),
                )
                continue
            await handler(self, event)

    async def close(self) -> None:
        if self.drop_timer is not None:
            self.drop_timer.cancel()
        if self.response is not None and self.response.task is not None:
            self.response.task.cancel()
            await asyncio.gather(self.response.task, return_exceptions=True)

    # client events ---------------------------------------------------------------
    async def on_session_update(self, event: dict) -> None:
        update = event.get("session") or {}
        if update.get("type") not in ("realtime", "transcription"):
            await self.error(
                "Missing required parameter: 'session.type'.",
                code="missing_required_parameter",
                param="session.type",
                client_event_id=event.get("event_id"),
            )
            return
        for direction in ("input", "output"):
            fmt = ((update.get("audio") or {}).get(direction) or {}).get("format") or {}
            if fmt.get("type", "audio/pcm") not in ("audio/pcm", "audio/pcmu"):
                await self.error(
                    f"The emulator supports audio/pcm and audio/pcmu, not {fmt.get('type')!r}.",
                    param=f"session.audio.{direction}.format",
                    client_event_id=event.get("event_id"),
                )
                return
        deep_merge(self.session, update)
        td = self.turn_detection
        if td is not None and td.get("type") == "server_vad":  # omitted fields take defaults
            td.update({k: v for k, v in SERVER_VAD_DEFAULTS.items() if td.get(k) is None})
        await self.send({"type": "session.updated", "session": self.session})

    async def on_append(self, event: dict) -> None:
        try:
            data = base64.b64decode(event.get("audio", ""), validate=True)
        except (binascii.Error, ValueError):
            await self.error(
                "Invalid base64 audio.", param="audio", client_event_id=event.get("event_id")
            )
            return
        fmt = self.input_format
        self.pending.extend(data)
        frame_bytes = self.FRAME_MS * fmt.bytes_per_ms
        while len(self.pending) >= frame_bytes:
            frame = bytes(self.pending[:frame_bytes])
            del self.pending[:frame_bytes]
            self.buffer_ms += self.FRAME_MS
            self.uncommitted_ms += self.FRAME_MS
            if self.turn_detection is not None:
                await self._vad(fmt.level(frame) >= self.emu.vad_threshold_rms)

    async def _vad(self, voiced: bool) -> None:
        td = self.turn_detection or {}
        if voiced:
            self.last_voice_ms = self.buffer_ms
            if not self.speaking:
                self.speaking = True
                self.speech_item_id = self.emu.new_id("item")
                start = self.buffer_ms - self.FRAME_MS - int(td.get("prefix_padding_ms") or 0)
                await self.send(
                    {
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": max(0, start),
                        "item_id": self.speech_item_id,
                    }
                )
                if td.get("interrupt_response", True) and self.response is not None:
                    await self._cancel_response("turn_detected")
            return
        silence = int(td.get("silence_duration_ms") or 500)
        if self.speaking and self.buffer_ms - self.last_voice_ms >= silence:
            self.speaking = False
            await self.send(
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": self.buffer_ms,
                    "item_id": self.speech_item_id,
                }
            )
            await self._commit(self.speech_item_id)
            if td.get("create_response", True):
                await self._start_response({})

    async def on_commit(self, event: dict) -> None:
        if self.uncommitted_ms < 100:
            await self.error(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {self.uncommitted_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
                client_event_id=event.get("event_id"),
            )
            return
        self.speaking = False
        await self._commit(self.speech_item_id or self.emu.new_id("item"))

    async def on_clear(self, _event: dict) -> None:
        self.pending.clear()
        self.uncommitted_ms = 0
        self.speaking = False
        await self.send({"type": "input_audio_buffer.cleared"})

    async def _commit(self, item_id: str) -> None:
        self.uncommitted_ms = 0
        self.speech_item_id = ""
        previous = self.last_item_id
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            }
        )
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self.add_item(item, previous)
        transcript = (
            self.emu.transcripts.popleft()
            if self.emu.transcripts
            else (self.emu.default_transcript)
        )
        self.last_transcript = transcript
        item["content"][0]["transcript"] = transcript
        if self.session["audio"]["input"].get("transcription"):
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": transcript,
                    "usage": {"type": "duration", "seconds": 1},
                }
            )

    async def add_item(self, item: dict, previous: str | None) -> None:
        self.items[item["id"]] = item
        self.last_item_id = item["id"]
        await self.send(
            {"type": "conversation.item.added", "item": item, "previous_item_id": previous}
        )
        if item.get("status") == "completed":
            await self.send(
                {"type": "conversation.item.done", "item": item, "previous_item_id": previous}
            )

    async def on_item_create(self, event: dict) -> None:
        item = copy.deepcopy(event.get("item") or {})
        if item.get("type") not in ("message", "function_call", "function_call_output"):
            await self.error(
                "Invalid item type.", param="item.type", client_event_id=event.get("event_id")
            )
            return
        if item.get("type") == "message" and item.get("role") == "user":
            texts = [c.get("text", "") for c in item.get("content", []) if isinstance(c, dict)]
            self.last_transcript = " ".join(t for t in texts if t) or self.last_transcript
        item.setdefault("id", self.emu.new_id("item"))
        item.update({"object": "realtime.item", "status": "completed"})
        await self.add_item(item, event.get("previous_item_id", self.last_item_id))

    async def on_truncate(self, event: dict) -> None:
        item_id = event.get("item_id", "")
        end_ms = int(event.get("audio_end_ms", -1))
        if item_id not in self.item_audio_ms:
            await self._unknown_item(event)
            return
        if not 0 <= end_ms <= self.item_audio_ms[item_id]:
            await self.error(
                f"audio_end_ms {end_ms} is longer than the audio "
                f"({self.item_audio_ms[item_id]} ms)",
                param="audio_end_ms",
                client_event_id=event.get("event_id"),
            )
            return
        self.item_audio_ms[item_id] = end_ms
        content_index = int(event.get("content_index", 0))
        self.emu.truncations.append(
            {"item_id": item_id, "content_index": content_index, "audio_end_ms": end_ms}
        )
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": content_index,
                "audio_end_ms": end_ms,
            }
        )

    async def on_response_create(self, event: dict) -> None:
        if self.response is not None:
            await self.error(
                f"Conversation already has an active response in progress: {self.response.id}."
                " Wait until the response is finished before creating a new one.",
                code="conversation_already_has_active_response",
                client_event_id=event.get("event_id"),
            )
            return
        await self._start_response(event.get("response") or {})

    async def on_response_cancel(self, event: dict) -> None:
        if self.response is None:
            await self.error(
                "Cancellation failed: no active response found",
                code="response_cancel_not_active",
                client_event_id=event.get("event_id"),
            )
            return
        await self._cancel_response("client_cancelled")

    async def on_item_retrieve(self, event: dict) -> None:
        item = self.items.get(event.get("item_id", ""))
        if item is None:
            await self._unknown_item(event)
            return
        await self.send({"type": "conversation.item.retrieved", "item": item})

    async def on_item_delete(self, event: dict) -> None:
        if self.items.pop(event.get("item_id", ""), None) is None:
            await self._unknown_item(event)
            return
        await self.send({"type": "conversation.item.deleted", "item_id": event["item_id"]})

    async def _unknown_item(self, event: dict) -> None:
        await self.error(
            f"Item with item_id not found: {event.get('item_id')}",
            param="item_id",
            client_event_id=event.get("event_id"),
        )

    async def on_ignored(self, _event: dict) -> None:
        """Accepted without a reply (e.g. output_audio_buffer.clear on WebSocket sessions)."""

    HANDLERS = {
        "session.update": on_session_update,
        "input_audio_buffer.append": on_append,
        "input_audio_buffer.commit": on_commit,
        "input_audio_buffer.clear": on_clear,
        "conversation.item.create": on_item_create,
        "conversation.item.truncate": on_truncate,
        "conversation.item.retrieve": on_item_retrieve,
        "conversation.item.delete": on_item_delete,
        "response.create": on_response_create,
        "response.cancel": on_response_cancel,
        "output_audio_buffer.clear": on_ignored,
    }

    # responses -----------------------------------------------------------------------
    async def _start_response(self, options: dict) -> None:
        if self.response is not None:
            return
        reply = (
            self.emu.realtime_replies.popleft()
            if self.emu.realtime_replies
            else Reply(default_reply(self.last_transcript))
        )
        resp = RealtimeResponse(self, self.emu.new_id("resp"))
        self.response = resp
        await self.send({"type": "response.created", "response": resp.json("in_progress")})
        modalities = options.get("output_modalities") or self.session.get(
            "output_modalities", ["audio"]
        )
        resp.task = asyncio.get_running_loop().create_task(
            resp.generate(reply, "audio" in modalities)
        )

    async def _cancel_response(self, reason: str) -> None:
        resp = self.response
        if resp is None or resp.task is None:
            return
        if not resp.finished:
            resp.task.cancel()
        await asyncio.gather(resp.task, return_exceptions=True)
        if self.response is resp:
            self.response = None
            await self.send(
                {
                    "type": "response.done",
                    "response": resp.json(
                        "cancelled",
                        {"type": "cancelled", "reason": reason},
                    ),
                }
            )
