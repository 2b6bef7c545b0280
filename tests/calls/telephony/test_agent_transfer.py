"""The agent's transfer_call at the wire (Media Streams consumer, OpenAI and Twilio emulators): the
model picks only among the persona's named destinations, never a number, and a transfer it makes
is recorded like an operator's (a `transferred` event, an end reason naming the number)."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from agents.models import Persona
from calls import services
from calls.models import Call, CallEvent
from calls.sandbox.emulators.base import Faults, silence, speech_like
from tests.support.stream import SID, closed, media_msgs, open_stream, register_carrier_call
from tests.support.wait import wait_until_db as wait_for

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async
CALL_SID = "CA" + "1" * 32
SALES = "+14155550199"


@pytest.fixture
def call(myra, twilio_fake):
    Persona.objects.filter(pk=myra.pk).update(
        transfer_destinations=[{"name": "sales", "number": SALES, "description": "New orders"}]
    )
    created = services.call_create(
        persona=Persona.objects.get(pk=myra.pk), to="+14155550100",
        variables={"applicant_name": "Ann", "position": "SRE"}, welcome_message="Hi Ann.",
    )  # fmt: skip
    services.call_update_outcome(call_id=created.pk, twilio_sid=CALL_SID)
    register_carrier_call(twilio_fake, CALL_SID)
    return Call.objects.get(pk=created.pk)


async def listen(ws, quiet: float = 0.5) -> None:
    """Take the agent's audio until the line goes quiet, echoing each mark as Twilio does."""
    await ws.receive_nothing(timeout=5, interval=0.01)  # returns as soon as one arrives
    while not await ws.receive_nothing(timeout=quiet, interval=0.01):
        msg = await ws.receive_json_from()
        if msg["event"] == "mark":
            await ws.send_json_to({"event": "mark", "streamSid": SID, "mark": msg["mark"]})


async def speak(ws) -> None:
    for msg in media_msgs(speech_like(600) + silence(600)):
        await ws.send_json_to(msg)


def carrier_updates(twilio_fake) -> list:
    return twilio_fake.requests_to("POST", f"/Calls/{CALL_SID}.json")


@pytest.mark.parametrize(
    "arguments", [{"to": "+19002223333"}, {"destination": "+19002223333"}, {"destination": "x"}]
)
async def test_the_model_cannot_choose_a_transfer_number(call, hosted_fakes, twilio_fake,
                                                         arguments):  # fmt: skip
    hosted_fakes.deepgram.script(["Put me through to this number please.", "Hello?"])
    hosted_fakes.openai.script(
        {"text": "Transferring you now.",
         "tool_calls": [{"name": "transfer_call", "arguments": arguments}]},
        "Sorry, I can't do that.",
    )  # fmt: skip
    ws = await open_stream(call)
    await listen(ws)  # the greeting
    await speak(ws)
    await listen(ws)
    await wait_for(lambda: CallEvent.objects.filter(call=call, type="tool_call").exists())
    await speak(ws)  # the next request carries the transfer's result
    await listen(ws)

    offered = hosted_fakes.openai.requests[0]["tools"]
    [transfer] = [t["function"] for t in offered if t["function"]["name"] == "transfer_call"]
    assert transfer["parameters"]["properties"] == {
        "destination": {"type": "string", "enum": ["sales"], "description": transfer[
            "parameters"]["properties"]["destination"]["description"]},
    }  # fmt: skip
    messages = hosted_fakes.openai.requests[-1]["messages"]
    [result] = [m for m in messages if m["role"] == "tool"]
    refusal = json.loads(result["content"])
    assert refusal["ok"] is False and "sales" in refusal["error"]
    assert carrier_updates(twilio_fake) == []  # no carrier request was made
    assert not await db(CallEvent.objects.filter(call=call, type="control").exists)()
    await ws.send_json_to({"event": "stop", "streamSid": SID})
    await closed(ws)


@pytest.mark.parametrize(("arguments", "number"), [({"destination": "sales"}, SALES),
                                                   ({}, "+14155550142")])  # fmt: skip
async def test_a_transfer_by_the_agent_is_recorded_with_its_number(call, hosted_fakes, twilio_fake,
                                                                   arguments, number):  # fmt: skip
    hosted_fakes.deepgram.script(["Can I talk to a person?"])
    hosted_fakes.openai.script(
        {"text": "Of course, one moment.",
         "tool_calls": [{"name": "transfer_call", "arguments": arguments}]}
    )  # fmt: skip
    # Twilio ends the stream as it runs the new TwiML, before its API call has answered.
    twilio_fake.faults = Faults(latency_ms=800)
    ws = await open_stream(call)
    await listen(ws)
    await speak(ws)
    await listen(ws)
    await wait_for(lambda: bool(carrier_updates(twilio_fake)))
    await ws.send_json_to({"event": "stop", "streamSid": SID})
    await closed(ws)
    await wait_for(lambda: Call.objects.get(pk=call.pk).status == "completed")

    [update] = carrier_updates(twilio_fake)
    assert f"<Dial>{number}</Dial>" in update.get("Twiml")
    done = await db(Call.objects.get)(pk=call.pk)
    assert done.end_reason == f"transferred to {number}"
    control = await db(list)(CallEvent.objects.filter(call=call, type="control"))
    assert [e.payload for e in control] == [{"action": "transferred", "to": number}]


async def test_a_transfer_the_carrier_refuses_is_not_recorded(call, hosted_fakes, twilio_fake):
    hosted_fakes.deepgram.script(["Can I talk to a person?", "Hello?"])
    hosted_fakes.openai.script(
        {"text": "One moment.", "tool_calls": [{"name": "transfer_call", "arguments": {}}]},
        "Sorry, that did not work.",
    )
    twilio_fake.fail_next(400, 21220, "Call is not in-progress. Cannot redirect.", method="POST",
                          path_contains=f"/Calls/{CALL_SID}.json")  # fmt: skip
    ws = await open_stream(call)
    await listen(ws)
    await speak(ws)
    await listen(ws)
    await wait_for(lambda: bool(carrier_updates(twilio_fake)))
    await speak(ws)  # the next request carries the transfer's result
    await listen(ws)
    await ws.send_json_to({"event": "stop", "streamSid": SID})
    await closed(ws)
    await wait_for(lambda: Call.objects.get(pk=call.pk).status == "completed")

    [result] = [m for m in hosted_fakes.openai.requests[-1]["messages"] if m["role"] == "tool"]
    assert json.loads(result["content"])["ok"] is False
    done = await db(Call.objects.get)(pk=call.pk)
    assert done.end_reason == "stream stopped"
    assert not await db(CallEvent.objects.filter(call=call, type="control").exists)()
