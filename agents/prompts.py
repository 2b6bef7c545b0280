"""Persona prompt templates: `{placeholder}` syntax, checked on save, rendered per call."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

# Placeholders the runtime fills for every call, whatever the persona.
RUNTIME_PLACEHOLDERS: frozenset[str] = frozenset(
    {"conversation_history", "current_stage", "stages", "today", "now", "caller_number", "call_id"}
)
# Persona attributes usable as placeholders.
PERSONA_PLACEHOLDERS: frozenset[str] = frozenset(
    {"agent_name", "role", "company", "language", "persona_name", "transfer_number", "goodbye"}
)

_formatter = string.Formatter()


class TemplateError(ValueError):
    """A template that cannot be rendered; the message names the problem."""


def placeholders(template: str) -> list[str]:
    """The placeholder names in `template`, in order, without duplicates.

    Only bare names are allowed: attribute or index access (`{a.b}`, `{a[0]}`) could reach into
    objects, and positional `{}` has no name to fill, so both are template errors.
    """
    names: list[str] = []
    try:
        parsed = list(_formatter.parse(template))
    except ValueError as exc:
        raise TemplateError(f"broken template: {exc}") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field == "" or field.isdigit():
            raise TemplateError(
                "positional placeholder '{}' is not allowed: name it, e.g. {agent_name}"
            )
        if not field.isidentifier():
            raise TemplateError(f"placeholder '{{{field}}}' must be a plain name")
        if spec and ("{" in spec):
            raise TemplateError(f"nested placeholder in '{{{field}:{spec}}}' is not allowed")
        if conversion not in (None, "s", "r"):
            raise TemplateError(f"bad conversion in '{{{field}!{conversion}}}'")
        if field not in names:
            names.append(field)
    return names


def check(template: str, known: Iterable[str]) -> list[str]:
    """Return the placeholders of `template`; raise TemplateError naming any that is unknown."""
    names = placeholders(template)
    allowed = set(known)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        listed = ", ".join("{" + n + "}" for n in unknown)
        raise TemplateError(
            f"unknown placeholder(s) {listed}; declare them as variables or remove them"
        )
    return names


def render(template: str, values: Mapping[str, object]) -> str:
    """Fill `template`; a missing value raises TemplateError naming it (never a KeyError mid-call)."""
    missing = [n for n in placeholders(template) if n not in values]
    if missing:
        raise TemplateError("missing value(s) for " + ", ".join("{" + n + "}" for n in missing))
    try:
        return _formatter.vformat(template, (), dict(values))
    except (ValueError, TypeError) as exc:
        raise TemplateError(f"cannot render template: {exc}") from None
