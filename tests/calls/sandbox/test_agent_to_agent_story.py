"""The sandbox's agent-to-agent number tells the story the README tells: billing-advocate (Alex)
calls +14155550108, which `make run` maps to acme-billing (Riley, a persona written to receive
calls). Riley greets alone, Alex waits and explains, Riley asks for the account number, refunds
the charge and gives a reference number; Alex says goodbye and hangs up. Both calls are in the API.

Through the real server: a daphne subprocess with the sandbox carrier inside it, the local engines
and a fresh SQLite file, the number mapped as the Makefile maps it; the call is placed with
`manage.py call --follow`, as the README says."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from datetime import datetime

import httpx
import pytest

from tests.support.liveserver import ROOT, free_port, live_server, sandbox_env, tail
from tests.support.speech import LOCAL_SPEECH

NUMBER = "+14155550108"
CALLER, CALLEE = "billing-advocate", "acme-billing"
VARIABLES = {"user_name": "Dana Smith", "merchant": "Acme Telecom", "account_number": "4417 2201",
             "charge_date": "November 3", "amount": "$89"}  # fmt: skip
ACCOUNT_SID, AUTH_TOKEN = "AC" + "ab" * 16, "a2a-story-token"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not LOCAL_SPEECH, reason="local TTS/STT not installed (make install)"),
    pytest.mark.timeout(240),
]


def makefile_inbound_personas() -> str:
    """`make run`'s default INBOUND_PERSONAS."""
    found = re.search(r"INBOUND_PERSONAS:-([^}]+)\}", (ROOT / "Makefile").read_text())
    assert found, "the Makefile no longer maps a sandbox number to a persona"
    return found.group(1)


def manage(env: dict, *args: str) -> str:
    run = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run.stdout


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_billing_advocate_calls_the_billing_line_and_riley_answers(tmp_path):
    assert makefile_inbound_personas() == f"{NUMBER}={CALLEE}"
    port = free_port()
    env = sandbox_env(tmp_path, port, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                      INBOUND_PERSONAS=makefile_inbound_personas(),
                      DJANGO_SUPERUSER_PASSWORD="pw-123456")  # fmt: skip
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "load_personas", "fixtures/personas.yaml")
    manage(env, "createsuperuser", "--noinput", "--username", "op", "--email", "op@example.com")
    token = re.search(r"Generated token (\w+)", manage(env, "drf_create_token", "op")).group(1)
    log = tmp_path / "server.log"
    with live_server(env, port, log) as carrier_url:
        run = subprocess.run(
            [sys.executable, "manage.py", "call", CALLER, NUMBER,
             *[f"--var={k}={v}" for k, v in VARIABLES.items()], "--follow", "--timeout", "150"],
            cwd=ROOT, env={**env, "TWILIO_API_BASE_URL": carrier_url}, capture_output=True,
            text=True, timeout=200,
        )  # fmt: skip
        print(run.stdout)
        out = f"{run.stdout}\n{run.stderr}\n--- server log ---\n{tail(log)}"
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                           headers={"Authorization": f"Token {token}"}, timeout=30)  # fmt: skip
        with api:
            calls = {c["direction"]: c for c in api.get("/api/calls/").json()["results"]}
            turns = {d: api.get(f"/api/calls/{c['id']}/turns/").json() for d, c in calls.items()}
    assert run.returncode == 0, out
    outbound, inbound = calls["outbound"], calls["inbound"]
    assert outbound["persona"] == CALLER and inbound["persona"] == CALLEE, out
    assert inbound["to_number"] == NUMBER and inbound["status"] == "completed", inbound

    # Riley greets, alone: Alex says nothing until the greeting has ended.
    greeting = turns["inbound"][0]
    assert greeting["speaker"] == "agent" and not greeting["interrupted"], turns["inbound"]
    assert greeting["text"].startswith("Thank you for calling Acme Telecom billing. This is Riley.")
    alex = [t for t in turns["outbound"] if t["speaker"] == "agent"]
    assert when(alex[0]["started_at"]) > when(greeting["ended_at"]), (alex[0], greeting)
    assert alex[0]["text"].startswith("This is Alex.") and not alex[0]["interrupted"], alex[0]

    # The story: the account number asked for and given, the refund, a reference number, goodbye.
    riley_said = " ".join(t["text"] for t in turns["inbound"] if t["speaker"] == "agent")
    alex_heard = " ".join(t["text"] for t in turns["outbound"] if t["speaker"] == "caller")
    assert "May I have the account number please?" in riley_said, out
    assert "account number is" in " ".join(t["text"] for t in alex), out
    assert "refunded" in alex_heard.lower() and "reference number" in alex_heard.lower(), out
    assert alex[-1]["text"] == "Thank you for sorting this out. Goodbye!", out
    assert "tool  end_call" in run.stdout and outbound["status"] == "completed", out
    assert outbound["current_stage"] == "close" and inbound["current_stage"] == "reference", out

    # Replies come when the other agent has finished, not seconds later.
    replies = [t["latency"]["voice_to_voice_ms"] for d in turns for t in turns[d]
               if t["speaker"] == "agent" and (t["latency"] or {}).get("voice_to_voice_ms")]  # fmt: skip
    print(f"voice-to-voice of the {len(replies)} replies (ms): {sorted(replies)}")
    assert len(replies) >= 5 and statistics.median(replies) < 4000, (replies, out)
