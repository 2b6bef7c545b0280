"""The LLM interface: a streaming chat completion with tool calls."""

from __future__ import annotations

import abc
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from calls.core.persona import PersonaSpec


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """`messages` in OpenAI chat format (system first); `tools` as OpenAI function schemas."""

    messages: list[dict]
    tools: list[dict] = field(default_factory=list)
    persona: PersonaSpec | None = None
    model: str = ""
    temperature: float = 0.6
    max_tokens: int = 300


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict


@dataclass(frozen=True, slots=True)
class LLMDone:
    finish_reason: str = "stop"
    usage: dict = field(default_factory=dict)


LLMEvent = TextDelta | ToolCall | LLMDone


def parse_arguments(raw: str) -> dict:
    """Tool arguments as a dict; invalid or non-object JSON gives `{"_raw": raw}` (never raises).

    A malformed tool call is the model's mistake, not a transport failure: the caller decides
    whether to retry or tell the model, so it is surfaced as data rather than as LLMError.
    """
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}


class LLMError(Exception):
    """Raised by a provider for a failed request (network, HTTP status, in-stream error)."""


class LLMProvider(abc.ABC):
    name: str = "llm"

    @abc.abstractmethod
    def stream(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        """Yield text deltas as they arrive, complete tool calls once their arguments are whole, then LLMDone."""
