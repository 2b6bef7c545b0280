"""`manage.py call` on the sandbox carrier (status callbacks reach a live Django server), and
`manage.py sandbox_carrier` as its own process."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from calls import services
from calls.models import Call
from calls.sandbox.carrier import SandboxCarrier
from calls.sandbox.scenario import parse
from calls.telephony import client

ROOT = Path(__file__).resolve().parents[2]
VARS = ["--var", "applicant_name=Jordan Lee", "--var", "position=Network Engineer"]
TO = "+14155550177"


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("call", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        code = exc.returncode
        err.write(str(exc))
    except SystemExit as exc:  # an outcome other than completed: a plain last line and its code
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def sandbox(settings, live_server, personas):
    """The carrier in a thread; the server that receives its callbacks is a live Django."""
    carrier = SandboxCarrier(
        account_sid=settings.TWILIO_ACCOUNT_SID, auth_token=settings.TWILIO_AUTH_TOKEN,
        voice="synthetic",
    ).start_in_thread()  # fmt: skip
    settings.TWILIO_API_BASE_URL = carrier.base_url
    settings.PUBLIC_BASE_URL = live_server.url
    client.reset()
    yield carrier
    carrier.stop()
    client.reset()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_without_a_carrier_it_explains_the_sandbox(settings, personas):
    settings.TWILIO_API_BASE_URL = ""
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.SANDBOX_CARRIER_PORT = free_port()  # nothing listens there
    code, _, err = run("myra-recruiting", TO, *VARS)
    assert code == 2
    assert "python manage.py sandbox_carrier --port 8099" in err
    assert "TWILIO_API_BASE_URL=http://127.0.0.1:8099" in err and "make run" in err
    assert not Call.objects.exists()


def test_it_finds_the_carrier_make_run_starts_in_the_server(settings, live_server, personas):
    carrier = SandboxCarrier(
        account_sid=settings.TWILIO_ACCOUNT_SID, auth_token=settings.TWILIO_AUTH_TOKEN,
        voice="synthetic",
    ).start_in_thread()  # fmt: skip
    try:
        settings.TWILIO_API_BASE_URL = ""
        settings.SANDBOX_CARRIER_PORT = carrier.server.port
        settings.PUBLIC_BASE_URL = live_server.url
        carrier.plan(TO, parse({"answer": "busy", "ring": 0.1}, "b"))
        code, out, _ = run("myra-recruiting", TO, *VARS, "--follow")
        assert code == 4 and f"via sandbox {carrier.base_url}" in out and "status  busy" in out
    finally:
        carrier.stop()
        client.reset()


@pytest.mark.django_db
def test_input_errors_are_reported(settings, personas):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"
    assert "known: acme-billing, billing-advocate" in run("nobody", TO)[2]
    assert "--var takes NAME=VALUE" in run("myra-recruiting", TO, "--var", "oops")[2]
    assert "not a valid phone number" in run("myra-recruiting", "+1555", *VARS)[2]
    assert "missing required variable" in run("myra-recruiting", TO)[2]


def test_a_completed_call_exits_zero(sandbox):
    # The live test server speaks HTTP only: the stream cannot open, so the TwiML ends and the
    # carrier completes the call, as Twilio would.
    sandbox.plan(TO, parse({"ring": 0.1, "steps": ["silent"]}, "quick"))
    code, out, err = run("myra-recruiting", TO, *VARS, "--follow")
    assert code == 0, err
    assert "callee scenario: quick" in out
    lines = [line.strip() for line in out.splitlines()]
    assert lines[1] == "status  queued" and lines[-2] == "status  completed"
    assert lines[-1].startswith("call completed")
    call = Call.objects.get()
    assert call.status == "completed" and call.twilio_sid in out


@pytest.mark.parametrize("outcome", ["busy", "no-answer"])
def test_unanswered_calls_exit_non_zero(sandbox, outcome):
    if outcome == "busy":  # chosen over HTTP, as from another process
        args = ["--scenario", "busy"]
    else:
        sandbox.plan(TO, parse({"answer": "no-answer", "ring": 0.2}, "no-answer"))
        args = []
    code, out, err = run("myra-recruiting", TO, *VARS, *args, "--follow")
    assert code == {"busy": 4, "no-answer": 5}[outcome] and not err
    assert out.splitlines()[-1] == f"call {outcome}: " + {
        "busy": "the line was busy, nobody answered", "no-answer": "it rang, nobody answered",
    }[outcome]  # fmt: skip
    assert f"status  {outcome}" in out
    assert Call.objects.get().status == outcome


def test_an_unknown_scenario_is_refused(sandbox):
    code, _, err = run("myra-recruiting", TO, *VARS, "--scenario", "nope")
    assert code == 1 and "no scenario 'nope'" in err
    assert not Call.objects.exists()


def test_without_follow_it_returns_once_placed(sandbox):
    sandbox.plan(TO, parse({"answer": "busy", "ring": 0.1}, "b"))
    code, out, _ = run("myra-recruiting", TO, *VARS)
    assert code == 0 and "rerun with --follow" in out
    sandbox.wait_ended_sync(Call.objects.get().twilio_sid, 5)


@pytest.mark.django_db
def test_follow_prints_each_turn_with_its_latency(personas):
    from calls.management.commands.call import Command

    call = services.call_create(
        persona=personas["myra-recruiting"],
        to=TO,
        variables={"applicant_name": "A", "position": "B"},
    )
    services.turn_append(call_id=call.pk, speaker="agent", text="Hi, this is Myra.")
    services.turn_append(call_id=call.pk, speaker="caller", text="Yes, speaking.")
    services.turn_append(
        call_id=call.pk, speaker="agent", text="Great. Are you still interested?",
        heard_text="Great.", interrupted=True,
        latency={"stt_final_ms": 310.0, "llm_request_ms": 312.0, "llm_first_token_ms": 330.0,
                 "tts_request_ms": 335.0, "tts_first_byte_ms": 420.0, "voice_to_voice_ms": 820.0},
    )  # fmt: skip
    services.call_set_status(call_id=call.pk, status="in-progress")
    services.call_set_status(call_id=call.pk, status="completed", duration=12)
    out = io.StringIO()
    command = Command(stdout=out)
    command._follow(call, timeout=5, poll=0.01)
    lines = out.getvalue().splitlines()
    assert lines[0].split(None, 1) == ["agent", "Hi, this is Myra."]
    assert lines[1].split(None, 1) == ["caller", "Yes, speaking."]
    assert lines[2].strip() == (
        "agent  Great. [interrupted; meant: Great. Are you still interested?]"
        "  [820 ms: stt 310, llm 18, tts 85]"
    )
    assert lines[3].split() == ["status", "completed"]  # after the turns stored before the end
    assert lines[-1] == "call completed, 12 s"


@pytest.mark.slow
def test_sandbox_carrier_runs_as_its_own_process(tmp_path):
    env = {**os.environ, "TWILIO_ACCOUNT_SID": "AC" + "7" * 32, "TWILIO_AUTH_TOKEN": "proc-token"}
    (tmp_path / "extra.yaml").write_text('number: "+14155550188"\nanswer: busy\n')
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox_carrier", "--port", "0", "--voice", "synthetic",
         "--scenario-dir", str(tmp_path)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = proc.stdout.readline()
        assert first.startswith("sandbox carrier listening on http://127.0.0.1:"), first
        base = first.rsplit(" ", 1)[1].strip()
        request = urllib.request.Request(
            f"{base}/sandbox/scenarios.json",
            headers={"Authorization": "Basic " + base64.b64encode(
                f"AC{'7' * 32}:proc-token".encode()).decode()},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=5) as response:
            names = {s["name"]: s["number"] for s in json.load(response)}
        assert names["extra"] == "+14155550188" and names["ivr"] == "+14155550107"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, proc.stderr.read()
