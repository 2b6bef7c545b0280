"""Agent-to-agent: the callee persona answers a second, inbound call into the server (bridge.py).

On loopback with a small fake app (synthetic audio, fast): the signed voice webhook, the two
streams joined both ways at real time, digits relayed, a hang-up on either side ending both,
a rejected or unroutable callee.

Through the real server: a daphne subprocess on a fresh SQLite file runs the sandbox carrier
inside it (SANDBOX_CARRIER=1) and the local providers; INBOUND_PERSONAS maps the agent-to-agent
scenario's number to its persona, acme-billing. Myra calls that number through `POST /api/calls/`; the
carrier delivers the callee's side to the same server as an inbound call and bridges the two
streams. The test checks both calls through the API: their turns, what each agent recognised of
the other, an operator's `say` on the inbound call, and that one hang-up ends both.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import logging
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from calls.sandbox.bridge import CalleeLeg, End, Switchboard
from calls.sandbox.carrier import SandboxCarrier
from calls.sandbox.emulators.base import EmulatorServer, rms, speech_like
from calls.sandbox.party import make_party
from calls.sandbox.persona_callee import PersonaCallee
from calls.sandbox.scenario import parse
from tests.support.liveserver import ROOT, free_port, live_server, sandbox_env, tail
from tests.support.sandbox_app import (
    EVENTS,
    FROM,
    SID,
    TO,
    TOKEN,
    AppStream,
    FakeApp,
    Line,
    stream_twiml,
)
from tests.support.wait import poll_until

NUMBER = "+14155550108"  # the agent-to-agent scenario's number
CALLER, CALLEE = "myra-recruiting", "acme-billing"  # the scenario's persona: the number reaches it
VARIABLES = {"applicant_name": "Jordan Lee", "position": "Network Engineer"}
ACCOUNT_SID = "AC" + "a2" * 16
AUTH_TOKEN = "agent-to-agent-token"
SAY = "This is your supervisor. Please confirm the reference number."
TERMINAL = {"completed", "busy", "no-answer", "failed", "canceled"}
SETUP = """
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
call_command("migrate", "--noinput", verbosity=0)
call_command("load_personas", "fixtures/personas.yaml", verbosity=0)
user = get_user_model().objects.create_superuser("operator", password=None)
Token.objects.create(user=user, key=os.environ["A2A_TOKEN"])
"""

LOCAL_SPEECH = all(
    importlib.util.find_spec(m) for m in ("hibari", "faster_whisper", "ctranslate2", "webrtcvad")
)
needs_local_speech = pytest.mark.skipif(
    not LOCAL_SPEECH, reason="local TTS/STT not installed (make install)"
)


# --- the bridge on loopback -------------------------------------------------------------------
class ServerApp(FakeApp):
    """FakeApp plus the voice webhook: answers an incoming call with a stream (or `answer`)."""

    def __init__(self) -> None:
        super().__init__()
        self.webhooks: list[tuple[dict, bool]] = []
        self.answer = ""

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/twilio/voice/", self._voice)
        return app

    @property
    def voice_url(self) -> str:
        return f"{self.server.base_url}/twilio/voice/"

    async def _voice(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        signed = RequestValidator(TOKEN).validate(str(request.url), form, signature)
        self.webhooks.append((form, signed))
        body = self.answer or stream_twiml(self.stream_url, call="inbound")
        return web.Response(text=body, content_type="text/xml")


@pytest.fixture
async def bridged():
    """A Line whose app also answers incoming calls; TO reaches the persona "the-callee"."""
    app = ServerApp()
    async with EmulatorServer(app.app()) as server:
        app.server = server
        board = Switchboard(voice_url=app.voice_url, personas={TO: "the-callee"})
        async with SandboxCarrier(
            account_sid=SID, auth_token=TOKEN, voice="synthetic", switchboard=board
        ) as carrier:
            sdk = Client(SID, TOKEN)
            sdk.api.base_url = carrier.base_url
            yield Line(app, carrier, sdk)


async def _place(line: Line) -> str:
    line.carrier.plan(TO, parse({"ring": 0.1, "persona": "the-callee"}, "a2a"))
    call = await asyncio.to_thread(
        line.client.calls.create, to=TO, from_=FROM,
        twiml=stream_twiml(line.app.stream_url, call="outbound"),
        status_callback=line.app.callback_url(), status_callback_event=EVENTS,
    )  # fmt: skip
    return call.sid


async def _streams(app: FakeApp) -> tuple[AppStream, AppStream]:
    """(the outbound call's stream, the inbound leg's), by their `call` parameter."""
    found: dict[str, AppStream] = {}
    while len(found) < 2:
        s = await asyncio.wait_for(app.streams.get(), 5)
        start = (await s.recv("start")).data["start"]
        found[start["customParameters"]["call"]] = s
    return found["outbound"], found["inbound"]


async def _loud_after(s: AppStream, seen: int, limit: float = 3.0) -> float:
    """When the first loud frame after the first `seen` ones arrived (loop clock)."""

    async def watch() -> float:
        nonlocal seen
        while True:
            while seen < len(s.media):
                frame = s.media[seen]
                seen += 1
                if rms(base64.b64decode(frame.data["media"]["payload"])) > 500:
                    return frame.t
            await s.next_media()

    return await asyncio.wait_for(watch(), limit)


async def test_the_callee_answers_as_a_signed_inbound_call_and_the_streams_are_joined(bridged):
    carrier, client, app = bridged.carrier, bridged.client, bridged.app
    sid = await _place(bridged)
    out, inbound = await _streams(app)
    [(form, signed)] = app.webhooks
    leg_sid = form["CallSid"]
    assert signed and re.fullmatch(r"CA[0-9a-f]{32}", leg_sid) and leg_sid != sid
    assert (form["AccountSid"], form["From"], form["To"]) == (SID, FROM, TO)
    assert (form["CallStatus"], form["Direction"]) == ("ringing", "inbound")
    leg = carrier.calls[leg_sid]
    assert isinstance(leg, CalleeLeg) and leg.state.status == "in-progress"
    assert app.statuses()[:3] == ["initiated", "ringing", "in-progress"]

    # What one agent plays is the other call's inbound audio, at once and at real time.
    loop = asyncio.get_running_loop()
    for speaker, listener in ((out, inbound), (inbound, out)):
        seen = len(listener.media)
        await speaker.send_audio(speech_like(600))
        sent = loop.time()
        assert await _loud_after(listener, seen) - sent < 0.15
    await asyncio.sleep(0.7)
    assert rms(inbound.inbound_audio()[-800:]) < 100  # silence again once the audio has played

    # Digits the outbound agent plays reach the inbound call as DTMF; its stream reconnects.
    redirect = stream_twiml(app.stream_url, call="outbound").replace(
        "<Response>", '<Response><Play digits="12"/>'
    )
    await asyncio.to_thread(client.calls(sid).update, twiml=redirect)
    digits = [(await inbound.recv("dtmf", limit=3)).data["dtmf"]["digit"] for _ in range(2)]
    assert digits == ["1", "2"]
    out2 = await asyncio.wait_for(app.streams.get(), 5)
    await out2.recv("start")
    seen = len(inbound.media)
    await out2.send_audio(speech_like(300))
    await _loud_after(inbound, seen)

    # The inbound call's server hangs up: both streams stop, both calls end.
    await asyncio.to_thread(client.calls(leg_sid).update, status="completed")
    await inbound.recv("stop")
    await out2.recv("stop")
    call = await carrier.wait_ended(sid)
    assert (call.ended_by, leg.ended_by) == ("peer", "app")
    assert app.statuses() == ["initiated", "ringing", "in-progress", "completed"]
    report = call.report()["callee"]
    assert report["bridge"] == "caller" and report["peer_sid"] == leg_sid
    assert report["frames_said"] >= 25 and report["dropped"] == 0
    assert call.errors == leg.errors == []


async def test_the_outbound_hanging_up_ends_the_inbound_leg(bridged):
    carrier, client, app = bridged.carrier, bridged.client, bridged.app
    sid = await _place(bridged)
    _out, inbound = await _streams(app)
    await asyncio.to_thread(client.calls(sid).update, status="completed")
    await inbound.recv("stop")
    leg = carrier.calls[app.webhooks[0][0]["CallSid"]]
    await asyncio.wait_for(leg.ended.wait(), 3)
    assert leg.ended_by == "peer" and leg.state.status == "completed"


async def test_a_rejected_callee_is_busy_and_no_stream_opens(bridged):
    carrier, app = bridged.carrier, bridged.app
    app.answer = "<Response><Reject/></Response>"
    sid = await _place(bridged)
    call = await carrier.wait_ended(sid)
    assert call.state.status == "busy" and app.streams.empty()
    assert app.statuses() == ["initiated", "ringing", "busy"]
    leg = carrier.calls[app.webhooks[0][0]["CallSid"]]
    assert leg.state.status == "busy" and leg.ended_by == "app"


def test_the_number_that_reaches_a_persona():
    board = Switchboard("http://x/twilio/voice/", {"+1001": "a", "+1002": "b"}, default="c")
    assert board.number_for("a", "+1001") == "+1001"
    assert board.number_for("b", "+1001") == "+1002"  # any number mapped to it
    assert board.number_for("c", "+1009") == "+1009"  # the default answers unmapped numbers
    assert board.number_for("c", "+1001") == "" and board.number_for("z", "+1009") == ""


def test_without_a_number_the_described_persona_is_the_fallback():
    def party(persona: dict, board: Switchboard):
        carrier = SimpleNamespace(switchboard=board, record=False, voice_for=lambda _: None)
        call = SimpleNamespace(
            scenario=parse({"persona": persona}, "a2a"), carrier=carrier,
            state=SimpleNamespace(to=TO), sid="CA1", _callee_hung_up=lambda: None,
        )  # fmt: skip
        return make_party(call)

    mapped = Switchboard("http://x/twilio/voice/", {TO: "sarah"})
    both = {"slug": "sarah", "agent_name": "Dana"}
    assert isinstance(party(both, mapped), End)
    assert isinstance(party(both, Switchboard("http://x/twilio/voice/")), PersonaCallee)
    unroutable = party({"slug": "sarah"}, Switchboard("http://x/twilio/voice/"))
    assert isinstance(unroutable, End) and unroutable.bridge.number == ""


async def test_an_unroutable_persona_fails_the_call(bridged):
    carrier, app = bridged.carrier, bridged.app
    carrier._switchboard = Switchboard(voice_url=app.voice_url)
    sid = await _place(bridged)
    call = await carrier.wait_ended(sid)
    assert call.state.status == "failed" and not app.webhooks
    assert "no number reaches it" in call.errors[0].message


# --- through the real server ------------------------------------------------------------------
def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower().replace("’", "'")))


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[httpx.Client, httpx.Client, Path]]:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll otherwise
    port, token = free_port(), secrets.token_hex(20)
    env = sandbox_env(tmp_path, port, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                      INBOUND_PERSONAS=f"{NUMBER}={CALLEE}", A2A_TOKEN=token)  # fmt: skip
    setup = subprocess.run(
        [sys.executable, "-c", f"import os, django\ndjango.setup()\n{SETUP}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert setup.returncode == 0, setup.stdout + setup.stderr
    log = tmp_path / "daphne.log"
    with live_server(env, port, log) as carrier_url:
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Token {token}"},
            timeout=30,
        )  # fmt: skip
        carrier = httpx.Client(base_url=carrier_url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=30)
        with api, carrier:
            yield api, carrier, log


def _ok(response: httpx.Response, status: int = 200) -> dict | list:
    assert response.status_code == status, f"{response.request.url}: {response.text[:500]}"
    return response.json() if response.content else {}


def _until(what: str, check: Callable[[], object], limit: float, log: Path, state=lambda: ""):
    return poll_until(check, limit, what=what, state=lambda: f"{state()}\n{tail(log)}")


@pytest.mark.e2e
@needs_local_speech
@pytest.mark.timeout(120)
def test_two_personas_talk_on_two_supervisable_calls(server):
    api, carrier, log = server
    t0 = time.monotonic()
    outbound = _ok(
        api.post("/api/calls/", json={"persona": CALLER, "to": NUMBER, "variables": VARIABLES}),
        201,
    )

    def turns(call: dict, speaker: str) -> list[str]:
        listed = _ok(api.get(f"/api/calls/{call['id']}/turns/"))
        return [t["text"] for t in listed if t["speaker"] == speaker]

    def inbound_call() -> dict | None:
        listed = _ok(api.get("/api/calls/", params={"direction": "inbound"}))["results"]
        return listed[0] if listed else None

    inbound = _until("the inbound call", inbound_call, 15, log)
    assert inbound["persona"] == CALLEE and inbound["to_number"] == NUMBER
    assert inbound["from_number"] == outbound["from_number"]

    def transcript() -> str:
        return "\n".join(
            f"{name} {speaker}: {turns(call, speaker)}"
            for name, call in (("outbound", outbound), ("inbound", inbound))
            for speaker in ("agent", "caller")
        )

    def heard(listener: dict, speaker: dict, enough: int) -> bool:
        """A caller turn of `listener` holds `enough` words `speaker`'s agent said (its STT)."""
        said = words(" ".join(turns(speaker, "agent")))
        return any(len(words(h) & said) >= enough for h in turns(listener, "caller"))

    # Riley's caller turns are Myra's words, and Myra's are (some of) Riley's: both greet at once,
    # over each other, so Whisper may catch only the start of a line ("Hi, this is my...").
    _until("Riley hearing Myra", lambda: heard(inbound, outbound, 3), 30, log, transcript)
    _until("Myra hearing Riley", lambda: heard(outbound, inbound, 2), 15, log, transcript)
    assert turns(outbound, "agent")[0].startswith("Hi, this is Myra from Escade Networks.")
    assert turns(inbound, "agent")[0].startswith("Thank you for calling Acme Telecom billing.")

    # The operator speaks on the inbound call through the normal control path; Myra hears it.
    # Whisper may mishear single words ("supervise"), so hearing means sharing 3 of its words.
    before = len(turns(outbound, "caller"))
    _ok(api.post(f"/api/calls/{inbound['id']}/say/", json={"text": SAY}), 202)
    _until("the supervisor's line on the inbound call",
           lambda: SAY in turns(inbound, "agent"), 15, log, transcript)  # fmt: skip
    _until("Myra hearing the supervisor",
           lambda: any(len(words(t) & words(SAY)) >= 3 for t in turns(outbound, "caller")[before:]),
           10, log, transcript)  # fmt: skip

    # The operator hangs up the inbound call: the carrier ends both (`stop` on both streams).
    _ok(api.post(f"/api/calls/{inbound['id']}/hangup/"), 202)

    def both_ended() -> list[dict] | None:
        calls = [_ok(api.get(f"/api/calls/{c['id']}/")) for c in (outbound, inbound)]
        return calls if all(c["status"] in TERMINAL and c["end_reason"] for c in calls) else None

    ended_out, ended_in = _until("both calls ending", both_ended, 15, log, transcript)
    assert ended_out["status"] == ended_in["status"] == "completed", (ended_out, ended_in)
    assert ended_in["end_reason"] == "hung up by operator"
    leg = _ok(carrier.get(f"/sandbox/calls/{ended_in['twilio_sid']}.json"))
    assert leg["direction"] == "inbound" and leg["ended_by"] == "app", leg
    assert leg["callee"]["peer_sid"] == ended_out["twilio_sid"] and leg["errors"] == []
    # Audio went both ways over the bridge: Riley's lines into Myra's call (several seconds), and
    # Myra's into Riley's (at least her greeting's start, ~1 s, when both greet at once).
    assert leg["streams"][0]["frames_received"] > 100 and leg["callee"]["frames_said"] > 50
    first = _ok(carrier.get(f"/sandbox/calls/{ended_out['twilio_sid']}.json"))
    assert first["ended_by"] == "peer" and first["errors"] == [], first
    assert [c["status"] for c in first["callbacks"]][-1] == "completed"
    print(f"\n{transcript()}\nagent-to-agent call: {time.monotonic() - t0:.1f} s")
