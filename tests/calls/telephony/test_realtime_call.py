"""A persona with engine=realtime, driven through the real Media Streams consumer like Twilio drives
it, against the OpenAI Realtime emulator (real SDK): a whole call, barge-in, a dropped socket."""

from __future__ import annotations

import asyncio
import base64

import pytest
from channels.db import database_sync_to_async

from agents.models import Persona
from calls import services
from calls.models import Call, CallEvent, Turn
from calls.sandbox.emulators.base import Faults, silence, speech_like
from tests.support.stream import SID, media_msgs, open_stream, register_carrier_call
from tests.support.wait import wait_until_db

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]  # real-time turns
db = database_sync_to_async
CALLER = speech_like(600) + silence(700)  # a turn for the default 500 ms server VAD silence


@pytest.fixture
def realtime_call(myra, hosted_fakes, twilio_fake, settings, monkeypatch, tmp_path):
    settings.MEDIA_ROOT = tmp_path  # call recordings
    Persona.objects.filter(pk=myra.pk).update(engine="realtime")
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = settings.PROVIDERS["llm"]["OPTIONS"]["base_url"]  # the emulator
    call = services.call_create(
        persona=Persona.objects.get(pk=myra.pk), to="+14155550100",
        variables={"applicant_name": "Ann", "position": "SRE"}, welcome_message="Hi Ann.",
    )  # fmt: skip
    services.call_update_outcome(call_id=call.pk, twilio_sid="CA" + "1" * 32)
    register_carrier_call(twilio_fake, "CA" + "1" * 32)
    return Call.objects.get(pk=call.pk)


async def play(ws, *, echo: bool = True, quiet: float = 0.4) -> tuple[bytes, list[str]]:
    """Take agent audio until the line goes quiet, echoing each mark as Twilio does."""
    audio, marks = b"", []
    await ws.receive_nothing(timeout=5, interval=0.01)  # returns as soon as one arrives
    while not await ws.receive_nothing(timeout=quiet, interval=0.01):
        msg = await ws.receive_json_from()  # a receive timeout would cancel the consumer
        if msg["event"] == "media":
            audio += base64.b64decode(msg["media"]["payload"])
        elif msg["event"] == "mark":
            marks.append(msg["mark"]["name"])
            if echo:
                await ws.send_json_to({"event": "mark", "streamSid": SID, "mark": msg["mark"]})
    return audio, marks


async def say(ws, audio: bytes = CALLER) -> None:
    for msg in media_msgs(audio):
        await ws.send_json_to(msg)


def speakers(call) -> list[tuple[str, str]]:
    return list(Turn.objects.filter(call=call).order_by("seq").values_list("speaker", "text"))


async def test_a_whole_realtime_call(realtime_call, hosted_fakes):
    emu = hosted_fakes.openai
    emu.script_transcript("Yes, I am still interested.", "Tuesday works.")
    emu.script_realtime(
        "Hi Ann.",
        {"name": "set_stage", "arguments": {"stage": "availability"}},
        "Great. Which day?",
        "See you then.",
    )
    ws = await open_stream(realtime_call)
    greeting, _ = await play(ws)
    assert greeting and len(greeting) % 160 == 0
    await say(ws)
    assert (await play(ws))[0]
    await say(ws)
    assert (await play(ws))[0]
    await ws.send_json_to({"event": "stop", "streamSid": SID, "stop": {"callSid": "CA1"}})
    await wait_until_db(lambda: Call.objects.get(pk=realtime_call.pk).status == "completed")
    await ws.disconnect()

    assert await db(speakers)(realtime_call) == [
        ("agent", "Hi Ann."),
        ("caller", "Yes, I am still interested."),
        ("agent", "Great. Which day?"),
        ("caller", "Tuesday works."),
        ("agent", "See you then."),
    ]
    turn = await db(Turn.objects.get)(call=realtime_call, seq=3)
    assert turn.latency["voice_to_voice_ms"] > 0
    done = await db(Call.objects.get)(pk=realtime_call.pk)
    assert done.current_stage == "availability" and done.recording
    tool = await db(CallEvent.objects.get)(call=realtime_call, type="tool_call")
    assert tool.payload == {"name": "set_stage", "arguments": {"stage": "availability"}}
    session = emu.realtime_events[0]["session"]
    assert "Ann" in session["instructions"] and "SRE" in session["instructions"]
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert {t["name"] for t in session["tools"]} == {
        "end_call", "transfer_call", "press_digits", "set_stage",
    }  # fmt: skip


async def test_end_call_hangs_up_once_the_goodbye_has_played(realtime_call, hosted_fakes,
                                                             twilio_fake):  # fmt: skip
    emu = hosted_fakes.openai
    emu.script_transcript("No, I found another job.")
    emu.script_realtime(
        "Hi Ann.",
        {"text": "Thanks, goodbye!", "tool_calls": [{"name": "end_call", "arguments": {}}]},
    )
    ws = await open_stream(realtime_call)
    await play(ws)
    await say(ws)
    goodbye, marks = await play(ws, echo=False)  # Twilio is still playing it
    assert goodbye and marks
    await wait_until_db(
        lambda: CallEvent.objects.filter(call=realtime_call, type="tool_call").exists()
    )
    assert twilio_fake.calls[realtime_call.twilio_sid].status == "in-progress"
    for name in marks:
        await ws.send_json_to({"event": "mark", "streamSid": SID, "mark": {"name": name}})
    await wait_until_db(lambda: twilio_fake.calls[realtime_call.twilio_sid].status == "completed")
    tool = await db(CallEvent.objects.get)(call=realtime_call, type="tool_call")
    assert tool.payload["name"] == "end_call"
    await ws.disconnect()


async def test_barge_in_stores_what_the_caller_heard(realtime_call, hosted_fakes):
    emu = hosted_fakes.openai
    text = "The role is hybrid, two days a week in San Jose, and the team is growing fast."
    emu.script_transcript("Tell me about the role.")
    emu.script_realtime("Hi Ann.", text)
    ws = await open_stream(realtime_call)
    await play(ws)
    await say(ws)
    sent = 0
    while sent < 40 * 160:  # 800 ms of the reply sent (about 600 ms played)
        msg = await ws.receive_json_from(timeout=5)
        if msg["event"] == "media":
            sent += len(base64.b64decode(msg["media"]["payload"]))
    await say(ws, speech_like(300))
    while (await ws.receive_json_from(timeout=5))["event"] != "clear":
        pass
    await wait_until_db(lambda: Turn.objects.filter(call=realtime_call, interrupted=True).exists())

    turn = await db(Turn.objects.get)(call=realtime_call, interrupted=True)
    heard = turn.heard_text.split()
    assert heard and heard == text.split()[: len(heard)] and len(heard) < len(text.split())
    [cut] = emu.truncations
    assert 300 <= cut["audio_end_ms"] <= 900
    await ws.disconnect()
    await wait_until_db(lambda: Call.objects.get(pk=realtime_call.pk).status == "completed")


async def test_a_dropped_realtime_socket_does_not_end_the_call(realtime_call, hosted_fakes):
    emu = hosted_fakes.openai
    # Cut the socket one word into the greeting; the call goes on on a fresh session.
    emu.realtime_faults = Faults(drop_after_messages=8, times=1)
    emu.script_transcript("Yes, still interested.")
    emu.script_realtime("Hi Ann, this is Myra.", "Great to hear.")
    ws = await open_stream(realtime_call)
    await play(ws)
    await wait_until_db(lambda: len(emu.realtime_connections) == 2)
    await wait_until_db(lambda: CallEvent.objects.filter(call=realtime_call, type="error").exists())
    await asyncio.sleep(0.2)  # the fresh session is up
    await say(ws)
    reply, _ = await play(ws)
    assert reply
    await wait_until_db(
        lambda: Turn.objects.filter(call=realtime_call, text="Great to hear.").exists()
    )

    assert (await db(speakers)(realtime_call))[:2] == [
        ("agent", "Hi"),
        ("caller", "Yes, still interested."),
    ]
    error = await db(CallEvent.objects.get)(call=realtime_call, type="error")
    assert error.payload["provider"] == "realtime"
    fresh = [e for e in emu.realtime_events if e["type"] == "session.update"][1]
    assert "Agent: Hi" in fresh["session"]["instructions"]
    await ws.disconnect()
    await wait_until_db(lambda: Call.objects.get(pk=realtime_call.pk).status == "completed")
