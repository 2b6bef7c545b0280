"""Calls (home): KPIs, live calls, and the new-call form against a live API server."""

from __future__ import annotations

import pytest

from calls import services
from calls.models import Call
from calls.status import CallStatus
from tests.ui.helpers import all_text

pytestmark = pytest.mark.console

NEW_CALL = {"new_call_var_myra-recruiting_applicant_name": "Ann",
            "new_call_var_myra-recruiting_position": "SRE"}  # fmt: skip


def fill_new_call(at, number: str, variables: dict[str, str] = NEW_CALL):
    at.selectbox(key="new_call_persona").set_value("myra-recruiting").run()
    at.text_input(key="new_call_to").set_value(number)
    for key, value in variables.items():
        at.text_input(key=key).set_value(value)
    return next(b for b in at.button if b.label == "Start call").click().run()


def test_home_shows_kpis_and_live_calls(console, make_call):
    live = make_call(to="+14155550101")
    services.call_set_status(call_id=live.pk, status=CallStatus.IN_PROGRESS)
    services.call_update_outcome(call_id=live.pk, current_stage="interest")
    for ms in (400, 800, 600):
        services.turn_append(
            call_id=live.pk, speaker="agent", text="Hi", latency={"voice_to_voice_ms": ms}
        )
    services.turn_append(call_id=live.pk, speaker="caller", text="Hello")  # no latency
    services.turn_append(call_id=live.pk, speaker="agent", text="x", latency={"llm_ms": "n/a"})
    done = make_call(to="+14155550102")
    services.call_set_status(call_id=done.pk, status=CallStatus.IN_PROGRESS)
    services.call_set_status(call_id=done.pk, status=CallStatus.COMPLETED, duration=90)
    missed = make_call(to="+14155550103")
    services.call_set_status(call_id=missed.pk, status=CallStatus.NO_ANSWER)
    make_call(to="+14155550104")  # queued

    at = console()

    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {
        "Calls today": "4",
        "Answered": "67%",  # 2 of the 3 calls past ringing
        "Average duration": "1:30",
        "Median voice-to-voice": "600 ms",
    }
    text = all_text(at)
    assert "Live calls (2)" in text
    assert "+14155550101" in text and "+14155550104" in text
    assert "+14155550102" not in text and "interest" in text
    assert len(at.page_link) == 2


def test_new_call_number_is_checked_before_sending(console, twilio_fake):
    at = console()
    for bad in ("4155550100", "+1415555", "+1 not a number"):
        fill_new_call(at, bad)
        assert not at.exception
        assert at.error and ("E.164" in at.error[0].value or "not" in at.error[0].value)
    assert not Call.objects.exists() and not twilio_fake.requests


def test_new_call_requires_the_persona_variables(console, twilio_fake):
    at = fill_new_call(console(), "+14155550100", variables={})
    assert [e.value for e in at.error] == ["applicant_name is required.", "position is required."]
    assert not Call.objects.exists()


def test_new_call_starts_the_call_and_opens_its_live_view(console, twilio_fake):
    at = fill_new_call(console(), "+1 415 555 0100")

    assert not at.exception, at.exception
    call = Call.objects.get()
    assert str(call.to_number) == "+14155550100" and call.variables["applicant_name"] == "Ann"
    assert twilio_fake.requests_to("POST", "/Calls.json")
    assert at.session_state["call_id"] == str(call.uuid)
    assert at.query_params.get("call") == str(call.uuid)
    assert at.title[0].value == "Live call · +14155550100"
    assert "Calling +14155550100 as Myra." in all_text(at)


def test_new_call_shows_server_errors_by_field(console, twilio_fake):
    twilio_fake.fail_next(400, 21211, "The 'To' number +14155550100 is not a valid phone number.")
    at = fill_new_call(console(), "+14155550100")

    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("carrier error 21211:")  # under the number
    assert at.title[0].value == "Calls"  # stayed on the form
    failed = Call.objects.get()
    assert failed.status == "failed"
    assert [link.value for link in at.page_link][-1] == "The failed call"


def test_server_down_and_bad_token_are_explained(console, monkeypatch):
    monkeypatch.setenv("CALLCENTER_API_TOKEN", "not-a-token")
    at = console()
    assert not at.exception and "Not authorised" in at.error[0].value

    monkeypatch.setenv("CALLCENTER_API_URL", "http://127.0.0.1:9")
    at.run()
    assert not at.exception and "Server unreachable" in at.error[0].value
