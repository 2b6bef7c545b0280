"""Checks a persona's templates and JSON fields, returning field-level messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import phonenumbers
from jsonschema import SchemaError
from jsonschema.validators import validator_for

from agents import prompts

if TYPE_CHECKING:
    from agents.models import Persona

TEMPLATE_FIELDS = ("system_prompt", "first_message", "goodbye")
RESERVED = prompts.RUNTIME_PLACEHOLDERS | prompts.PERSONA_PLACEHOLDERS


def _variables_errors(variables: object) -> list[str]:
    if not isinstance(variables, list):
        return ["must be a list of {name, example, description, required} objects"]
    if len(variables) > prompts.MAX_VARIABLES:
        return [f"at most {prompts.MAX_VARIABLES} variables"]
    errors, seen = [], set()
    for i, item in enumerate(variables):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name.isidentifier():
            errors.append(f"item {i}: 'name' must be a plain identifier")
        elif name in RESERVED:
            errors.append(f"'{name}' is reserved (filled by the system)")
        elif name in seen:
            errors.append(f"'{name}' is declared twice")
        seen.add(name)
    return errors


def _stages_errors(stages: object) -> list[str]:
    if not isinstance(stages, list):
        return ["must be a list of {name, description} objects"]
    names = [s.get("name") if isinstance(s, dict) else None for s in stages]
    errors = [f"item {i}: needs a non-empty 'name'" for i, n in enumerate(names) if not n]
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    errors += [f"stage '{n}' is declared twice" for n in dupes]
    return errors


def _tools_errors(tools: object, known: Sequence[str]) -> list[str]:
    if not isinstance(tools, list):
        return [f"must be a list drawn from {list(known)}"]
    return [f"unknown tool '{t}'; choose from {list(known)}" for t in tools if t not in known]


DESTINATION_KEYS = {"name", "number", "description"}
MAX_DESTINATION_NAME = 64


def _e164(number: object) -> str | None:
    """`number` in E.164 form, or None if it is not a valid number written with its country code."""
    if not isinstance(number, str) or not number.strip().startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(number.strip(), None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _destinations_errors(destinations: object) -> list[str]:
    if not isinstance(destinations, list):
        return ["must be a list of {name, number, description} objects"]
    errors, seen = [], set()
    for i, item in enumerate(destinations):
        if not isinstance(item, dict):
            errors.append(f"item {i}: must be a {{name, number, description}} object")
            continue
        if unknown := sorted(set(item) - DESTINATION_KEYS):
            errors.append(f"item {i}: unknown key(s) {', '.join(unknown)}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_DESTINATION_NAME:
            errors.append(f"item {i}: needs a 'name' of 1 to {MAX_DESTINATION_NAME} characters")
        elif name in seen:
            errors.append(f"destination '{name}' is declared twice")
        seen.add(name)
        if _e164(item.get("number")) is None:
            errors.append(f"item {i}: 'number' must be a valid number in E.164 format, "
                          "e.g. +14155550100")  # fmt: skip
        if not isinstance(item.get("description", ""), str):
            errors.append(f"item {i}: 'description' must be text")
    return errors


def normalized_destinations(destinations: list[dict]) -> list[dict]:
    """Valid destinations (see `_destinations_errors`) with their numbers in E.164 form."""
    return [
        {"name": d["name"], "number": _e164(d["number"]), "description": d.get("description", "")}
        for d in destinations
    ]


def _schema_errors(schema: object) -> list[str]:
    if not isinstance(schema, dict):
        return ["must be a JSON Schema object"]
    if not schema:
        return []
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        return [f"invalid JSON Schema: {exc.message}"]
    return []


def persona_errors(persona: Persona, *, tools: Sequence[str]) -> dict[str, list[str]]:
    """All problems with `persona`, keyed by field (`tools`: the tool names a persona may list);
    empty when it is usable on a call."""
    errors: dict[str, list[str]] = {}
    checks = {
        "variables": _variables_errors(persona.variables),
        "stages": _stages_errors(persona.stages),
        "tools": _tools_errors(persona.tools, tools),
        "transfer_destinations": _destinations_errors(persona.transfer_destinations),
        "extraction_schema": _schema_errors(persona.extraction_schema),
    }
    for field, msgs in checks.items():
        if msgs:
            errors[field] = msgs
    for field in ("voices", "provider_options"):
        if not isinstance(getattr(persona, field), dict):
            errors[field] = ["must be a JSON object"]
    if "variables" not in errors:
        known = RESERVED | set(persona.variable_names)
        for field in TEMPLATE_FIELDS:
            template = getattr(persona, field) or ""
            if len(template) > prompts.MAX_TEMPLATE_CHARS:
                errors[field] = [f"at most {prompts.MAX_TEMPLATE_CHARS} characters"]
                continue
            try:
                prompts.check(template, known)
            except prompts.TemplateError as exc:
                errors[field] = [str(exc)]
    return errors
