"""Call endpoints: list with filters, detail, start, incremental turns/events, hang-up, auth."""

import datetime as dt

import pytest
from django.utils import timezone

from calls import services
from calls.models import Call
from calls.status import CallStatus

MYRA_VARS = {"applicant_name": "Ann", "position": "SRE"}


def make_call(persona, to="+14155550100", **kw):
    return services.call_create(
        persona=persona, to=to, variables=kw.pop("variables", MYRA_VARS), **kw
    )


@pytest.mark.django_db
def test_requires_authentication(anon, myra):
    call = make_call(myra)
    for url in ["/api/calls/", f"/api/calls/{call.uuid}/", f"/api/calls/{call.uuid}/turns/"]:
        assert anon.get(url).status_code in (401, 403)
    assert anon.post(f"/api/calls/{call.uuid}/hangup/").status_code in (401, 403)
    assert anon.post("/api/calls/", {}, format="json").status_code in (401, 403)


@pytest.mark.django_db
def test_start_call_dials_through_the_carrier(api, myra, twilio_fake):
    body = {"persona": "myra-recruiting", "to": "+14155550100", "variables": MYRA_VARS}
    response = api.post("/api/calls/", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    call = Call.objects.get(uuid=data["id"])
    assert data["status"] == "queued" and call.twilio_sid.startswith("CA")
    sent = twilio_fake.requests_to("POST", "/Calls.json")[-1]
    assert sent.get("To") == "+14155550100"
    assert sent.get("From") == "+15005550006"
    assert sent.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert (
        sent.get("StatusCallback") == f"https://calls.example.com/twilio/status/?call={call.uuid}"
    )
    assert sent.get("TimeLimit") == "600" and sent.get("MachineDetection") == "Enable"
    # The stream and its token come from the answer webhook, once the callee answers.
    assert sent.get("Url") == f"https://calls.example.com/twilio/answer/?call={call.uuid}"
    assert sent.get("Method") == "POST" and not sent.get("Twiml") and not call.stream_nonce


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"persona": "nobody", "to": "+14155550100"}, "persona"),
        ({"persona": "myra-recruiting", "to": "4155550100", "variables": MYRA_VARS}, "to"),
        ({"persona": "myra-recruiting", "to": "+999", "variables": MYRA_VARS}, "to"),
        ({"persona": "myra-recruiting", "to": "+14155550100", "variables": {}}, "variables"),
        ({"persona": "myra-recruiting", "to": "+14155550100", "variables": "x"}, "variables"),
        ({"to": "+14155550100"}, "persona"),
    ],
)
def test_start_call_validation(api, myra, twilio_fake, body, field):
    response = api.post("/api/calls/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Call.objects.exists() and not twilio_fake.requests


@pytest.mark.django_db
def test_carrier_refusal_fails_the_call_with_a_clear_error(api, myra, twilio_fake):
    twilio_fake.fail_next(400, 21211, "The 'To' number +14155550100 is not a valid phone number.")
    body = {"persona": "myra-recruiting", "to": "+14155550100", "variables": MYRA_VARS}
    response = api.post("/api/calls/", body, format="json")
    assert response.status_code == 400
    assert "21211" in response.json()["to"][0]
    call = Call.objects.get(uuid=response.json()["call"])
    assert call.status == "failed" and "21211" in call.end_reason


@pytest.mark.django_db
def test_carrier_auth_failure_is_a_502(api, myra, twilio_fake, settings):
    from calls.telephony import client

    settings.TWILIO_AUTH_TOKEN = "wrong"
    client.reset()
    body = {"persona": "myra-recruiting", "to": "+14155550100", "variables": MYRA_VARS}
    response = api.post("/api/calls/", body, format="json")
    assert response.status_code == 502
    assert Call.objects.get().status == "failed"


@pytest.mark.django_db
def test_detail_turns_and_events_incremental(api, myra):
    call = make_call(myra)
    services.turn_append(call_id=call.pk, speaker="agent", text="Hello Ann")
    services.turn_append(call_id=call.pk, speaker="caller", text="Hi")
    assert api.get(f"/api/calls/{call.uuid}/").json()["persona"] == "myra-recruiting"
    turns = api.get(f"/api/calls/{call.uuid}/turns/").json()
    assert [t["text"] for t in turns] == ["Hello Ann", "Hi"]
    later = api.get(f"/api/calls/{call.uuid}/turns/?after=1").json()
    assert [t["seq"] for t in later] == [2]
    assert api.get(f"/api/calls/{call.uuid}/turns/?after=x").status_code == 400
    events = api.get(f"/api/calls/{call.uuid}/events/").json()
    assert events[0]["type"] == "status"
    assert api.get(f"/api/calls/{call.uuid}/events/?after={events[-1]['id']}").json() == []
    assert api.get("/api/calls/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert api.get("/api/calls/not-a-uuid/").status_code == 404


@pytest.mark.django_db
def test_hangup(api, myra, twilio_fake):
    started = api.post(
        "/api/calls/",
        {"persona": "myra-recruiting", "to": "+14155550100", "variables": MYRA_VARS},
        format="json",
    ).json()
    response = api.post(f"/api/calls/{started['id']}/hangup/")
    assert response.status_code == 202 and response.json()["status"] == "canceled"
    assert response.json()["end_reason"] == "hung up by operator"
    update = twilio_fake.requests_to("POST", f"/Calls/{started['twilio_sid']}.json")[-1]
    assert update.get("Status") == "canceled"
    again = api.post(f"/api/calls/{started['id']}/hangup/")
    assert again.status_code == 400 and "status" in again.json()


@pytest.mark.django_db
def test_filters(api, personas):
    myra, sarah = personas["myra-recruiting"], personas["sarah-prior-auth"]
    sarah_vars = {k: "x" for k in sarah.required_variables}
    a = make_call(myra, to="+14155550100")
    b = make_call(sarah, to="+16505550199", variables=sarah_vars)
    c = make_call(myra, to="+14155550111", direction="inbound")
    services.call_set_status(call_id=a.pk, status=CallStatus.IN_PROGRESS)
    services.call_set_status(call_id=a.pk, status=CallStatus.COMPLETED)
    services.turn_append(call_id=a.pk, speaker="caller", text="I love kubernetes clusters")
    services.call_update_outcome(call_id=b.pk, extracted_data={"reference_number": "REF-7788"})
    Call.objects.filter(pk=c.pk).update(created_at=timezone.now() - dt.timedelta(days=10))

    def ids(query):
        response = api.get(f"/api/calls/?{query}")
        assert response.status_code == 200, response.json()
        return {r["id"] for r in response.json()["results"]}

    assert ids("") == {str(a.uuid), str(b.uuid), str(c.uuid)}
    assert ids("status=completed") == {str(a.uuid)}
    assert ids("status=completed&status=queued") == {str(a.uuid), str(b.uuid), str(c.uuid)}
    assert ids("persona=sarah-prior-auth") == {str(b.uuid)}
    assert ids("direction=inbound") == {str(c.uuid)}
    assert ids("number=650555") == {str(b.uuid)}
    assert ids("q=KUBERNETES") == {str(a.uuid)}
    assert ids("q=REF-7788") == {str(b.uuid)}
    since = (timezone.now() - dt.timedelta(days=1)).date().isoformat()
    assert ids(f"date_from={since}") == {str(a.uuid), str(b.uuid)}
    assert api.get("/api/calls/?status=bogus").status_code == 400
    page = api.get("/api/calls/?page_size=1").json()
    assert page["count"] == 3


@pytest.mark.django_db
def test_stats_over_filtered_calls(api, myra):
    a, b = make_call(myra), make_call(myra, to="+14155550111")
    services.call_set_status(call_id=a.pk, status=CallStatus.IN_PROGRESS)
    services.call_set_status(call_id=a.pk, status=CallStatus.COMPLETED, duration=30)
    for ms in (400, 600, 900):
        services.turn_append(
            call_id=a.pk, speaker="agent", text="x", latency={"voice_to_voice_ms": ms}
        )
    services.turn_append(call_id=a.pk, speaker="caller", text="x", latency={"voice_to_voice_ms": 1})
    missed = make_call(myra, to="+14155550112")
    services.call_set_status(call_id=missed.pk, status=CallStatus.NO_ANSWER)
    stats = api.get("/api/calls/stats/").json()
    # The queued call is not decided yet: one answered of the two that are.
    assert (stats["calls"], stats["decided"], stats["answered"]) == (3, 2, 1)
    assert stats["answered_rate"] == 0.5
    assert stats["avg_duration"] == 30 and stats["median_voice_to_voice_ms"] == 600
    assert stats["turns_measured"] == 3  # agent turns only
    queued = api.get("/api/calls/stats/?status=queued").json()
    assert (queued["calls"], queued["decided"], queued["answered_rate"]) == (1, 0, None)
    assert b.status == "queued"


@pytest.mark.django_db
def test_page_size_is_bounded(api, myra):
    for i in range(3):
        make_call(myra, to=f"+1415555010{i}")
    page = api.get("/api/calls/?page_size=2").json()
    assert len(page["results"]) == 2 and page["next"]
    assert len(api.get("/api/calls/?page_size=9999").json()["results"]) == 3


@pytest.mark.django_db
def test_recording_accepts_wav_and_reports_missing_as_json(api, myra):
    call = make_call(myra)
    missing = api.get(f"/api/calls/{call.uuid}/recording/", HTTP_ACCEPT="audio/wav")
    assert missing.status_code == 404
