"""Persona writes: validation of templates and JSON fields, nothing half-written."""

import pytest
from django.core.exceptions import ValidationError

from agents import context, services
from agents.models import Persona, QAEntry

BASE = {
    "name": "Test",
    "slug": "test",
    "agent_name": "Ava",
    "system_prompt": "You are {agent_name}. Call {customer}. History: {conversation_history}",
    "first_message": "Hi {customer}, this is {agent_name}.",
    "variables": [{"name": "customer", "example": "Bo"}],
}


@pytest.mark.django_db
def test_create_with_qa_entries():
    persona = services.persona_create(
        **BASE, qa_entries=[{"question": "Price?", "answer": "Ten dollars."}]
    )
    assert [q.answer for q in persona.qa_entries.all()] == ["Ten dollars."]
    prompt = context.render_prompt(persona, {"customer": "Bo"}, history="caller: hi")
    assert prompt == "You are Ava. Call Bo. History: caller: hi"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"system_prompt": "Hi {unknown_thing}"}, "system_prompt", "{unknown_thing}"),
        ({"first_message": "Hi {customer"}, "first_message", "broken template"),
        ({"goodbye": "Bye {0}"}, "goodbye", "positional"),
        ({"variables": [{"name": "agent_name"}]}, "variables", "reserved"),
        ({"variables": [{"name": "not valid"}]}, "variables", "identifier"),
        ({"stages": [{"description": "no name"}]}, "stages", "name"),
        ({"tools": ["end_call", "launch_rocket"]}, "tools", "launch_rocket"),
        ({"extraction_schema": {"type": "nonsense"}}, "extraction_schema", "JSON Schema"),
        ({"provider_options": ["x"]}, "provider_options", "object"),
    ],
)
def test_invalid_persona_is_rejected_with_field_message(changes, field, fragment):
    with pytest.raises(ValidationError) as info:
        services.persona_create(**{**BASE, **changes})
    assert field in info.value.message_dict
    assert fragment in " ".join(info.value.message_dict[field])
    assert not Persona.objects.exists()


@pytest.mark.django_db
def test_failed_update_leaves_persona_and_qa_untouched():
    persona = services.persona_create(**BASE, qa_entries=[{"question": "Q", "answer": "A"}])
    with pytest.raises(ValidationError):
        services.persona_update(
            persona=persona,
            system_prompt="{oops}",
            qa_entries=[{"question": "New", "answer": "B"}],
        )
    persona.refresh_from_db()
    assert persona.system_prompt == BASE["system_prompt"]
    assert list(QAEntry.objects.values_list("question", flat=True)) == ["Q"]


@pytest.mark.django_db
def test_fixture_personas_are_valid_and_render(personas):
    assert {"myra-recruiting", "sarah-prior-auth", "billing-advocate"} <= set(personas)
    for persona in personas.values():
        persona.full_clean()
        sample = context.sample_variables(persona)
        assert "{" not in context.render_prompt(persona, sample)
        assert persona.qa_entries.exists() and persona.stages and persona.extraction_schema
    spec = context.persona_spec(
        personas["myra-recruiting"], {"applicant_name": "Ann", "position": "SRE"}
    )
    assert spec.greeting == "Hi, this is Myra from Escade Networks. Am I speaking with Ann?"
    assert "Ann" in spec.goodbye and spec.qa and spec.stages[0].name == "introduction"
