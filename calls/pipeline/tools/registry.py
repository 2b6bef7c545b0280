"""The tool registry: one entry per tool, its schema, where it runs, and its handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from calls.core.persona import PersonaSpec

# handler(env, arguments) -> the result the model sees, `{"ok": bool, ...}`. `env` is a
# `PipelineEnv` or a `SessionEnv` (calls.pipeline.tools.env), by where the tool runs.
Handler = Callable[[Any, dict], Awaitable[dict]]
Parameters = dict | Callable[[PersonaSpec], dict]

NO_PARAMETERS: dict = {"type": "object", "properties": {}}


class Where(StrEnum):
    # Run by the engine as soon as the model asks: it changes the conversation, not the call.
    PIPELINE = "pipeline"
    # Sent to the session as a ToolRequest, which it runs once the words said before it have
    # been heard: carrier actions (transfer, digits) and people (a supervisor).
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    label: str  # for people: the admin, the API's help text
    description: str  # for the model
    handler: Handler
    where: Where
    # A JSON Schema object, or a function of the persona that makes one (an enum of its stages).
    parameters: Parameters
    # The model speaks again once it has the result (in the same reply).
    follow_up: bool = False
    # The call ends once the reply has played (the persona's goodbye is said if it said nothing).
    ends_call: bool = False
    # True: a persona turns it on by listing it in `tools`. False: offered whenever `available`.
    listed: bool = True
    available: Callable[[PersonaSpec], bool] | None = None

    def schema(self, persona: PersonaSpec) -> dict:
        """The OpenAI chat-completions function schema offered to the model on this call."""
        params = self.parameters(persona) if callable(self.parameters) else self.parameters
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }


REGISTRY: dict[str, ToolSpec] = {}


def tool(
    name: str,
    *,
    label: str,
    description: str,
    where: Where,
    parameters: Parameters = NO_PARAMETERS,
    follow_up: bool = False,
    ends_call: bool = False,
    listed: bool = True,
    available: Callable[[PersonaSpec], bool] | None = None,
) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine as the handler of tool `name` (see calls.pipeline.tools)."""

    def register(handler: Handler) -> Handler:
        if name in REGISTRY:
            raise ValueError(f"tool {name!r} is registered twice")
        REGISTRY[name] = ToolSpec(
            name=name, label=label, description=description, handler=handler, where=where,
            parameters=parameters, follow_up=follow_up, ends_call=ends_call, listed=listed,
            available=available,
        )  # fmt: skip
        return handler

    return register


def persona_tools() -> dict[str, str]:
    """The tools a persona may list in its `tools` field: name -> label."""
    return {spec.name: spec.label for spec in REGISTRY.values() if spec.listed}


def offered(persona: PersonaSpec) -> list[ToolSpec]:
    """The tools of a call with `persona`: those it lists, in its order, then the automatic ones."""
    listed = [REGISTRY[n] for n in dict.fromkeys(persona.tools) if n in REGISTRY]
    automatic = [spec for spec in REGISTRY.values() if not spec.listed]
    return [
        spec
        for spec in [*(s for s in listed if s.listed), *automatic]
        if spec.available is None or spec.available(persona)
    ]


def tool_schemas(persona: PersonaSpec) -> list[dict]:
    """The function schemas offered to the model on a call with `persona` (`CallContext.tools`)."""
    return [spec.schema(persona) for spec in offered(persona)]
