"""A thin OpenAI Realtime (GA) session for phone audio: G.711 mu-law in and out, server VAD."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from openai import AsyncOpenAI

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PCMU = {"type": "audio/pcmu"}


class RealtimeError(Exception):
    """The connection failed or the server rejected the session."""


def websocket_url(base_url: str) -> str:
    """The Realtime WebSocket base for an HTTP API base (http -> ws, https -> wss; '' stays '')."""
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if base_url.startswith(http):
            return ws + base_url[len(http) :]
    return base_url


class OpenAIRealtime:
    """One Realtime conversation.

    `connect()` opens the socket and applies the session (mu-law both ways, server VAD,
    transcription of the caller); `events()` yields the SDK's typed server events and tracks the
    assistant audio item being streamed so `truncate(played_ms)` can cut it on barge-in.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "",
        websocket_base_url: str = "",
        model: str = "gpt-realtime",
        instructions: str = "",
        voice: str = "alloy",
        tools: Sequence[dict] = (),
        silence_duration_ms: int = 500,
        transcription_model: str = "gpt-4o-transcribe",
    ) -> None:
        self.model = model
        self.session: dict[str, Any] = {
            "type": "realtime",
            "instructions": instructions,
            "output_modalities": ["audio"],
            "tools": list(tools),
            "audio": {
                "input": {
                    "format": PCMU,
                    "transcription": {"model": transcription_model},
                    "turn_detection": {
                        "type": "server_vad",
                        "silence_duration_ms": silence_duration_ms,
                    },
                },
                "output": {"format": PCMU, "voice": voice},
            },
        }
        self._client = AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or DEFAULT_BASE_URL,
            websocket_base_url=websocket_base_url or None,
            max_retries=0,
        )
        self._manager: Any = None
        self._conn: Any = None
        self.audio_item_id = ""  # the assistant audio item currently (or last) streamed
        self.audio_ms = 0  # mu-law received for that item, in ms (8 bytes per ms)

    async def connect(self) -> None:
        try:
            self._manager = self._client.realtime.connect(model=self.model)
            self._conn = await self._manager.enter()
            await self._conn.session.update(session=self.session)
            async for event in self._conn:
                if event.type == "session.updated":
                    return
                if event.type == "error":
                    raise RealtimeError(f"session rejected: {event.error.message}")
        except RealtimeError:
            await self.close()
            raise
        except Exception as exc:
            await self.close()
            raise RealtimeError(f"{type(exc).__name__}: {exc}") from exc
        raise RealtimeError("connection closed before session.updated")

    async def events(self) -> AsyncIterator[Any]:
        async for event in self._conn:
            if event.type == "response.output_audio.delta":
                if event.item_id != self.audio_item_id:
                    self.audio_item_id, self.audio_ms = event.item_id, 0
                self.audio_ms += len(base64.b64decode(event.delta)) // 8
            yield event

    async def send_audio(self, mulaw: bytes) -> None:
        await self._conn.input_audio_buffer.append(audio=base64.b64encode(mulaw).decode())

    async def truncate(self, played_ms: int, item_id: str = "") -> None:
        """Tell the model how much of its audio the caller heard (clamped to what was sent)."""
        item_id = item_id or self.audio_item_id
        if not item_id:
            return
        limit = self.audio_ms if item_id == self.audio_item_id else played_ms
        end = max(0, min(played_ms, limit))
        await self._conn.conversation.item.truncate(
            item_id=item_id, content_index=0, audio_end_ms=end
        )

    async def cancel(self) -> None:
        await self._conn.response.cancel()

    async def respond(self, instructions: str = "") -> None:
        """Ask for a response now; `instructions` override the session's for this one only."""
        if instructions:
            await self._conn.response.create(response={"instructions": instructions})
        else:
            await self._conn.response.create()

    async def update_session(self, **fields: Any) -> None:
        """Change session fields mid-call (e.g. `instructions=` when the stage changes)."""
        self.session.update(fields)
        await self._conn.session.update(session={"type": "realtime", **fields})

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        await self._conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call_id, "output": output}
        )
        if respond:
            await self._conn.response.create()

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
        await self._client.close()


@dataclass(frozen=True)
class RealtimeOptions:
    """Connection settings; calling it makes a fresh session: `options(instructions, tools)`."""

    api_key: str
    base_url: str = ""
    websocket_base_url: str = ""
    model: str = "gpt-realtime"
    voice: str = "alloy"
    silence_duration_ms: int = 500
    transcription_model: str = "gpt-4o-transcribe"

    def __call__(self, instructions: str, tools: Sequence[dict]) -> OpenAIRealtime:
        return OpenAIRealtime(
            api_key=self.api_key, base_url=self.base_url,
            websocket_base_url=self.websocket_base_url or websocket_url(self.base_url),
            model=self.model, instructions=instructions, voice=self.voice, tools=tools,
            silence_duration_ms=self.silence_duration_ms,
            transcription_model=self.transcription_model,
        )  # fmt: skip
