"""Persona prompt templates: `{placeholder}` syntax, checked on save, rendered per call."""

from __future__ import annotations

import string
from collections.abc import Collection, Iterable, Mapping

# Placeholders the runtime fills for every call, whatever the persona.
RUNTIME_PLACEHOLDERS: frozenset[str] = frozenset(
    {"conversation_history", "current_stage", "stages", "today", "now", "caller_number", "call_id"}
)
# Persona attributes usable as placeholders.
PERSONA_PLACEHOLDERS: frozenset[str] = frozenset(
    {"agent_name", "role", "company", "language", "persona_name", "transfer_number", "goodbye"}
)

# A template's own length, and its rendered length (not counting the values named `unbounded`
# when rendering, i.e. the conversation so far, which the pipeline bounds itself).
MAX_TEMPLATE_CHARS = 20_000
MAX_RENDERED_CHARS = 100_000
# A call's variables (and a persona's declared ones): how many, and the size of each name and value.
MAX_VARIABLES = 50
MAX_VARIABLE_NAME_CHARS = 64
MAX_VARIABLE_CHARS = 2_000

_formatter = string.Formatter()


class TemplateError(ValueError):
    """A template that cannot be rendered; the message names the problem."""


def placeholders(template: str) -> list[str]:
    """The placeholder names in `template`, in order, without duplicates.

    Only bare names are allowed: attribute or index access (`{a.b}`, `{a[0]}`) could reach into
    objects, positional `{}` has no name to fill, and a format spec or conversion (`{a:>99999}`,
    `{a!r}`) can make a short template render to any size, so all are template errors.
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
        if spec:
            raise TemplateError(
                f"format spec in '{{{field}:{spec}}}' is not allowed: write {{{field}}}"
            )
        if conversion is not None:
            raise TemplateError(
                f"conversion in '{{{field}!{conversion}}}' is not allowed: write {{{field}}}"
            )
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


def render(
    template: str,
    values: Mapping[str, object],
    *,
    unbounded: Collection[str] = (),
    limit: int = MAX_RENDERED_CHARS,
) -> str:
    """Fill `template`; a missing value or a result over `limit` characters (not counting the
    `unbounded` values) raises TemplateError naming it (never a KeyError mid-call). The length is
    known before anything is built: a template is literal text and bare placeholders."""
    missing = [n for n in placeholders(template) if n not in values]
    if missing:
        raise TemplateError("missing value(s) for " + ", ".join("{" + n + "}" for n in missing))
    size = 0
    for literal, field, _spec, _conversion in _formatter.parse(template):
        size += len(literal)
        if field is not None and field not in unbounded:
            size += len(str(values[field]))
    if size > limit:
        raise TemplateError(f"renders to {size} characters; at most {limit} are allowed")
    try:
        return _formatter.vformat(template, (), dict(values))
    except (ValueError, TypeError) as exc:
        raise TemplateError(f"cannot render template: {exc}") from None
