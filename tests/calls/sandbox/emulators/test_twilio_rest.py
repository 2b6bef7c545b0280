"""The Twilio REST emulator driven by the unchanged twilio SDK (sync in a thread, and async)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from calls.sandbox.emulators.base import EmulatorServer, Faults
from calls.sandbox.emulators.twilio_rest import CallState, RecordedRequest, TwilioRestEmulator

SID = "AC" + "a" * 32
TOKEN = "s3cret"
FROM = "+15005550006"
TO = "+14155550100"
TWIML = '<Response><Connect><Stream url="wss://x/ws/media/"/></Connect></Response>'
EVENTS = ["initiated", "ringing", "answered", "completed"]


@pytest.fixture(scope="module")
def served():
    emulator = TwilioRestEmulator(account_sid=SID, auth_token=TOKEN)
    server = EmulatorServer(emulator.app()).start_in_thread()
    yield emulator, server
    server.stop()


@pytest.fixture
def emu(served):
    emulator, _ = served
    emulator.requests.clear()
    emulator.calls.clear()
    emulator.on_create.clear()
    emulator.on_update.clear()
    emulator.queued_errors.clear()
    emulator.owned_numbers = None
    emulator.faults = Faults()
    return emulator


@pytest.fixture
def client(served, emu) -> Client:
    c = Client(SID, TOKEN)
    c.api.base_url = served[1].base_url
    return c


def create(client: Client, **kw):
    args = {"to": TO, "from_": FROM, "twiml": TWIML, **kw}
    return client.calls.create(**args)


def test_create_records_what_the_sdk_sent(emu, client):
    call = create(
        client,
        status_callback="https://app.example.com/twilio/status/?call=1",
        status_callback_event=EVENTS,
        machine_detection="Enable",
        time_limit=600,
        timeout=20,
    )
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert (call.status, call.to, call._from, call.direction) == (
        "queued",
        TO,
        FROM,
        "outbound-api",
    )
    assert call.date_created is not None  # RFC 2822 parsed by the SDK
    [sent] = emu.requests_to("POST", "/Calls.json")
    assert sent.path == f"/2010-04-01/Accounts/{SID}/Calls.json" and sent.username == SID
    assert (sent.get("To"), sent.get("From"), sent.get("Twiml")) == (TO, FROM, TWIML)
    assert sent.get("StatusCallback") == "https://app.example.com/twilio/status/?call=1"
    assert sent.form["StatusCallbackEvent"] == EVENTS
    assert (sent.get("MachineDetection"), sent.get("TimeLimit"), sent.get("Timeout")) == (
        "Enable",
        "600",
        "20",
    )
    state = emu.calls[call.sid]
    assert state.twiml == TWIML and state.status_callback_event == EVENTS
    assert state.time_limit == 600 and state.machine_detection == "Enable"


def test_fetch_and_update(emu, client):
    sid = create(client).sid
    assert client.calls(sid).fetch().status == "queued"

    new_twiml = '<Response><Play digits="ww1234#"/></Response>'
    emu.set_status(sid, "in-progress", answered_by="human")
    updated = client.calls(sid).update(twiml=new_twiml)
    assert updated.status == "in-progress" and emu.calls[sid].twiml == new_twiml
    assert updated.answered_by == "human" and updated.start_time is not None

    ended = client.calls(sid).update(status="completed")
    assert ended.status == "completed" and ended.end_time is not None
    assert ended.duration == "0"
    assert [u["Status"] for u in emu.calls[sid].updates if "Status" in u] == [["completed"]]
    with pytest.raises(TwilioRestException) as err:
        client.calls(sid).update(twiml=new_twiml)
    assert (err.value.status, err.value.code) == (400, 21220)


def test_hanging_up_a_ringing_call_cancels_it(emu, client):
    sid = create(client).sid
    emu.set_status(sid, "ringing")
    assert client.calls(sid).update(status="completed").status == "canceled"
    other = create(client).sid
    assert client.calls(other).update(status="canceled").status == "canceled"


def test_update_with_url_replaces_twiml(emu, client):
    sid = create(client).sid
    client.calls(sid).update(url="https://app.example.com/next", method="GET")
    assert (emu.calls[sid].url, emu.calls[sid].twiml, emu.calls[sid].method) == (
        "https://app.example.com/next",
        "",
        "GET",
    )


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"to": "4155550100"}, 21211),
        ({"to": "+0123"}, 21211),
        ({"from_": "5550006"}, 21212),
        ({"twiml": None}, 21205),
        ({"twiml": None, "url": "ftp://nope"}, 21205),
        ({"time_limit": "ten"}, 20001),
    ],
)
def test_create_validation_errors(emu, client, kw, code):
    args = {k: v for k, v in {"to": TO, "from_": FROM, "twiml": TWIML, **kw}.items() if v}
    with pytest.raises(TwilioRestException) as err:
        client.calls.create(**args)
    assert (err.value.status, err.value.code) == (400, code)
    assert not emu.calls and emu.requests[-1].status == 400


def test_from_must_be_owned_when_configured(emu, client):
    emu.owned_numbers = {"+15005550001"}
    with pytest.raises(TwilioRestException) as err:
        create(client)
    assert err.value.code == 21210
    assert create(client, from_="+15005550001").status == "queued"


def test_unknown_call_is_404(emu, client):
    with pytest.raises(TwilioRestException) as err:
        client.calls("CA" + "0" * 32).fetch()
    assert (err.value.status, err.value.code) == (404, 20404)


def test_bad_credentials_are_401(served, emu):
    bad = Client(SID, "wrong")
    bad.api.base_url = served[1].base_url
    with pytest.raises(TwilioRestException) as err:
        create(bad)
    assert (err.value.status, err.value.code) == (401, 20003)
    assert not emu.calls and emu.requests[-1].status == 401


def test_queued_errors_and_faults(emu, client):
    emu.fail_next(400, 21211, "The 'To' number is not a valid phone number.", method="POST")
    with pytest.raises(TwilioRestException) as err:
        create(client)
    assert err.value.code == 21211 and "not a valid phone number" in err.value.msg
    assert create(client).status == "queued"

    emu.faults = Faults(status=503, times=1)
    with pytest.raises(TwilioRestException) as err:
        create(client)
    assert (err.value.status, err.value.code) == (503, 20503)

    emu.faults = Faults(latency_ms=150, times=1)
    start = time.perf_counter()
    create(client)
    assert time.perf_counter() - start >= 0.15


def test_hooks_drive_the_call(served, emu, client):
    seen: list[tuple[str, str]] = []

    async def ring(call: CallState, rec: RecordedRequest) -> None:
        seen.append(("create", rec.get("To")))
        await asyncio.sleep(0.01)
        emu.set_status(call.sid, "ringing")

    async def updated(call: CallState, rec: RecordedRequest) -> None:
        seen.append(("update", call.status))

    emu.on_create.append(ring)
    emu.on_update.append(updated)
    sid = create(client).sid
    asyncio.run_coroutine_threadsafe(emu.drain(), served[1].loop).result(2)
    assert client.calls(sid).fetch().status == "ringing"
    client.calls(sid).update(status="completed")
    asyncio.run_coroutine_threadsafe(emu.drain(), served[1].loop).result(2)
    assert seen == [("create", TO), ("update", "canceled")]


def test_list_filters_by_status(emu, client):
    first, second = create(client).sid, create(client).sid
    emu.set_status(second, "completed")
    assert [c.sid for c in client.calls.list(status="completed")] == [second]
    assert {c.sid for c in client.calls.list()} == {first, second}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # twilio 9.13 uses aiohttp BasicAuth
async def test_async_sdk_in_the_same_loop():
    emulator = TwilioRestEmulator(account_sid=SID, auth_token=TOKEN)
    async with emulator.server() as srv:
        http = AsyncTwilioHttpClient()
        c = Client(SID, TOKEN, http_client=http)
        c.api.base_url = srv.base_url
        try:
            call = await c.calls.create_async(
                to=TO, from_=FROM, twiml=TWIML, status_callback_event=EVENTS
            )
            assert (await c.calls(call.sid).fetch_async()).status == "queued"
            await c.calls(call.sid).update_async(status="completed")
        finally:
            await http.close()
    assert emulator.calls[call.sid].status == "canceled"
    assert emulator.requests[0].form["StatusCallbackEvent"] == EVENTS


def test_cli_serves_on_the_requested_port():
    proc = subprocess.Popen(
        [sys.executable, "-m", "calls.sandbox.emulators.twilio_rest", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("twilio rest emulator listening on http://127.0.0.1:")
    finally:
        proc.terminate()
        proc.wait(5)
