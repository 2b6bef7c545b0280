"""Builds the values a persona's templates are rendered with, and its plain snapshot for the pipeline."""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.utils import timezone

from agents import prompts
from agents.models import Persona
from calls.core.persona import QA, PersonaSpec, Stage, TransferDestination


def template_values(
    persona: Persona,
    variables: Mapping[str, object],
    *,
    history: str = "",
    current_stage: str = "",
    caller_number: str = "",
    call_id: str = "",
) -> dict[str, object]:
    now = timezone.localtime()
    values: dict[str, object] = {
        "agent_name": persona.agent_name,
        "role": persona.role,
        "company": persona.company,
        "language": persona.language,
        "persona_name": persona.name,
        "transfer_number": str(persona.transfer_number or ""),
        "conversation_history": history,
        "current_stage": current_stage or (persona.stages[0]["name"] if persona.stages else ""),
        "today": now.date().isoformat(),
        "now": now.strftime("%Y-%m-%d %H:%M"),
        "caller_number": caller_number,
        "call_id": call_id,
    }
    known = {**values, **variables}
    values["stages"] = "\n".join(
        f"- {s['name']}: {fill_known(s.get('description', ''), known)}" for s in persona.stages
    )
    values["goodbye"] = prompts.render(persona.goodbye or "", {**values, **variables})
    values.update(variables)
    return values


def fill_known(text: str, values: Mapping[str, object]) -> str:
    """`{name}` placeholders of a stage's description replaced by the values known; any other
    text, braces included, stays as written (descriptions are free text, not checked templates)."""
    return re.sub(
        r"\{(\w+)\}",
        lambda g: str(values[g.group(1)]) if g.group(1) in values else g.group(0),
        text,
    )


def sample_variables(persona: Persona) -> dict[str, object]:
    """Example values for a preview: each declared variable's example, or its name in angle brackets."""
    return {v["name"]: v.get("example") or f"<{v['name']}>" for v in persona.variables}


def render_prompt(persona: Persona, variables: Mapping[str, object], **runtime: str) -> str:
    """The system prompt; its length limit does not count the conversation so far."""
    return prompts.render(
        persona.system_prompt,
        template_values(persona, variables, **runtime),
        unbounded=("conversation_history",),
    )


def render_greeting(persona: Persona, variables: Mapping[str, object], **runtime: str) -> str:
    return prompts.render(
        persona.first_message or "", template_values(persona, variables, **runtime)
    )


def persona_spec(persona: Persona, variables: Mapping[str, object]) -> PersonaSpec:
    """A frozen, ORM-free snapshot of `persona` for one call (the pipeline never touches the ORM)."""
    values = template_values(persona, variables)
    return PersonaSpec(
        name=persona.name,
        agent_name=persona.agent_name,
        greeting=prompts.render(persona.first_message or "", values),
        goodbye=str(values["goodbye"]),
        language=persona.language,
        stages=tuple(
            Stage(s["name"], fill_known(s.get("description", ""), values)) for s in persona.stages
        ),
        qa=tuple(QA(q.question, q.answer) for q in persona.qa_entries.all()),
        tools=tuple(persona.tools),
        transfer_number=str(persona.transfer_number or ""),
        transfer_destinations=tuple(
            TransferDestination(d["name"], d["number"], d.get("description", ""))
            for d in persona.transfer_destinations
        ),
        variables=dict(variables),
    )
