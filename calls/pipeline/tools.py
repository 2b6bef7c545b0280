"""Tool schemas offered to the LLM (OpenAI function format) and which ones the pipeline handles."""

from __future__ import annotations

from calls.core.persona import PersonaSpec

_SCHEMAS: dict[str, dict] = {
    "end_call": {
        "description": "Hang up after saying goodbye, when the conversation is over.",
        "parameters": {"type": "object", "properties": {
            "reason": {"type": "string", "description": "Why the call ends."},
        }},
    },
    "transfer_call": {
        "description": "Transfer the caller to a human. Say you are transferring first.",
        "parameters": {"type": "object", "properties": {
            "to": {"type": "string", "description": "E.164 number; default: the configured one."},
        }},
    },
    "press_digits": {
        "description": "Press phone keys (DTMF), e.g. to navigate a phone menu.",
        "parameters": {"type": "object", "properties": {
            "digits": {"type": "string", "description": "Digits 0-9, * and #."},
        }, "required": ["digits"]},
    },
    "request_supervisor": {
        "description": "Ask the human supervisor a question you cannot answer yourself.",
        "parameters": {"type": "object", "properties": {
            "question": {"type": "string"},
        }, "required": ["question"]},
    },
    "set_stage": {
        "description": "Record that the conversation moved to another stage.",
        "parameters": {"type": "object", "properties": {
            "stage": {"type": "string"},
        }, "required": ["stage"]},
    },
}  # fmt: skip

# Tools whose result the LLM should see straight away to go on speaking.
FOLLOW_UP = frozenset({"set_stage", "request_supervisor"})


def tool_schemas(persona: PersonaSpec) -> list[dict]:
    names = [t for t in persona.tools if t in _SCHEMAS]
    if persona.stages:
        names.append("set_stage")
    schemas = []
    for name in names:
        schema = dict(_SCHEMAS[name])
        if name == "set_stage":
            params = {**schema["parameters"]}
            params["properties"] = {
                "stage": {"type": "string", "enum": [s.name for s in persona.stages]}
            }
            schema["parameters"] = params
        schemas.append({"type": "function", "function": {"name": name, **schema}})
    return schemas
