"""The Media Streams consumer driven like Twilio drives it: a whole call, and every bad input."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from calls import services
from calls.models import Call, CallEvent, Turn
from calls.sandbox.emulators.base import silence, speech_like
from tests.support.stream import (
    SID,
    closed,
    collect_until_mark,
    media_msgs,
    media_socket,
    open_stream,
    params_for,
    start_msg,
)
from tests.support.wait import wait_until_db

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_whole_call(call, hosted_fakes, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    hosted_fakes.deepgram.script(["Yes, I am still interested."])
    hosted_fakes.openai.script("Great to hear. When are you free this week?")
    ws = await open_stream(call)
    greeting, mark = await collect_until_mark(ws)
    assert len(greeting) >= 160 and len(greeting) % 160 == 0
    await ws.send_json_to({"event": "mark", "streamSid": SID, "mark": {"name": mark}})
    for msg in media_msgs(speech_like(800) + silence(600)):
        await ws.send_json_to(msg)
    reply, mark2 = await collect_until_mark(ws)
    assert reply
    await ws.send_json_to({"event": "mark", "streamSid": SID, "mark": {"name": mark2}})
    await ws.send_json_to({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "5"}})
    await wait_until_db(lambda: Turn.objects.filter(call=call).count() >= 3)
    await ws.send_json_to({"event": "stop", "streamSid": SID, "stop": {"callSid": "CA1"}})
    await closed(ws)
    await wait_until_db(lambda: Call.objects.get(pk=call.pk).status == "completed")

    await database_sync_to_async(check_whole_call)(call)
    sent = hosted_fakes.openai.requests[-1]
    assert sent["messages"][0]["role"] == "system" and "Ann" in sent["messages"][0]["content"]
    assert sent["messages"][-1] == {"role": "user", "content": "Yes, I am still interested."}


def check_whole_call(call):
    turns = list(Turn.objects.filter(call=call).values_list("speaker", "text"))
    assert turns[:3] == [
        ("agent", "Hi Ann."),
        ("caller", "Yes, I am still interested."),
        ("agent", "Great to hear. When are you free this week?"),
    ]
    reply_turn = Turn.objects.get(call=call, seq=3)
    assert reply_turn.latency["voice_to_voice_ms"] > 0
    assert CallEvent.objects.filter(call=call, type="dtmf", payload__digit="5").exists()
    done = Call.objects.get(pk=call.pk)
    assert done.recording and done.stream_sid == SID
    assert done.recording.size > 44


async def test_invalid_token_closes_with_policy_code(call, hosted_fakes):
    ws = media_socket()
    await ws.connect(timeout=10)
    await ws.send_json_to(start_msg({"call": str(call.uuid), "token": "forged"}))
    out = await ws.receive_output(timeout=3)
    assert out["type"] == "websocket.close" and out["code"] == 4008


async def test_reused_token_is_refused(call, hosted_fakes):
    params = await params_for(call)
    first = media_socket()
    await first.connect(timeout=10)
    await first.send_json_to(start_msg(params))
    await first.receive_json_from(timeout=5)  # greeting audio: accepted
    second = media_socket()
    await second.connect(timeout=10)
    await second.send_json_to(start_msg(params, sid="MZ" + "b" * 32))
    out = await second.receive_output(timeout=3)
    assert out["type"] == "websocket.close" and out["code"] == 4008
    await first.disconnect()


async def test_expired_token_is_refused(call, hosted_fakes, settings):
    params = await params_for(call)
    settings.STREAM_TOKEN_TTL_SECONDS = -1
    ws = media_socket()
    await ws.connect(timeout=10)
    await ws.send_json_to(start_msg(params))
    out = await ws.receive_output(timeout=3)
    assert out["code"] == 4008


@pytest.mark.parametrize(
    "frame",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"event": "bogus"}),
        json.dumps({"event": "media", "streamSid": SID, "media": {"payload": "!!notbase64!!"}}),
        json.dumps({"event": "media", "streamSid": SID}),
        json.dumps({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "55"}}),
        json.dumps({"event": "start", "streamSid": 'x"y', "start": {"streamSid": 'x"y'}}),
        "x" * 20000,
    ],
)
async def test_malformed_frames_are_dropped_not_fatal(call, hosted_fakes, frame):
    ws = await open_stream(call)
    await ws.receive_json_from(timeout=5)  # the greeting flows
    await ws.send_to(text_data=frame)
    await ws.send_json_to({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "1"}})
    await wait_until_db(lambda: CallEvent.objects.filter(call=call, type="dtmf").exists())
    await ws.disconnect()


async def test_frames_before_start_are_ignored_then_closed(call, hosted_fakes):
    ws = media_socket()
    await ws.connect(timeout=10)
    for msg in media_msgs(silence(20 * 60)):
        await ws.send_json_to(msg)
    out = await ws.receive_output(timeout=3)
    assert out["type"] == "websocket.close" and out["code"] == 4002
    # The frames queued behind the 51st are dropped: one close only (a second is an ASGI error).
    assert await ws.receive_nothing(timeout=0.5)


async def test_second_start_and_foreign_stop_are_ignored(call, hosted_fakes):
    ws = await open_stream(call)
    await ws.receive_json_from(timeout=5)
    await ws.send_json_to(start_msg(await params_for(call), sid="MZ" + "c" * 32))
    await ws.send_json_to({"event": "stop", "streamSid": "MZ" + "d" * 32})
    await ws.send_json_to({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "9"}})
    await wait_until_db(lambda: CallEvent.objects.filter(call=call, type="dtmf").exists())
    await wait_until_db(lambda: Call.objects.get(pk=call.pk).stream_sid == SID)
    await ws.disconnect()


async def test_drop_without_stop_still_finalises(call, hosted_fakes, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    ws = await open_stream(call)
    await collect_until_mark(ws)
    await ws.disconnect()
    await wait_until_db(lambda: Call.objects.get(pk=call.pk).status == "completed")
    await wait_until_db(lambda: Turn.objects.filter(call=call, speaker="agent").exists())
    await wait_until_db(lambda: "without stop" in Call.objects.get(pk=call.pk).end_reason)


async def test_finalisation_outlives_a_cancelled_consumer(
    call, hosted_fakes, settings, tmp_path, monkeypatch
):
    """daphne cancels a consumer 10 s after its socket closed; a loaded server may still be
    writing the call's end then. What the session started to write must still be written."""
    from calls.live import session as session_module

    settings.MEDIA_ROOT = tmp_path
    saving, release = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    real_save = session_module._save_recording

    def slow_save(call_id, wav):
        loop.call_soon_threadsafe(saving.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)
        real_save(call_id, wav)

    monkeypatch.setattr(session_module, "_save_recording", slow_save)
    ws = await open_stream(call)
    await collect_until_mark(ws)
    await ws.send_json_to({"event": "stop", "streamSid": SID, "stop": {"callSid": "CA1"}})
    await asyncio.wait_for(saving.wait(), 5)
    ws.future.cancel()  # what daphne's application checker does
    with pytest.raises(asyncio.CancelledError):
        await ws.future
    release.set()
    await wait_until_db(lambda: Call.objects.get(pk=call.pk).status == "completed")
    await wait_until_db(lambda: bool(Call.objects.get(pk=call.pk).recording))
    assert (await database_sync_to_async(Call.objects.get)(pk=call.pk)).end_reason == (
        "stream stopped"
    )


async def test_a_consumer_cancelled_before_the_stream_ended_still_finalises(
    call, hosted_fakes, settings, tmp_path
):
    """No `stop`, no disconnect handled: daphne gave up on a busy consumer. The call ends anyway."""
    settings.MEDIA_ROOT = tmp_path
    ws = await open_stream(call)
    await collect_until_mark(ws)
    ws.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ws.future
    await wait_until_db(lambda: Call.objects.get(pk=call.pk).status == "completed")
    await wait_until_db(lambda: Turn.objects.filter(call=call, speaker="agent").exists())
    await wait_until_db(
        lambda: Call.objects.get(pk=call.pk).end_reason == "stream handler cancelled"
    )


async def test_sends_to_a_socket_that_is_gone_are_dropped():
    """uvicorn raises on a send after the peer left (daphne drops it); the disconnect that
    follows ends the stream, so the playout's send must not fail the call's tasks meanwhile."""
    from uvicorn.protocols.utils import ClientDisconnected

    from calls.runtime.consumer import MediaStreamConsumer

    sent: list[dict] = []

    async def gone(message: dict) -> None:
        sent.append(message)
        raise ClientDisconnected()

    consumer = MediaStreamConsumer()
    consumer.base_send, consumer.stream_sid = gone, SID
    await consumer.send_media(b"\xff" * 160)
    await consumer.send_mark("r1s0")
    await consumer.send_clear()
    assert [json.loads(m["text"])["event"] for m in sent] == ["media", "mark", "clear"]
    consumer.closing = True  # after our own close nothing more is sent at all
    await consumer.send_media(b"\xff" * 160)
    assert len(sent) == 3


async def test_a_start_from_another_account_is_refused(call, hosted_fakes, settings):
    params = await params_for(call)
    ws = media_socket()
    await ws.connect(timeout=10)
    start = start_msg(params)
    start["start"]["accountSid"] = "AC" + "9" * 32
    await ws.send_json_to(start)
    out = await ws.receive_output(timeout=3)
    assert out["type"] == "websocket.close" and out["code"] == 4008


async def test_a_token_used_on_another_calls_stream_is_refused(call, hosted_fakes):
    await database_sync_to_async(services.call_update_outcome)(
        call_id=call.pk, twilio_sid="CA" + "7" * 32
    )
    ws = media_socket()
    await ws.connect(timeout=10)
    await ws.send_json_to(start_msg(await params_for(call), call_sid="CA" + "8" * 32))
    out = await ws.receive_output(timeout=3)
    assert out["type"] == "websocket.close" and out["code"] == 4008
    assert (await database_sync_to_async(Call.objects.get)(pk=call.pk)).stream_nonce  # unspent
