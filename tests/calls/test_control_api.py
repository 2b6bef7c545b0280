"""Live control has one convention: every control endpoint answers 202 with the call's own body
(as GET /api/calls/{id}/ has it), documented so in the schema; refusals are 400 with the field."""

from __future__ import annotations

import pytest

from calls import services
from calls.models import Call, CallEvent

MYRA_VARS = {"applicant_name": "Ann", "position": "Engineer"}
CONTROLS = {
    "transfer": {"to": "+14155550142"},
    "digits": {"digits": "12#"},
    "say": {"text": "This is your supervisor."},
    "hangup": None,
}


@pytest.fixture
def live_call(api, myra, twilio_fake):
    started = api.post(
        "/api/calls/", {"persona": "myra-recruiting", "to": "+14155550100", "variables": MYRA_VARS},
        format="json",
    ).json()  # fmt: skip
    services.call_set_status(call_id=Call.objects.get(uuid=started["id"]).pk, status="in-progress")
    return started


@pytest.mark.django_db
def test_every_control_answers_202_with_the_call(api, live_call):
    url = f"/api/calls/{live_call['id']}"
    detail_keys = set(api.get(f"{url}/").json())
    for action, body in CONTROLS.items():  # hangup last: it ends the call
        response = api.post(f"{url}/{action}/", body, format="json")
        assert response.status_code == 202, (action, response.json())
        assert set(response.json()) == detail_keys, action
        assert response.json()["id"] == live_call["id"]
    assert response.json()["status"] == "completed"
    actions = [e.payload.get("action") for e in CallEvent.objects.filter(type__in=["control",
               "override"])]  # fmt: skip
    assert actions == ["transfer", "press_digits", "say", "hangup"]


@pytest.mark.django_db
def test_refusals_are_400_with_the_field(api, live_call):
    url = f"/api/calls/{live_call['id']}"
    assert "digits" in api.post(f"{url}/digits/", {"digits": "x"}, format="json").json()
    assert api.post(f"{url}/hangup/").status_code == 202
    for action, body in CONTROLS.items():
        response = api.post(f"{url}/{action}/", body, format="json")
        assert response.status_code == 400 and "status" in response.json(), action


@pytest.mark.django_db
def test_the_schema_documents_the_convention(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for action in CONTROLS:
        post = schema["paths"][f"/api/calls/{{id}}/{action}/"]["post"]
        assert list(post["responses"]) == ["202"], action
        content = post["responses"]["202"]["content"]["application/json"]["schema"]
        assert content["$ref"].endswith("/Call"), action
