"""The dialling policy at every gate: the API's new call, an operator's transfer, the model's
transfer on a live call and the carrier actions themselves; a refused number never reaches Twilio."""

import asyncio
import io
import json

import pytest
from channels.db import database_sync_to_async
from django.core.management import CommandError, call_command

from calls import services
from calls.models import Call, CallEvent
from calls.sandbox.emulators.base import silence, speech_like
from calls.telephony import policy
from calls.telephony.actions import TwilioCallActions
from tests.support.stream import SID, collect_until_mark, media_msgs, open_stream
from tests.support.wait import wait_until_db as wait_for

MYRA_VARS = {"applicant_name": "Ann", "position": "SRE"}
db = database_sync_to_async


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        ("+19002223333", "premium_rate"),
        ("+2694600000", "country"),
        ("+881612345678", "satellite"),
        ("+870772001799", "satellite"),
        ("+15005550006", "personal_number"),
        ("+34901123456", "shared_cost"),
        ("+445512345678", "uan"),
        ("+449012345678", "premium_rate"),
        ("+18765550100", "country"),  # Jamaica: +1, but not the US or Canada
        ("+442071838750", "country"),
        ("+1555", "invalid"),
    ],
)
def test_refused_numbers_name_their_rule(number, rule):
    found = policy.refusal(number)
    assert found is not None and found.rule == rule, found
    with pytest.raises(policy.DialRefused) as refused:
        policy.check(number)
    assert f"({rule})" in str(refused.value)
    assert refused.value.message_dict == {"to": [str(found)]}


@pytest.mark.parametrize("number", ["+14155550100", "+16135550123", "+18005550100"])
def test_us_and_canadian_numbers_are_allowed_by_default(number):
    assert policy.refusal(number) is None


def test_allowed_countries_and_deny_list_come_from_settings(settings):
    settings.DIAL_ALLOWED_COUNTRIES = ["GB"]
    assert policy.refusal("+442071838750") is None
    assert policy.refusal("+14155550100").rule == "country"
    settings.DIAL_ALLOWED_COUNTRIES = ["US"]
    settings.DIAL_DENY_LIST = ["+1 (415) 555-01", "16505550199"]
    assert policy.refusal("+14155550123").rule == "deny_list"
    assert policy.refusal("+16505550199").rule == "deny_list"
    assert policy.refusal("+16505550198") is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("to", "rule"),
    [("+2694600000", "country"), ("+19002223333", "premium_rate"), ("+881612345678", "satellite")],
)
def test_api_refuses_to_place_a_call_the_policy_forbids(api, myra, twilio_fake, to, rule):
    body = {"persona": "myra-recruiting", "to": to, "variables": MYRA_VARS}
    response = api.post("/api/calls/", body, format="json")
    assert response.status_code == 400, response.json()
    [message] = response.json()["to"]
    assert f"dialling policy ({rule})" in message
    assert not Call.objects.exists()
    assert not twilio_fake.requests


@pytest.mark.django_db
def test_deny_list_refuses_an_otherwise_allowed_call(api, myra, twilio_fake, settings):
    settings.DIAL_DENY_LIST = ["+1415555"]
    body = {"persona": "myra-recruiting", "to": "+14155550100", "variables": MYRA_VARS}
    response = api.post("/api/calls/", body, format="json")
    assert response.status_code == 400
    assert "(deny_list)" in response.json()["to"][0]
    assert not twilio_fake.requests


@pytest.mark.django_db
def test_operator_transfer_to_a_refused_number_is_a_400(api, myra, twilio_fake):
    call = services.call_create(persona=myra, to="+14155550100", variables=MYRA_VARS)
    services.call_set_status(call_id=call.pk, status="in-progress")
    response = api.post(f"/api/calls/{call.uuid}/transfer/", {"to": "+19002223333"}, format="json")
    assert response.status_code == 400
    assert "(premium_rate)" in response.json()["to"][0]
    assert not CallEvent.objects.filter(call=call, type="control").exists()
    assert not twilio_fake.requests


def test_carrier_create_call_checks_the_policy_itself(twilio_fake):
    from calls.telephony import carrier

    with pytest.raises(policy.DialRefused):
        carrier.create_call(call_uuid="x", to="+2694600000", from_="+15005550006")
    assert not twilio_fake.requests


async def test_carrier_transfer_action_refuses_before_any_request(twilio_fake):
    actions = TwilioCallActions(call_id=1, twilio_sid="CA" + "1" * 32)
    with pytest.raises(policy.DialRefused, match="premium_rate"):
        await actions.transfer("+19002223333")
    assert not twilio_fake.requests


# --- the model's transfer on a live call, through the media socket -----------------------------


@pytest.fixture
def premium_transfer_call(myra, twilio_fake):
    """A live call whose persona's own transfer destination is a premium-rate number."""
    myra.transfer_number = "+19002223333"
    myra.save()
    call = services.call_create(
        persona=myra, to="+14155550100", variables=MYRA_VARS, welcome_message="Hi Ann."
    )
    services.call_update_outcome(call_id=call.pk, twilio_sid="CA" + "2" * 32)
    return Call.objects.get(pk=call.pk)


async def echo(ws, mark: str) -> None:
    await ws.send_json_to({"event": "mark", "streamSid": SID, "mark": {"name": mark}})


async def speak(ws) -> None:
    for msg in media_msgs(speech_like(700) + silence(700)):
        await ws.send_json_to(msg)


def tool_results(request: dict) -> list[dict]:
    return [json.loads(m["content"]) for m in request["messages"] if m["role"] == "tool"]


@pytest.mark.django_db(transaction=True)
async def test_model_transfer_to_a_premium_number_is_refused(
    premium_transfer_call, hosted_fakes, twilio_fake
):
    call = premium_transfer_call
    hosted_fakes.deepgram.script(["Put me through to a person.", "Hello?"])
    hosted_fakes.openai.script(
        ["Let me transfer you.", {"name": "transfer_call", "arguments": {}}],
        "I am sorry, I cannot transfer you.",
    )
    ws = await open_stream(call)
    _, mark = await collect_until_mark(ws)
    await echo(ws, mark)
    await wait_for(lambda: Call.objects.get(pk=call.pk).status == "in-progress")
    await speak(ws)
    _, mark = await collect_until_mark(ws, limit=10)
    await echo(ws, mark)  # the words before the transfer are heard: the session acts now
    await wait_for(
        lambda: CallEvent.objects.filter(call=call, payload__name="transfer_call").exists()
    )
    await asyncio.sleep(0.3)
    await speak(ws)  # the next turn carries the transfer's result to the model
    await collect_until_mark(ws, limit=10)
    [result] = tool_results(hosted_fakes.openai.requests[-1])
    assert result["ok"] is False and "(premium_rate)" in result["error"], result
    assert not twilio_fake.requests  # no update of the call, no <Dial>
    transferred = CallEvent.objects.filter(call=call, payload__action="transferred")
    assert not await db(transferred.exists)()
    await ws.disconnect()


@pytest.mark.django_db
def test_the_call_command_refuses_a_number_the_policy_forbids(myra, twilio_fake):
    with pytest.raises(CommandError, match=r"dialling policy \(premium_rate\)"):
        call_command("call", "myra-recruiting", "+19002223333", "--var", "applicant_name=Ann",
                     "--var", "position=SRE", stdout=io.StringIO())  # fmt: skip
    assert not Call.objects.exists() and not twilio_fake.requests
