"""Live control reaching the consumer holding the call: say, transfer, press digits (a second
stream of the same call resumes the conversation), hang up; and the recording download."""

import asyncio
import re
from urllib.parse import unquote

import pytest
from channels.db import database_sync_to_async
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from calls import services
from calls.models import Call, CallEvent, Turn
from calls.sandbox.emulators.base import silence, speech_like
from calls.telephony import control
from tests.support.stream import (
    SID,
    closed,
    collect_until_mark,
    media_msgs,
    media_socket,
    open_stream,
    register_carrier_call,
    start_msg,
)
from tests.support.wait import wait_until_db

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async


@pytest.fixture
def live_call(myra, twilio_fake):
    call = services.call_create(
        persona=myra, to="+14155550100", variables={"applicant_name": "Ann", "position": "SRE"},
        welcome_message="Hi Ann.",
    )  # fmt: skip
    services.call_update_outcome(call_id=call.pk, twilio_sid="CA" + "1" * 32)
    return Call.objects.get(pk=call.pk)


async def echo(ws, mark):
    await ws.send_json_to({"event": "mark", "streamSid": SID, "mark": {"name": mark}})


async def test_supervisor_say_interrupts_and_is_spoken(live_call, hosted_fakes):
    ws = await open_stream(live_call)
    _, mark = await collect_until_mark(ws)
    await echo(ws, mark)
    await wait_until_db(lambda: Call.objects.get(pk=live_call.pk).status == "in-progress")
    call = await db(Call.objects.get)(pk=live_call.pk)
    await db(control.say)(call, text="This is your supervisor speaking.")
    audio, mark = await collect_until_mark(ws)
    assert audio
    await echo(ws, mark)
    await wait_until_db(
        lambda: Turn.objects.filter(
            call=live_call, text="This is your supervisor speaking."
        ).exists()
    )
    assert await db(CallEvent.objects.filter(call=live_call, type="override").exists)()
    await ws.disconnect()


async def test_transfer_updates_the_carrier_with_dial(live_call, hosted_fakes, twilio_fake):
    twilio_fake.calls.clear()
    ws = await open_stream(live_call)
    await collect_until_mark(ws)
    await wait_until_db(lambda: Call.objects.get(pk=live_call.pk).status == "in-progress")
    sid = live_call.twilio_sid
    await asyncio.to_thread(register_carrier_call, twilio_fake, sid)
    call = await db(Call.objects.get)(pk=live_call.pk)
    await db(control.transfer)(call, to="+14155550142")
    await wait_until_db(lambda: bool(twilio_fake.requests_to("POST", f"/Calls/{sid}.json")))
    update = twilio_fake.requests_to("POST", f"/Calls/{sid}.json")[-1]
    assert "<Dial>+14155550142</Dial>" in update.get("Twiml")
    await ws.disconnect()


async def test_press_digits_reconnects_a_second_stream(live_call, hosted_fakes, twilio_fake):
    ws = await open_stream(live_call)
    _, mark = await collect_until_mark(ws)
    await echo(ws, mark)
    await wait_until_db(lambda: Turn.objects.filter(call=live_call).exists())
    sid = live_call.twilio_sid
    await asyncio.to_thread(register_carrier_call, twilio_fake, sid)
    call = await db(Call.objects.get)(pk=live_call.pk)
    await db(control.press_digits)(call, digits="1w2")
    await wait_until_db(lambda: bool(twilio_fake.requests_to("POST", f"/Calls/{sid}.json")))
    document = twilio_fake.requests_to("POST", f"/Calls/{sid}.json")[-1].get("Twiml")
    assert '<Play digits="1w2" />' in document and "<Stream" in document
    # Twilio stops the first stream and opens a second one with the new parameters.
    await ws.send_json_to({"event": "stop", "streamSid": SID})
    await closed(ws)
    params = dict(re.findall(r'<Parameter name="(\w+)" value="([^"]*)" />', document))
    second = media_socket()
    await second.connect(timeout=10)
    await second.send_json_to(
        start_msg({k: unquote(v) for k, v in params.items()}, sid="MZ" + "e" * 32, call_sid=sid)
    )
    hosted_fakes.deepgram.script(["Yes."])
    hosted_fakes.openai.script("Thanks.")
    for msg in media_msgs(speech_like(600) + silence(600), sid="MZ" + "e" * 32):
        await second.send_json_to(msg)
    reply = await second.receive_json_from(timeout=10)
    while reply["event"] != "media":
        reply = await second.receive_json_from(timeout=10)
    # the conversation goes on (no second greeting, checked below)
    await wait_until_db(
        lambda: Turn.objects.filter(call=live_call, speaker="caller", text="Yes.").exists()
    )
    greetings = await db(Turn.objects.filter(call=live_call, text="Hi Ann.").count)()
    assert greetings == 1
    assert await db(CallEvent.objects.filter(call=live_call, type="dtmf").exists)()
    await second.disconnect()


async def test_recording_download(live_call, hosted_fakes, settings, tmp_path, operator):
    settings.MEDIA_ROOT = tmp_path
    ws = await open_stream(live_call)
    await collect_until_mark(ws)
    await ws.send_json_to({"event": "stop", "streamSid": SID})
    await closed(ws)
    await wait_until_db(lambda: bool(Call.objects.get(pk=live_call.pk).recording))

    def download():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=operator).key}")
        detail = client.get(f"/api/calls/{live_call.uuid}/").json()
        assert detail["recording_url"].endswith(f"/api/calls/{live_call.uuid}/recording/")
        response = client.get(f"/api/calls/{live_call.uuid}/recording/", HTTP_ACCEPT="audio/wav")
        body = b"".join(response.streaming_content)
        assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
        assert body[:4] == b"RIFF" and body[22] == 2  # stereo
        assert APIClient().get(f"/api/calls/{live_call.uuid}/recording/").status_code in (401, 403)

    await db(download)()
