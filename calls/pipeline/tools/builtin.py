"""The tools every persona can use: end the call, record the stage, transfer, press keys, ask."""

from __future__ import annotations

from calls.core.persona import PersonaSpec
from calls.pipeline.tools.env import PipelineEnv, SessionEnv
from calls.pipeline.tools.registry import Where, tool

# --- run by the engine --------------------------------------------------------------------


@tool(
    "end_call", label="End call", where=Where.PIPELINE, ends_call=True,
    description="Hang up after saying goodbye, when the conversation is over.",
    parameters={"type": "object", "properties": {
        "reason": {"type": "string", "description": "Why the call ends."},
    }},
)  # fmt: skip
async def end_call(env: PipelineEnv, arguments: dict) -> dict:
    return {"ok": True}  # the engine hangs up once the reply (or the goodbye) has played


def _stage_parameters(persona: PersonaSpec) -> dict:
    return {
        "type": "object",
        "properties": {"stage": {"type": "string", "enum": [s.name for s in persona.stages]}},
        "required": ["stage"],
    }


@tool(
    "set_stage", label="Set stage", where=Where.PIPELINE, follow_up=True,
    listed=False, available=lambda persona: bool(persona.stages),
    description="Record that the conversation moved to another stage.",
    parameters=_stage_parameters,
)  # fmt: skip
async def set_stage(env: PipelineEnv, arguments: dict) -> dict:
    stage = str(arguments.get("stage", ""))
    if stage not in {s.name for s in env.ctx.persona.stages}:
        return {"ok": False, "error": f"unknown stage {stage!r}"}
    if stage != env.ctx.conversation.stage:
        env.ctx.conversation.stage = stage
        await env.stage_changed(stage)
    return {"ok": True}


# --- run by the session, once the words said before them have been heard -----------------


def _transfer_parameters(persona: PersonaSpec) -> dict:
    """Only the persona's named destinations: the model never chooses a number."""
    destinations = persona.transfer_destinations
    if not destinations:
        return {"type": "object", "properties": {}, "additionalProperties": False}
    lines = "; ".join(f"{d.name}: {d.description}" if d.description else d.name
                      for d in destinations)  # fmt: skip
    default = " Leave it out for the default line." if persona.transfer_number else ""
    parameters = {
        "type": "object",
        "properties": {"destination": {
            "type": "string", "enum": [d.name for d in destinations],
            "description": f"Who to transfer to ({lines}).{default}",
        }},
        "additionalProperties": False,
    }  # fmt: skip
    if not persona.transfer_number:
        parameters["required"] = ["destination"]
    return parameters


@tool(
    "transfer_call", label="Transfer call", where=Where.SESSION,
    description="Transfer the caller to a human. Say you are transferring first.",
    parameters=_transfer_parameters,
)  # fmt: skip
async def transfer_call(env: SessionEnv, arguments: dict) -> dict:
    persona = env.ctx.persona
    numbers = {d.name: d.number for d in persona.transfer_destinations}
    names = list(numbers)
    if set(arguments) - {"destination"}:
        return {"ok": False, "error": "transfer_call takes only a destination name"
                + (f", one of {names}" if names else "") + "; it does not take a number"}  # fmt: skip
    name = arguments.get("destination")
    if name in (None, ""):
        if not persona.transfer_number:
            return {"ok": False, "error": f"choose a destination from {names}" if names
                    else "no transfer number configured"}  # fmt: skip
        return await env.transfer(persona.transfer_number)
    if not isinstance(name, str) or name not in numbers:
        return {"ok": False, "error": f"unknown destination {name!r}; choose from {names}"}
    return await env.transfer(numbers[name])


@tool(
    "press_digits", label="Press digits (DTMF)", where=Where.SESSION,
    description="Press phone keys (DTMF), e.g. to navigate a phone menu.",
    parameters={"type": "object", "properties": {
        "digits": {"type": "string", "description": "Digits 0-9, * and #."},
    }, "required": ["digits"]},
)  # fmt: skip
async def press_digits(env: SessionEnv, arguments: dict) -> dict:
    return await env.press_digits(str(arguments.get("digits", "")))


@tool(
    "request_supervisor", label="Ask a supervisor", where=Where.SESSION, follow_up=True,
    description="Ask the human supervisor a question you cannot answer yourself.",
    parameters={"type": "object", "properties": {
        "question": {"type": "string"},
    }, "required": ["question"]},
)  # fmt: skip
async def request_supervisor(env: SessionEnv, arguments: dict) -> dict:
    return await env.ask_supervisor(str(arguments.get("question", "")))
