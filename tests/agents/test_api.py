"""Persona endpoints: CRUD, auth, validation errors."""

import pytest

from agents.models import Persona

NEW = {
    "name": "Support",
    "slug": "support",
    "agent_name": "Sam",
    "system_prompt": "You are {agent_name} helping {customer}.",
    "first_message": "Hi {customer}!",
    "variables": [{"name": "customer", "example": "Kim"}],
    "qa_entries": [{"question": "Hours?", "answer": "Nine to five."}],
}


@pytest.mark.django_db
def test_requires_authentication(anon, personas):
    assert anon.get("/api/personas/").status_code in (401, 403)
    assert anon.post("/api/personas/", NEW, format="json").status_code in (401, 403)


@pytest.mark.django_db
def test_list_and_detail(api, personas):
    listed = api.get("/api/personas/").json()
    assert listed["count"] == 4  # fixtures/personas.yaml
    detail = api.get("/api/personas/myra-recruiting/").json()
    assert detail["agent_name"] == "Myra"
    assert detail["required_variables"] == ["applicant_name", "position"]
    assert "Jordan Lee" in detail["prompt_preview"]
    assert len(detail["qa_entries"]) == 3


@pytest.mark.django_db
def test_create_update_delete(api):
    created = api.post("/api/personas/", NEW, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["qa_entries"] == NEW["qa_entries"]
    patched = api.patch("/api/personas/support/", {"agent_name": "Samira"}, format="json")
    assert patched.status_code == 200 and patched.json()["agent_name"] == "Samira"
    assert patched.json()["qa_entries"] == NEW["qa_entries"]  # untouched when not sent
    assert api.delete("/api/personas/support/").status_code == 204
    assert not Persona.objects.filter(slug="support").exists()


@pytest.mark.django_db
def test_unknown_placeholder_is_a_field_error(api):
    response = api.post("/api/personas/", {**NEW, "system_prompt": "Hi {nobody}"}, format="json")
    assert response.status_code == 400
    assert "{nobody}" in response.json()["system_prompt"][0]
    assert not Persona.objects.exists()


@pytest.mark.django_db
def test_broken_template_on_patch_is_a_field_error(api, personas):
    response = api.patch("/api/personas/myra-recruiting/", {"first_message": "Hi {"}, format="json")
    assert response.status_code == 400 and "first_message" in response.json()


@pytest.mark.django_db
def test_malformed_json_is_a_400(api):
    response = api.generic("POST", "/api/personas/", "{not json", content_type="application/json")
    assert response.status_code == 400


@pytest.mark.django_db
def test_persona_with_calls_cannot_be_deleted(api, myra):
    from calls import services

    services.call_create(
        persona=myra, to="+14155550100", variables={"applicant_name": "A", "position": "B"}
    )
    assert api.delete("/api/personas/myra-recruiting/").status_code == 409


@pytest.mark.django_db
def test_schema_and_docs_are_served(api, client, operator):
    assert api.get("/api/schema/").status_code == 200
    client.force_login(operator)
    assert client.get("/api/docs/").status_code == 200
