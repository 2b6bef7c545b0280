"""Persona templates cannot be made to render huge: format specs and conversions are refused on
save (a 400 naming the field), templates and rendered prompts have a maximum length, and a call's
variables a maximum count and size."""

import pytest

from agents import prompts
from agents.models import Persona
from calls.models import Call

NEW = {
    "name": "Support", "slug": "support", "agent_name": "Sam",
    "system_prompt": "You are {agent_name} helping {customer}.", "first_message": "Hi {customer}!",
    "variables": [{"name": "customer", "example": "Kim"}],
}  # fmt: skip
MYRA_VARS = {"applicant_name": "Ann", "position": "SRE"}


@pytest.mark.parametrize(
    ("field", "template", "fragment"),
    [
        ("system_prompt", "{agent_name:>100000000}", "format spec"),
        ("system_prompt", "{agent_name:,}", "format spec"),
        ("first_message", "Hi {customer!r}", "conversion"),
        ("goodbye", "Bye {customer!s}", "conversion"),
    ],
)
@pytest.mark.django_db
def test_format_specs_and_conversions_are_refused_on_create(api, field, template, fragment):
    response = api.post("/api/personas/", {**NEW, field: template}, format="json")
    assert response.status_code == 400
    assert fragment in response.json()[field][0]
    assert not Persona.objects.exists()


@pytest.mark.django_db
def test_a_format_spec_is_refused_on_update(api, personas):
    url = "/api/personas/myra-recruiting/"
    response = api.patch(url, {"system_prompt": "{agent_name:>100000000}"}, format="json")
    assert response.status_code == 400 and "format spec" in response.json()["system_prompt"][0]
    assert "{agent_name:" not in Persona.objects.get(slug="myra-recruiting").system_prompt


@pytest.mark.django_db
def test_templates_and_declared_variables_have_a_maximum(api):
    too_long = "x" * (prompts.MAX_TEMPLATE_CHARS + 1)
    response = api.post("/api/personas/", {**NEW, "first_message": too_long}, format="json")
    assert response.status_code == 400 and "first_message" in response.json()
    many = [{"name": f"v{i}"} for i in range(prompts.MAX_VARIABLES + 1)]
    response = api.post("/api/personas/", {**NEW, "variables": many}, format="json")
    assert response.status_code == 400 and "variables" in response.json()


def test_the_rendered_length_is_checked_before_rendering():
    template = "{a}" * 10
    with pytest.raises(prompts.TemplateError, match="renders to 100000"):
        prompts.render(template, {"a": "y" * 10_000}, limit=99_999)
    assert len(prompts.render(template, {"a": "y" * 10_000})) == 100_000
    assert prompts.render("{h}", {"h": "z" * 200_000}, unbounded=("h",)).startswith("z")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "variables",
    [
        {**MYRA_VARS, **{f"extra{i}": "x" for i in range(prompts.MAX_VARIABLES)}},
        {**MYRA_VARS, "position": "x" * (prompts.MAX_VARIABLE_CHARS + 1)},
        {**MYRA_VARS, "n" * (prompts.MAX_VARIABLE_NAME_CHARS + 1): "x"},
    ],
)
def test_call_variables_have_a_maximum_count_and_size(api, myra, twilio_fake, variables):
    body = {"persona": "myra-recruiting", "to": "+14155550100", "variables": variables}
    response = api.post("/api/calls/", body, format="json")
    assert response.status_code == 400 and "variables" in response.json()
    assert not Call.objects.exists() and not twilio_fake.requests


@pytest.mark.django_db
def test_a_prompt_that_would_render_too_long_refuses_the_call(api, myra, twilio_fake):
    myra.system_prompt = "{position} " * 60  # 60 x 2000 characters
    myra.save()
    variables = {**MYRA_VARS, "position": "x" * prompts.MAX_VARIABLE_CHARS}
    body = {"persona": "myra-recruiting", "to": "+14155550100", "variables": variables}
    response = api.post("/api/calls/", body, format="json")
    assert response.status_code == 400
    assert "renders to" in response.json()["variables"][0]
    assert not Call.objects.exists() and not twilio_fake.requests
