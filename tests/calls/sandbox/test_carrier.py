"""The sandbox carrier driven by the unchanged twilio SDK, against a small app on real sockets
(`tests/support/sandbox_app.py`: an aiohttp server taking the signed callbacks and the streams).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time

import pytest
from aiohttp import BasicAuth, ClientSession
from twilio.rest import Client

from calls.sandbox.carrier import SandboxCarrier
from calls.sandbox.emulators.base import rms, speech_like
from calls.sandbox.scenario import parse
from tests.support.sandbox_app import (
    FROM,
    SID,
    TO,
    TOKEN,
    FakeApp,
    place,
    running_line,
    stream_twiml,
)


@pytest.fixture
async def line():
    async with running_line() as running:
        yield running


@pytest.fixture
def app(line) -> FakeApp:
    return line.app


@pytest.fixture
def carrier(line) -> SandboxCarrier:
    return line.carrier


@pytest.fixture
def client(line) -> Client:
    return line.client


def scenario(steps: list, **kw):
    return parse({"voice": "synthetic", "ring": 0.1, "steps": steps, **kw}, "test")


@pytest.mark.slow  # real-time pacing and playback, timed
async def test_a_call_as_twilio_runs_it(carrier, client, app):
    carrier.plan(TO, scenario([{"wait": 1.0}, {"say": "Hello there."}, {"dtmf": "5"}, "silent"]))
    sid = await place(client, app, twiml=stream_twiml(app.stream_url, token="tok-1", call="42"))
    s = await asyncio.wait_for(app.streams.get(), 5)

    connected = await s.recv("connected")
    assert connected.data == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = (await s.recv("start")).data
    assert start["sequenceNumber"] == "1" and start["streamSid"].startswith("MZ")
    assert start["start"] == {
        "streamSid": start["streamSid"], "accountSid": SID, "callSid": sid, "tracks": ["inbound"],
        "customParameters": {"token": "tok-1", "call": "42"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }  # fmt: skip

    # media: 160-byte frames, chunk/timestamp counting up, paced at real time
    frames = await s.frames(50)
    for i, frame in enumerate(frames):
        media = frame.data["media"]
        assert frame.data["streamSid"] == s.sid and media["track"] == "inbound"
        assert (media["chunk"], media["timestamp"]) == (str(i + 1), str(i * 20))
        assert len(base64.b64decode(media["payload"])) == 160
    seqs = [int(f.data["sequenceNumber"]) for f in frames]
    assert seqs == sorted(seqs) and seqs[0] == 2
    span = frames[-1].t - frames[0].t
    assert 0.90 <= span <= 1.15, span

    # a mark comes back once the audio queued before it has played (200 ms here) ...
    loop = asyncio.get_running_loop()
    await s.send_audio(speech_like(200))
    await s.mark("after-200ms")
    sent = loop.time()
    echo = await s.recv("mark")
    assert echo.data["mark"] == {"name": "after-200ms"} and echo.data["streamSid"] == s.sid
    assert 0.17 <= echo.t - sent <= 0.40, echo.t - sent
    # ... at once when nothing is queued ...
    await s.mark("empty")
    sent = loop.time()
    assert (await s.recv("mark")).t - sent < 0.1
    # ... and `clear` drops the unplayed audio and echoes every pending mark
    await s.send_audio(speech_like(3000))
    await s.mark("a")
    await s.mark("b")
    await asyncio.sleep(0.1)
    await s.send(event="clear")
    sent = loop.time()
    names = [(await s.recv("mark")).data["mark"]["name"] for _ in range(2)]
    assert names == ["a", "b"] and loop.time() - sent < 0.1

    # the callee talked into the stream, then pressed 5
    dtmf = (await s.recv("dtmf", limit=4)).data
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "5"} and dtmf["streamSid"] == s.sid
    assert rms(s.inbound_audio()) > 500

    # hanging up through the API: `stop`, the socket closes, `completed` with a duration
    await asyncio.to_thread(client.calls(sid).update, status="completed")
    stop = (await s.recv("stop")).data
    assert stop["stop"] == {"accountSid": SID, "callSid": sid} and stop["streamSid"] == s.sid
    await asyncio.wait_for(s.closed.wait(), 3)
    call = await carrier.wait_ended(sid)
    assert call.ended_by == "app"

    assert app.statuses() == ["initiated", "ringing", "in-progress", "completed"]
    assert all(ok for _, ok in app.callbacks), "every callback is signed with the auth token"
    for n, (form, _) in enumerate(app.callbacks):
        assert form["SequenceNumber"] == str(n) and form["CallSid"] == sid
        assert (form["AccountSid"], form["From"], form["To"]) == (SID, FROM, TO)
        assert (form["Direction"], form["ApiVersion"]) == ("outbound-api", "2010-04-01")
        assert form["CallbackSource"] == "call-progress-events" and form["Timestamp"]
        assert "AnsweredBy" not in form
    assert [("CallDuration" in form) for form, _ in app.callbacks] == [False] * 3 + [True]
    assert int(app.callbacks[-1][0]["CallDuration"]) >= 1

    # what the callee heard: the 200 ms before the mark and ~100 ms of the cleared audio
    callee = call.party
    heard = sum(1 for a, b in callee.utterances for _ in range(a, b))
    assert 12 <= heard <= 22, heard
    assert len(callee.clears) == 1 and callee.report()["said"] == ["Hello there."]
    assert call.errors == []


@pytest.mark.slow  # the menu is spoken in real time
async def test_play_digits_reconnects_then_dial_transfers(carrier, client, app):
    menu = {
        "menu": {
            "prompt": "For sales press 1, for support press 2.",
            "options": {"2": [{"say": "Support."}, "silent"]},
            "otherwise": ["hangup"],
        }
    }
    carrier.plan(TO, scenario([menu], transfer_talk=0.2))
    sid = await place(client, app, twiml=stream_twiml(app.stream_url, token="first"))
    first = await asyncio.wait_for(app.streams.get(), 5)
    await first.recv("start")
    await first.frames(10)

    update = (
        '<Response><Play digits="w2"/>'
        + stream_twiml(app.stream_url, token="second")[len("<Response>") :]
    )
    await asyncio.to_thread(client.calls(sid).update, twiml=update)
    assert (await first.recv("stop")).data["stop"]["callSid"] == sid
    await asyncio.wait_for(first.closed.wait(), 3)

    second = await asyncio.wait_for(app.streams.get(), 5)
    start = (await second.recv("start")).data
    assert start["streamSid"] != first.sid
    assert start["start"]["customParameters"] == {"token": "second"}
    frames = await second.frames(40)  # the menu's option 2 answers on the new stream
    assert frames[0].data["media"]["chunk"] == "1"
    assert rms(second.inbound_audio()) > 500

    await asyncio.to_thread(
        client.calls(sid).update, twiml="<Response><Dial>+14155550142</Dial></Response>"
    )
    await second.recv("stop")
    call = await carrier.wait_ended(sid)
    assert call.transfer["to"] == "+14155550142" and call.ended_by == "transfer"
    assert call.digits_played == ["w2"]
    report = call.party.report()
    assert report["digits_received"] == ["w2"] and report["streams"] == 2
    assert report["said"][-1] == "Support."
    assert app.statuses()[-1] == "completed"


@pytest.mark.parametrize("outcome", ["busy", "no-answer", "failed"])
async def test_unanswered_calls_send_callbacks_and_open_no_stream(carrier, client, app, outcome):
    carrier.plan(TO, scenario([], answer=outcome, ring=0.2))
    sid = await place(client, app, timeout=20)
    call = await carrier.wait_ended(sid, 5)
    assert app.statuses() == ["initiated", "ringing", outcome]
    assert all(ok for _, ok in app.callbacks)
    assert app.callbacks[-1][0]["CallDuration"] == "0"
    assert app.streams.empty() and call.streams == []
    fetched = await asyncio.to_thread(client.calls(sid).fetch)
    assert fetched.status == outcome


async def test_machine_detection_hangup_twiml_and_default_events(carrier, client, app):
    carrier.plan(TO, scenario(["silent"], answered_by="machine_start"))
    call = await asyncio.to_thread(
        client.calls.create, to=TO, from_=FROM, twiml=stream_twiml(app.stream_url),
        status_callback=app.callback_url(), machine_detection="Enable",
    )  # fmt: skip
    s = await asyncio.wait_for(app.streams.get(), 5)
    await s.recv("start")
    await asyncio.to_thread(client.calls(call.sid).update, twiml="<Response><Hangup/></Response>")
    await s.recv("stop")
    await carrier.wait_ended(call.sid)
    # no StatusCallbackEvent: Twilio sends only the final callback
    [(form, ok)] = app.callbacks
    assert ok and form["CallStatus"] == "completed" and form["AnsweredBy"] == "machine_start"


async def test_protocol_errors_are_recorded_and_the_app_closing_ends_the_call(carrier, client, app):
    carrier.plan(TO, scenario(["silent"]))
    sid = await place(client, app)
    s = await asyncio.wait_for(app.streams.get(), 5)
    await s.recv("start")
    await s.ws.send_bytes(b"\x00\x01")
    await s.send(event="bogus")
    await s.ws.send_str("{not json")
    await s.send(event="media", media={"payload": "!!"})
    await s.mark("still-works")
    assert (await s.recv("mark")).data["mark"]["name"] == "still-works"
    await s.ws.close()
    call = await carrier.wait_ended(sid)
    assert [e.code for e in call.errors] == [31950, 31924, 31924, 31924]
    assert call.ended_by == "twiml-end" and app.statuses()[-1] == "completed"


async def test_stream_url_with_a_query_is_refused(carrier, client, app):
    carrier.plan(TO, scenario(["silent"]))
    sid = await place(client, app, twiml=stream_twiml(app.stream_url + "?token=x"))
    call = await carrier.wait_ended(sid)
    assert [e.code for e in call.errors] == [31922] and app.streams.empty()
    assert app.statuses()[-1] == "completed"


async def test_callee_hangs_up(carrier, client, app):
    carrier.plan(TO, scenario([{"say": "Bye."}, "hangup"]))
    sid = await place(client, app)
    s = await asyncio.wait_for(app.streams.get(), 5)
    await s.recv("stop", limit=5)
    call = await carrier.wait_ended(sid)
    assert call.ended_by == "callee" and app.statuses()[-1] == "completed"


async def test_scenarios_are_chosen_by_number_plan_or_http(carrier, client, app):
    assert carrier.book.for_call("+14155550104").name == "busy"
    assert carrier.book.for_call("+19995550000").name == "cooperative"
    auth = BasicAuth(SID, TOKEN)
    async with ClientSession() as http:
        url = f"{carrier.base_url}/sandbox/next"
        denied = await http.post(url, data={"To": TO, "Scenario": "busy"})
        assert denied.status == 401
        unknown = await http.post(url, data={"To": TO, "Scenario": "nope"}, auth=auth)
        assert unknown.status == 404 and "busy" in (await unknown.json())["message"]
        planned = await http.post(url, data={"To": TO, "Scenario": "busy"}, auth=auth)
        assert await planned.json() == {"to": TO, "scenario": "busy"}
        listed = await (
            await http.get(f"{carrier.base_url}/sandbox/scenarios.json", auth=auth)
        ).json()
        assert {s["name"] for s in listed} >= {"cooperative", "ivr", "agent-to-agent"}
        sid = await place(client, app)
        await carrier.wait_ended(sid, 5)
        report = await (
            await http.get(f"{carrier.base_url}/sandbox/calls/{sid}.json", auth=auth)
        ).json()
    assert report["scenario"] == "busy" and report["status"] == "busy"
    assert carrier.book.for_call(TO).name == "cooperative"  # a plan is used once


@pytest.mark.slow  # real-time pacing, timed: needs the CPU to itself
async def test_twenty_simultaneous_streams_keep_time(carrier, client, app):
    numbers = [f"+1415555{n:04d}" for n in range(300, 320)]
    for number in numbers:
        carrier.plan(number, scenario([{"wait": 0.6}, "hangup"]))
    sids = await asyncio.gather(*(place(client, app, to=n) for n in numbers))
    calls = [await carrier.wait_ended(sid, 10) for sid in sids]
    for call in calls:
        [stream] = call.streams
        assert 25 <= stream.stats.frames_sent <= 40
        # A tick is late once more than a frame (20 ms) behind: a pause of the test process
        # (GC, the other tests' threads, a busy host) may cause one; a pacer that drifts, many.
        assert stream.stats.late_ticks <= 2, stream.stats


@pytest.mark.slow  # real-time pacing, timed
async def test_frames_sent_late_are_listed_with_how_late(carrier, client, app):
    carrier.plan(TO, scenario([{"wait": 1.0}, "hangup"]))
    sid = await place(client, app)
    s = await asyncio.wait_for(app.streams.get(), 5)
    await s.frames(10)
    time.sleep(0.1)  # noqa: ASYNC251 - the carrier shares this loop: five frames fall due in the stall
    [stream] = (await carrier.wait_ended(sid, 10)).streams
    listed = list(zip(stream.stats.late_sent_ts, stream.stats.late_sent_ms, strict=True))
    stalled = [(ts, ms) for ts, ms in listed if ms > 10]
    # They went out together when the loop resumed: consecutive, each 20 ms less late.
    assert len(stalled) >= 4, listed
    assert stream.stats.late_sent_unlisted == 0
    # one measure for every lateness figure: the tick asleep when the loop stalled counts too
    assert stream.stats.max_lag_ms == pytest.approx(max(ms for _, ms in listed), abs=0.01)
    assert stream.stats.late_ticks == sum(1 for _, ms in listed if ms > 20)
    first_ts, first_ms = stalled[0]
    assert first_ms > 80
    for i, (ts, ms) in enumerate(stalled[:4]):
        assert ts == first_ts + 20 * i
        assert abs(first_ms - ms - 20 * i) < 5
    late = dict(listed)
    sent_at = {int(m.data["media"]["timestamp"]): m.t for m in s.media}
    # what the app saw matches: frames listed as late by x arrived x later than the first on time
    on_time = next(ts for ts in sorted(sent_at) if ts not in late)
    base = sent_at[on_time] - on_time / 1000
    for ts, ms in stalled[:4]:
        assert abs((sent_at[ts] - ts / 1000 - base) * 1000 - ms) < 10


def test_start_in_process_aims_the_twilio_client_at_the_carrier(settings):
    from calls.sandbox.carrier import start_in_process
    from calls.telephony.client import reset, twilio_client

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        carrier = start_in_process(port=busy, voice="synthetic")
    try:
        assert carrier.server.port != busy  # a free port instead
        assert twilio_client().api.base_url == carrier.base_url
        assert carrier.base_url != settings.TWILIO_API_BASE_URL  # settings are left as loaded
        assert twilio_client().calls.list() == []
    finally:
        carrier.stop()
        reset()
    assert twilio_client().api.base_url != carrier.base_url  # reset forgets it
