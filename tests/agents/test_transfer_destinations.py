"""A persona's named transfer destinations and its tools, checked against the tool registry."""

import pytest

from agents import context
from agents.models import Persona
from calls.core.persona import TransferDestination

NEW = {
    "name": "Support",
    "slug": "support",
    "agent_name": "Sam",
    "system_prompt": "You are {agent_name}.",
    "tools": ["transfer_call"],
    "transfer_number": "+14155550142",
}


@pytest.mark.django_db
def test_destinations_are_saved_in_e164_and_shown(api):
    destinations = [
        {"name": "sales", "number": "+1 (415) 555-0199", "description": "New orders"},
        {"name": "billing", "number": "+442079460958"},
    ]
    created = api.post("/api/personas/", {**NEW, "transfer_destinations": destinations},
                       format="json")  # fmt: skip
    assert created.status_code == 201, created.json()
    expected = [
        {"name": "sales", "number": "+14155550199", "description": "New orders"},
        {"name": "billing", "number": "+442079460958", "description": ""},
    ]
    assert created.json()["transfer_destinations"] == expected
    assert api.get("/api/personas/support/").json()["transfer_destinations"] == expected
    spec = context.persona_spec(Persona.objects.get(slug="support"), {})
    assert spec.transfer_destinations == (
        TransferDestination("sales", "+14155550199", "New orders"),
        TransferDestination("billing", "+442079460958", ""),
    )
    assert spec.transfer_number == "+14155550142"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("destinations", "message"),
    [
        ([{"name": "sales", "number": "14155550199"}], "E.164"),
        ([{"name": "sales", "number": "+1900"}], "E.164"),
        ([{"name": "sales"}], "E.164"),
        ([{"number": "+14155550199"}], "needs a 'name'"),
        ([{"name": "a", "number": "+14155550199"}, {"name": "a", "number": "+14155550198"}],
         "declared twice"),
        ([{"name": "a", "number": "+14155550199", "to": "+19002223333"}], "unknown key(s) to"),
        ([{"name": "a", "number": "+14155550199", "description": 3}], "must be text"),
        (["+14155550199"], "must be a {name, number, description} object"),
        ({"sales": "+14155550199"}, "must be a list"),
    ],
)  # fmt: skip
def test_bad_destinations_are_a_field_error(api, destinations, message):
    response = api.post("/api/personas/", {**NEW, "transfer_destinations": destinations},
                        format="json")  # fmt: skip
    assert response.status_code == 400
    assert message in " ".join(response.json()["transfer_destinations"])
    assert not Persona.objects.filter(slug="support").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["hack_the_planet", "set_stage"])
def test_tools_come_from_the_registry(api, name):
    response = api.post("/api/personas/", {**NEW, "tools": [name]}, format="json")
    assert response.status_code == 400
    [error] = response.json()["tools"]
    assert f"unknown tool '{name}'" in error and "request_supervisor" in error


@pytest.mark.django_db
def test_the_admin_edits_the_destinations(admin_client, myra):
    page = admin_client.get(f"/admin/agents/persona/{myra.pk}/change/")
    assert page.status_code == 200 and b'name="transfer_destinations"' in page.content
