"""One Realtime response: its output items streamed as events (audio or text, then tool calls)."""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING

from calls.sandbox.emulators.openai_replies import (
    Reply,
    ScriptedToolCall,
    argument_pieces,
    pause,
    text_pieces,
)

if TYPE_CHECKING:
    from calls.sandbox.emulators.openai_realtime import RealtimeSession


class RealtimeResponse:
    """Made by the session's response.create (or server VAD); `task` runs `generate`."""

    def __init__(self, session: RealtimeSession, response_id: str) -> None:
        self.session = session
        self.id = response_id
        self.task: asyncio.Task | None = None
        self.output: list[dict] = []
        self.finished = False  # all output sent; only response.done is left

    def json(self, status: str, details: dict | None = None) -> dict:
        config = self.session.session
        return {
            "id": self.id,
            "object": "realtime.response",
            "status": status,
            "status_details": details,
            "output": self.output,
            "conversation_id": "conv_emulator",
            "output_modalities": config.get("output_modalities", ["audio"]),
            "max_output_tokens": config.get("max_output_tokens", "inf"),
            "audio": {"output": config["audio"]["output"]},
            "usage": None
            if status == "in_progress"
            else {
                "total_tokens": 0,
                "input_tokens": 0,
                "output_tokens": 0,
            },
            "metadata": None,
        }

    async def generate(self, reply: Reply, audio: bool) -> None:
        """The reply's text (spoken if `audio`), its tool calls, then response.done."""
        session = self.session
        await pause(session.emu.first_token_latency)
        if reply.text:
            await self._speak(reply.text, audio)
        for call in reply.tool_calls:
            await self._call_tool(call)
        self.finished = True
        session.response = None
        await session.send({"type": "response.done", "response": self.json("completed")})

    async def _speak(self, text: str, audio: bool) -> None:
        session = self.session
        item_id = session.emu.new_id("item")
        index = len(self.output)
        part_type = "output_audio" if audio else "output_text"
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        self.output.append(item)
        session.item_audio_ms[item_id] = 0
        ids = {"response_id": self.id, "item_id": item_id, "output_index": index}
        await session.send(
            {
                "type": "response.output_item.added",
                "response_id": self.id,
                "output_index": index,
                "item": item,
            }
        )
        await session.add_item(item, session.last_item_id)
        await session.send(
            {
                "type": "response.content_part.added",
                **ids,
                "content_index": 0,
                "part": {"type": "audio", "transcript": ""}
                if audio
                else {"type": "text", "text": ""},
            }
        )
        fmt = session.output_format
        said = ""
        try:
            for i, piece in enumerate(text_pieces(text)):
                if i:
                    await pause(session.emu.token_delay)
                if audio:
                    chunk = fmt.speech(piece)
                    session.item_audio_ms[item_id] += len(chunk) // fmt.bytes_per_ms
                    await session.send(
                        {
                            "type": "response.output_audio.delta",
                            **ids,
                            "content_index": 0,
                            "delta": base64.b64encode(chunk).decode(),
                        }
                    )
                    await session.send(
                        {
                            "type": "response.output_audio_transcript.delta",
                            **ids,
                            "content_index": 0,
                            "delta": piece,
                        }
                    )
                else:
                    await session.send(
                        {
                            "type": "response.output_text.delta",
                            **ids,
                            "content_index": 0,
                            "delta": piece,
                        }
                    )
                said += piece
        finally:
            # Also runs on cancellation, so the item shows what was actually produced.
            item["status"] = "completed" if said == text else "incomplete"
            item["content"] = [
                {"type": part_type, "transcript": said}
                if audio
                else {"type": part_type, "text": said}
            ]
        if audio:
            await session.send({"type": "response.output_audio.done", **ids, "content_index": 0})
            await session.send(
                {
                    "type": "response.output_audio_transcript.done",
                    **ids,
                    "content_index": 0,
                    "transcript": said,
                }
            )
        else:
            await session.send(
                {"type": "response.output_text.done", **ids, "content_index": 0, "text": said}
            )
        await session.send(
            {
                "type": "response.content_part.done",
                **ids,
                "content_index": 0,
                "part": item["content"][0],
            }
        )
        await session.send(
            {
                "type": "response.output_item.done",
                "response_id": self.id,
                "output_index": index,
                "item": item,
            }
        )
        await session.send({"type": "conversation.item.done", "item": item})

    async def _call_tool(self, call: ScriptedToolCall) -> None:
        session = self.session
        item_id = session.emu.new_id("item")
        call_id = call.id or session.emu.new_id("call")
        index = len(self.output)
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": call.name,
            "call_id": call_id,
            "arguments": "",
        }
        self.output.append(item)
        ids = {
            "response_id": self.id,
            "item_id": item_id,
            "output_index": index,
            "call_id": call_id,
        }
        await session.send(
            {
                "type": "response.output_item.added",
                "response_id": self.id,
                "output_index": index,
                "item": item,
            }
        )
        await session.add_item(item, session.last_item_id)
        raw = call.arguments_json
        for i, piece in enumerate(argument_pieces(raw)):
            if i:
                await pause(session.emu.token_delay)
            await session.send(
                {"type": "response.function_call_arguments.delta", **ids, "delta": piece}
            )
        item.update(arguments=raw, status="completed")
        await session.send(
            {
                "type": "response.function_call_arguments.done",
                **ids,
                "name": call.name,
                "arguments": raw,
            }
        )
        await session.send(
            {
                "type": "response.output_item.done",
                "response_id": self.id,
                "output_index": index,
                "item": item,
            }
        )
        await session.send({"type": "conversation.item.done", "item": item})
