"""Text chat with a persona through the configured LLM, before it goes on the phone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string

from agents import context
from agents.models import Persona
from agents.prompts import TemplateError
from calls.pipeline.tools import tool_schemas
from calls.providers.llm.base import LLMError, LLMRequest, TextDelta, ToolCall

MAX_MESSAGES = 100


def _clean(messages: Sequence[Mapping[str, object]]) -> list[dict]:
    if not isinstance(messages, Sequence) or len(messages) > MAX_MESSAGES:
        raise ValidationError({"messages": [f"a list of at most {MAX_MESSAGES} messages"]})
    clean = []
    for m in messages:
        if not isinstance(m, Mapping) or m.get("role") not in ("user", "assistant"):
            raise ValidationError({"messages": ["each message needs role user|assistant"]})
        clean.append({"role": m["role"], "content": str(m.get("content", ""))[:2000]})
    return clean


def persona_chat(
    *, persona: Persona, messages: Sequence[Mapping[str, object]], variables: Mapping[str, str]
) -> dict:
    """One agent reply to the conversation so far: its text and the tools it would call."""
    history = _clean(messages)
    values = {**context.sample_variables(persona), **{k: str(v) for k, v in variables.items()}}
    transcript = "\n".join(
        f"{'Caller' if m['role'] == 'user' else 'Agent'}: {m['content']}" for m in history
    )
    try:
        system = context.render_prompt(persona, values, history=transcript)
    except TemplateError as exc:
        raise ValidationError({"variables": [str(exc)]}) from None
    spec = context.persona_spec(persona, values)
    if not history:
        return {"reply": spec.greeting, "tool_calls": []}
    conf = settings.PROVIDERS["llm"]
    # A fresh client per request: async clients are bound to the event loop that made them.
    provider = import_string(conf["BACKEND"])(**conf.get("OPTIONS", {}))
    request = LLMRequest(
        messages=[{"role": "system", "content": system}, *history],
        tools=tool_schemas(spec),
        persona=spec,
        model=(persona.provider_options or {}).get("llm_model", ""),
    )

    async def run() -> dict:
        text, calls = [], []
        async for event in provider.stream(request):
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ToolCall):
                calls.append({"name": event.name, "arguments": event.arguments})
        return {"reply": "".join(text).strip(), "tool_calls": calls}

    try:
        return async_to_sync(run)()
    except LLMError as exc:
        raise ValidationError({"detail": [f"the LLM failed: {exc}"]}) from None
