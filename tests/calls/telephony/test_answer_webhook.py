"""The answer webhook: a stream token is issued when the callee answers, once per stream."""

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from calls import services
from calls.models import Call

TOKEN = "hook-secret"
BASE = "https://calls.example.com"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PUBLIC_BASE_URL = BASE


@pytest.fixture
def call(myra):
    call = services.call_create(
        persona=myra, to="+14155550100", variables={"applicant_name": "Ann", "position": "SRE"}
    )
    services.call_update_outcome(call_id=call.pk, twilio_sid="CA" + "1" * 32)
    return call


def answer(client: Client, call: Call, *, sid: str = "CA" + "1" * 32, token: str = TOKEN):
    path = f"/twilio/answer/?call={call.uuid}"
    params = {"CallSid": sid, "CallStatus": "in-progress", "To": "+14155550100"}
    signature = RequestValidator(token).compute_signature(BASE + path, params)
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)


def test_the_answer_issues_the_stream_token(client, call):
    assert not Call.objects.get(pk=call.pk).stream_nonce  # nothing issued while queued or ringing
    response = answer(client, call)
    body = response.content.decode()
    assert response.status_code == 200 and "<Connect><Stream" in body
    assert '<Parameter name="token"' in body and Call.objects.get(pk=call.pk).stream_nonce


def test_a_replayed_answer_for_a_streaming_call_gets_no_token(client, call):
    answer(client, call)
    granted = Call.objects.get(pk=call.pk)
    services.stream_claim(
        call_uuid=str(call.uuid), nonce=granted.stream_nonce, stream_sid="MZ" + "a" * 32
    )
    replay = answer(client, call)
    body = replay.content.decode()
    assert replay.status_code == 200 and "<Hangup" in body and "token" not in body
    assert not Call.objects.get(pk=call.pk).stream_nonce  # no new grant


def test_a_replayed_inbound_voice_webhook_for_a_streaming_call_gets_no_token(client, personas):
    params = {"CallSid": "CA9", "From": "+14155550100", "To": "+14155550999"}
    signature = RequestValidator(TOKEN).compute_signature(BASE + "/twilio/voice/", params)
    first = client.post("/twilio/voice/", params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert "token" in first.content.decode()
    call = Call.objects.get(twilio_sid="CA9")
    services.stream_claim(call_uuid=str(call.uuid), nonce=call.stream_nonce, stream_sid="MZ1")
    replay = client.post("/twilio/voice/", params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert "token" not in replay.content.decode() and "<Hangup" in replay.content.decode()


def test_an_answer_for_another_call_sid_or_unsigned_is_refused(client, call):
    assert "token" not in answer(client, call, sid="CA" + "2" * 32).content.decode()
    assert answer(client, call, token="wrong").status_code == 403
    assert not Call.objects.get(pk=call.pk).stream_nonce
