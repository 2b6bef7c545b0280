"""Twilio webhooks: signature checks, inbound calls, idempotent and order-safe status callbacks."""

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from calls import services
from calls.models import Call, CallEvent

TOKEN = "hook-secret"
BASE = "https://calls.example.com"


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PUBLIC_BASE_URL = BASE
    settings.INBOUND_PERSONAS = {"+14155550999": "sarah-prior-auth"}
    settings.INBOUND_DEFAULT_PERSONA = "myra-recruiting"


def signed_post(client: Client, path: str, params: dict, *, token: str = TOKEN, url: str = ""):
    signature = RequestValidator(token).compute_signature(url or BASE + path, params)
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)


@pytest.mark.django_db
def test_unsigned_and_forged_webhooks_are_rejected(client, personas):
    params = {"CallSid": "CA1", "From": "+14155550100", "To": "+14155550999"}
    assert client.post("/twilio/voice/", params).status_code == 403
    assert signed_post(client, "/twilio/voice/", params, token="wrong").status_code == 403
    tampered = RequestValidator(TOKEN).compute_signature(BASE + "/twilio/voice/", params)
    response = client.post(
        "/twilio/voice/", {**params, "To": "+19995550000"}, HTTP_X_TWILIO_SIGNATURE=tampered
    )
    assert response.status_code == 403
    # signed for another host (not our public URL)
    assert (
        signed_post(
            client, "/twilio/voice/", params, url="https://evil.example/twilio/voice/"
        ).status_code
        == 403
    )
    assert not Call.objects.exists()


@pytest.mark.django_db
def test_inbound_call_is_answered_with_a_media_stream(client, personas):
    params = {
        "CallSid": "CA1",
        "From": "+14155550100",
        "To": "+14155550999",
        "CallStatus": "ringing",
    }
    response = signed_post(client, "/twilio/voice/", params)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    body = response.content.decode()
    call = Call.objects.get(twilio_sid="CA1")
    assert call.direction == "inbound" and call.persona.slug == "sarah-prior-auth"
    assert str(call.from_number) == "+14155550100" and call.status == "ringing"
    assert '<Connect><Stream url="wss://calls.example.com/ws/twilio/media/">' in body
    assert f'value="{call.uuid}"' in body
    # Twilio retrying the same webhook answers the same call, not a second one
    assert signed_post(client, "/twilio/voice/", params).status_code == 200
    assert Call.objects.count() == 1


@pytest.mark.django_db
def test_inbound_to_an_unmapped_number_uses_the_default_persona(client, personas):
    params = {"CallSid": "CA2", "From": "+14155550100", "To": "+14155550000"}
    signed_post(client, "/twilio/voice/", params)
    assert Call.objects.get(twilio_sid="CA2").persona.slug == "myra-recruiting"


@pytest.mark.django_db
def test_status_callbacks_are_idempotent_and_order_safe(client, myra):
    call = services.call_create(
        persona=myra, to="+14155550100", variables={"applicant_name": "A", "position": "B"}
    )
    path = f"/twilio/status/?call={call.uuid}"

    def status(value, **extra):
        params = {"CallSid": "CA9", "CallStatus": value, **extra}
        return signed_post(client, path, params, url=BASE + path)

    assert status("ringing").status_code == 204
    assert status("in-progress", AnsweredBy="human").status_code == 204
    assert status("completed", CallDuration="37").status_code == 204
    assert status("completed", CallDuration="37").status_code == 204  # repeated
    assert status("ringing").status_code == 204  # late
    call.refresh_from_db()
    assert call.status == "completed" and call.duration == 37 and call.answered_by == "human"
    assert call.twilio_sid == "CA9"
    statuses = [e.payload["status"] for e in CallEvent.objects.filter(call=call, type="status")]
    assert statuses == ["queued", "ringing", "in-progress", "completed"]


@pytest.mark.django_db
def test_status_callback_for_unknown_call_or_bad_status_is_ignored(client, myra):
    path = "/twilio/status/?call=not-a-uuid"
    assert signed_post(client, path, {"CallStatus": "ringing"}, url=BASE + path).status_code == 204
    path = "/twilio/status/"
    assert signed_post(client, path, {"CallSid": "CAx", "CallStatus": "weird"}).status_code == 204
