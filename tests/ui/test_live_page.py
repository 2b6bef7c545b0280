"""Live call / review: the transcript grows between runs, controls reach the API, outcome shows."""

from __future__ import annotations

import io
import wave

import pytest

from calls import services
from calls.models import CallEvent
from calls.status import CallStatus
from tests.ui.helpers import all_text

pytestmark = pytest.mark.console

LIVE = "views/live.py"


def speakers(at) -> list[str]:
    return [m.name for m in at.chat_message]


def submit(at, form: str, field: str, value: str):
    at.text_input(key=f"control_{form}_{field}").set_value(value)
    label = {"transfer": "Transfer", "digits": "Press", "say": "Say"}[form]
    return next(b for b in at.button if b.label == label).click().run()


def test_transcript_grows_with_new_turns_and_events(console, make_call):
    call = make_call()
    services.call_set_status(call_id=call.pk, status=CallStatus.IN_PROGRESS)
    services.turn_append(call_id=call.pk, speaker="agent", text="Hi, this is Myra.")
    services.turn_append(call_id=call.pk, speaker="caller", text="Hello?")

    at = console(LIVE, call=str(call.uuid))
    assert not at.exception, at.exception
    assert speakers(at) == ["agent", "caller"]
    assert at.title[0].value == "Live call · +14155550100"

    services.turn_append(
        call_id=call.pk, speaker="agent", text="Are you still interested in the SRE role?",
        latency={"voice_to_voice_ms": 640, "llm_ms": 300},
    )  # fmt: skip
    services.event_record(call_id=call.pk, type="dtmf", payload={"digits": "5"})
    services.event_record(
        call_id=call.pk, type="tool_call", payload={"name": "end_call", "arguments": {}}
    )
    services.turn_append(
        call_id=call.pk, speaker="agent", text="Great, let me find a time that works for you.",
        heard_text="Great, let me", interrupted=True, latency={"voice_to_voice_ms": 900},
    )  # fmt: skip
    services.turn_append(call_id=call.pk, speaker="supervisor", text="Offer Thursday.")
    services.call_update_outcome(call_id=call.pk, current_stage="scheduling")
    at.run()

    assert not at.exception, at.exception
    assert speakers(at) == ["agent", "caller", "agent", "agent", "supervisor"]
    feed = at.session_state[f"feed:{call.uuid}"]
    assert feed.last_seq == 5 and len(feed.turns) == 5  # appended, not refetched
    text = all_text(at)
    assert "Great, let me" in text
    assert "Interrupted. Full text: Great, let me find a time that works for you." in text
    assert "DTMF `5`" in text and "Tool call `end_call()`" in text
    assert "Stage → **scheduling**" in text and "Stage=scheduling" in text
    assert "Status=in-progress" in text
    chart = at.get("vega_lite_chart")
    assert len(chart) == 1


def test_hang_up_ends_the_call_and_shows_the_review(console, make_call):
    call = make_call()
    at = console(LIVE, call=str(call.uuid))
    at.button(key="control_hangup").click().run()

    assert not at.exception, at.exception
    call.refresh_from_db()
    assert call.status == "canceled"
    text = all_text(at)
    assert "Hung up: the call is canceled." in text
    assert "Outcome=canceled" in text and "hung up by operator" in text
    assert not any(b.key == "control_hangup" for b in at.button)


def test_controls_on_a_call_not_in_progress_show_the_api_error(console, make_call):
    call = make_call()
    at = console(LIVE, call=str(call.uuid))
    for form, field, value in [
        ("transfer", "to", "+14155550123"),
        ("digits", "digits", "12#"),
        ("say", "text", "Hello there"),
    ]:
        at = submit(at, form, field, value)
        assert not at.exception
        assert [e.value for e in at.error] == ["the call is queued, not in progress yet"]
    assert not CallEvent.objects.filter(type__in=["control", "override"]).exists()


def test_controls_reach_an_in_progress_call(console, make_call):
    call = make_call()
    services.call_set_status(call_id=call.pk, status=CallStatus.IN_PROGRESS)
    at = console(LIVE, call=str(call.uuid))

    at = submit(at, "transfer", "to", "+1 415 555 0123")
    assert at.success[0].value == "Transfer: accepted (202)."
    at = submit(at, "digits", "digits", "12w#")
    assert at.success[0].value == "Press: accepted (202)."
    at = submit(at, "say", "text", "One moment please.")
    assert at.success[0].value == "Say: accepted (202)."
    at = submit(at, "digits", "digits", "abc")
    assert "use 0-9, * and #" in at.error[0].value

    payloads = [(e.type, e.payload) for e in CallEvent.objects.filter(call=call).order_by("id")]
    assert ("control", {"action": "transfer", "to": "+14155550123"}) in payloads
    assert ("control", {"action": "press_digits", "digits": "12w#"}) in payloads
    assert ("override", {"action": "say", "text": "One moment please."}) in payloads
    at.run()  # the new events show up in the live view
    assert "Operator said: “One moment please.”" in all_text(at)


def test_ended_call_shows_outcome_recording_summary_and_data(
    console, make_call, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "recordings").mkdir()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0\0\0" * 800)
    (tmp_path / "recordings" / "c.wav").write_bytes(buffer.getvalue())
    call = make_call()
    services.call_set_status(call_id=call.pk, status=CallStatus.IN_PROGRESS)
    services.turn_append(call_id=call.pk, speaker="agent", text="Bye now.")
    services.call_set_status(
        call_id=call.pk, status=CallStatus.COMPLETED, duration=75, reason="agent ended the call"
    )
    services.call_update_outcome(
        call_id=call.pk,
        recording="recordings/c.wav",
        summary="Ann is interested; interview Thursday 10am.",
        extracted_data={"interested": True, "slot": "Thursday 10am"},
    )

    at = console(LIVE, call=str(call.uuid))

    assert not at.exception, at.exception
    text = all_text(at)
    assert at.title[0].value == "Call · +14155550100"
    assert "Outcome=completed" in text and "Duration=1:15" in text
    assert "agent ended the call" in text
    assert "Ann is interested; interview Thursday 10am." in text
    assert any("Thursday 10am" in str(j.value) for j in at.json)
    assert len(at.get("audio")) == 1
    assert at.session_state[f"recording:{call.uuid}"] == buffer.getvalue()
    assert speakers(at) == ["agent"]


def test_unknown_or_missing_call_offers_a_picker(console, make_call):
    call = make_call()
    at = console(LIVE, call="00000000-0000-0000-0000-000000000000")
    assert not at.exception
    assert "No call 00000000-0000-0000-0000-000000000000" in at.error[0].value

    at.selectbox(key="live_pick").set_value(str(call.uuid))
    at.button(key="live_open").click().run()
    assert not at.exception
    assert at.title[0].value == "Live call · +14155550100"
