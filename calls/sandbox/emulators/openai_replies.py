"""Scripted model replies (text, then tool calls) and the pieces they are streamed in."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field


@dataclass
class ScriptedToolCall:
    name: str
    arguments: dict | str = field(default_factory=dict)
    id: str = ""

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass
class Reply:
    """What the emulated model says: text, then tool calls (either may be empty)."""

    text: str = ""
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    finish_reason: str = ""

    @classmethod
    def of(cls, value: Reply | str | dict | list | tuple) -> Reply:
        """Accepts "text", {"name","arguments"}, {"text","tool_calls"}, or a list mixing them."""
        if isinstance(value, Reply):
            return value
        if isinstance(value, str):
            return cls(text=value)
        if isinstance(value, dict):
            if "name" in value:
                return cls(tool_calls=[_tool(value)])
            calls = value.get("tool_calls") or [value[k] for k in ("tool_call",) if k in value]
            return cls(
                text=value.get("text", ""),
                tool_calls=[_tool(c) for c in calls],
                finish_reason=value.get("finish_reason", ""),
            )
        reply = cls()
        for part in value:
            sub = cls.of(part)
            reply.text += sub.text
            reply.tool_calls.extend(sub.tool_calls)
        return reply


def _tool(value: ScriptedToolCall | dict) -> ScriptedToolCall:
    if isinstance(value, ScriptedToolCall):
        return value
    return ScriptedToolCall(value["name"], value.get("arguments", {}), value.get("id", ""))


def text_pieces(text: str) -> list[str]:
    """Word-sized stream pieces that join back to `text` exactly."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", text) or ([text] if text else [])


def argument_pieces(raw: str, size: int = 6) -> list[str]:
    return [raw[i : i + size] for i in range(0, len(raw), size)] or [""]


def default_reply(user_text: str) -> str:
    if not user_text:
        return "Hello! How can I help you today?"
    return f"You said: {user_text.rstrip('.?!')}. How can I help?"


async def pause(seconds: float) -> None:
    """The pause before a stream piece; zero does not yield to the loop."""
    if seconds > 0:
        await asyncio.sleep(seconds)
