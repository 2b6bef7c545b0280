"""Request rates on the actions that cost money: per user and for everyone, a 429 with
Retry-After, and no carrier request for a refused call."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from calls import services
from calls.models import Call, CallEvent
from calls.roles import grant

MYRA_VARS = {"applicant_name": "Ann", "position": "SRE"}
LOCAL_LLM = {"BACKEND": "calls.providers.llm.scripted.ScriptedLLM", "OPTIONS": {}}


@pytest.fixture
def rates(settings):
    """Set some rates; every other scope unlimited."""

    def set_rates(**rates: str) -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}

    return set_rates


def operator_client(django_user_model, name: str) -> APIClient:
    user = django_user_model.objects.create_user(name, password="pw-123456")
    grant(user, "operator")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def place(client: APIClient, i: int):
    body = {"persona": "myra-recruiting", "to": f"+1415555{100 + i:04d}", "variables": MYRA_VARS}
    return client.post("/api/calls/", body, format="json")


@pytest.mark.django_db
def test_the_eleventh_call_in_the_configured_minute_is_a_429(api, myra, twilio_fake, rates):
    rates(calls="10/min")
    for i in range(10):
        assert place(api, i).status_code == 201
    refused = place(api, 10)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "throttled" in refused.json()["detail"].lower()
    assert Call.objects.count() == 10
    assert len(twilio_fake.requests_to("POST", "/Calls.json")) == 10


@pytest.mark.django_db
def test_the_global_rate_counts_everyone(django_user_model, myra, twilio_fake, rates):
    rates(calls="5/min", calls_global="3/min")
    ann, bob = (operator_client(django_user_model, n) for n in ("ann", "bob"))
    assert [place(ann, 0).status_code, place(ann, 1).status_code] == [201, 201]
    assert place(bob, 2).status_code == 201
    refused = place(bob, 3)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert len(twilio_fake.requests_to("POST", "/Calls.json")) == 3


@pytest.mark.django_db
def test_one_user_over_their_rate_does_not_use_up_everyones(
    django_user_model, myra, twilio_fake, rates
):
    rates(calls="2/min", calls_global="4/min")
    ann, bob = (operator_client(django_user_model, n) for n in ("ann", "bob"))
    assert [place(ann, i).status_code for i in range(6)] == [201, 201, 429, 429, 429, 429]
    assert [place(bob, i).status_code for i in range(6, 8)] == [201, 201]


@pytest.mark.django_db
def test_control_actions_have_their_own_rate(api, myra, twilio_fake, rates):
    rates(control="2/min")
    call = services.call_create(persona=myra, to="+14155550100", variables=MYRA_VARS)
    services.call_set_status(call_id=call.pk, status="in-progress")
    url = f"/api/calls/{call.uuid}/say/"
    assert [api.post(url, {"text": "hi"}, format="json").status_code for _ in range(2)] == [202] * 2
    assert api.post(url, {"text": "hi"}, format="json").status_code == 429
    assert CallEvent.objects.filter(call=call, type="override").count() == 2
    assert api.post(f"/api/calls/{call.uuid}/hangup/").status_code == 429
    assert not twilio_fake.requests
    assert place(api, 0).status_code == 201  # placing calls is another scope


@pytest.mark.django_db
def test_the_playground_has_its_own_rate(api, myra, rates, settings):
    settings.PROVIDERS = {**settings.PROVIDERS, "llm": LOCAL_LLM}
    rates(playground="1/min")
    url = "/api/personas/myra-recruiting/chat/"
    body = {"messages": [{"role": "user", "content": "Hello?"}]}
    assert api.post(url, body, format="json").status_code == 200
    assert api.post(url, body, format="json").status_code == 429
    assert api.get("/api/personas/").status_code == 200  # reads are not limited


@pytest.mark.django_db
def test_an_empty_rate_is_no_limit(api, myra, twilio_fake, rates, settings):
    settings.MAX_CALLS_PER_DESTINATION_PER_DAY = 0
    rates(calls="", calls_global="")
    assert all(place(api, i).status_code == 201 for i in range(12))
