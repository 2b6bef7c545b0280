"""A whole phone call, end to end, on one machine: `POST /api/calls/` on the real server.

The server is a daphne subprocess on a loopback port with the sandbox carrier inside it
(SANDBOX_CARRIER=1) and the local providers (no API keys: faster-whisper, the scripted dialogue,
hibari, WebRTC VAD), on a fresh SQLite file. The carrier places the call, sends signed status
callbacks over HTTP and opens the Media Streams WebSocket to the server like Twilio does; its
simulated callee plays fixtures/scenarios/e2e.yaml with a real voice, talks over the agent once,
presses a key and says goodbye; the agent hangs up with its end_call tool.

One call (~40 s of real time) is placed by a module fixture; the tests check what it left behind
through the API: the status sequence, the turns (also while the call was running), the barge-in,
the events and the stereo recording.
"""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import subprocess
import sys
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from calls.sandbox.scenario import SCENARIO_DIR
from calls.sandbox.scenario import load as load_scenario
from tests.support.liveserver import ROOT, free_port, live_server, sandbox_env, tail
from tests.support.speech import LOCAL_SPEECH

TO = "+14155550160"  # no scenario's own number: /sandbox/next plans "e2e" for it
SCENARIO = "e2e"
PERSONA = "myra-recruiting"
VARIABLES = {"applicant_name": "Jordan Lee", "position": "Network Engineer"}
ACCOUNT_SID = "AC" + "e2" * 16
AUTH_TOKEN = "e2e-sandbox-token"
TERMINAL = {"completed", "busy", "no-answer", "failed", "canceled"}
# Limits, each failing with what went wrong; all together they stay under the test's timeout.
READY_LIMIT_S = 45.0  # daphne answering (it loads the local engines first: a few seconds)
CALL_LIMIT_S = 75.0  # the scenario takes ~40 s of real time
FINALISE_LIMIT_S = 15.0  # after the end status: last turns, recording, end reason
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not LOCAL_SPEECH, reason="local TTS/STT not installed (make install)"),
    pytest.mark.timeout(150),
]


def words(text: str) -> list[str]:
    """Lowercase words, punctuation dropped ("That's all." -> ["that's", "all"])."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("’", "'"))


def has_words(text: str, expected: str) -> bool:
    have = set(words(text))
    return all(w in have for w in words(expected))


# --- the server ---------------------------------------------------------------------------------
@dataclass
class Server:
    api: httpx.Client
    carrier: httpx.Client
    log: Path


def _manage(env: dict[str, str], *args: str) -> None:
    run = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, f"manage.py {' '.join(args)}:\n{run.stdout}{run.stderr}"


def _set_up_database(env: dict[str, str]) -> None:
    """migrate, load_personas, ensure_operator. The last one also writes var/operator_token, the
    token `make run` prints: the test uses the same key (in its own database) when there is one,
    and puts the file back as it was."""
    token_file = ROOT / "var" / "operator_token"
    before = token_file.read_bytes() if token_file.exists() else None
    try:
        _manage(env, "migrate", "--noinput", "-v0")
        _manage(env, "load_personas", "fixtures/personas.yaml")
        _manage(env, "ensure_operator")
    finally:
        if before is None:
            token_file.unlink(missing_ok=True)
        elif token_file.read_bytes() != before:
            token_file.write_bytes(before)


def _operator_token() -> str:
    try:
        existing = (ROOT / "var" / "operator_token").read_text().strip()
    except OSError:
        existing = ""
    return existing if re.fullmatch(r"[0-9a-f]{40}", existing) else secrets.token_hex(20)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    port, token = free_port(), _operator_token()
    env = sandbox_env(work, port, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                      OPERATOR_TOKEN=token)  # fmt: skip
    _set_up_database(env)
    log = work / "daphne.log"
    httpx_log = logging.getLogger("httpx")
    level = httpx_log.level
    httpx_log.setLevel(logging.WARNING)  # not a log line per poll in a failure's report
    try:
        with live_server(env, port, log, ready_s=READY_LIMIT_S) as carrier_url:
            api = httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Token {token}"},
                timeout=30,
            )
            carrier = httpx.Client(base_url=carrier_url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=30)
            with api, carrier:
                yield Server(api, carrier, log)
    finally:
        httpx_log.setLevel(level)


# --- the call -----------------------------------------------------------------------------------
@dataclass
class Finished:
    call: dict
    persona: dict
    turns: list[dict]
    events: list[dict]
    recording: httpx.Response
    report: dict  # what the carrier saw: GET /sandbox/calls/{sid}.json
    polled: list[dict] = field(default_factory=list)  # turns as the live feed returned them
    seen_live: list[dict] = field(default_factory=list)  # ... while the call was in progress
    log: Path | None = None

    def transcript(self) -> str:
        lines = [f"{t['seq']:>2} {t['speaker']:<6} {t['text']!r}"
                 + (f" [heard {t['heard_text']!r}]" if t["interrupted"] else "")
                 for t in self.turns]  # fmt: skip
        callee = self.report.get("callee", {})
        server = tail(self.log, 15) if self.log else ""
        return "\n".join([*lines, f"callee: {json.dumps(callee.get('log', []))}", server])

    def events_of(self, kind: str) -> list[dict]:
        return [e["payload"] for e in self.events if e["type"] == kind]


def _ok(response: httpx.Response, status: int = 200) -> httpx.Response:
    assert response.status_code == status, f"{response.request.url}: {response.text[:500]}"
    return response


@pytest.fixture(scope="module")
def finished(server: Server) -> Finished:
    api = server.api
    planned = _ok(server.carrier.post("/sandbox/next", data={"To": TO, "Scenario": SCENARIO}))
    assert planned.json() == {"to": TO, "scenario": SCENARIO}
    persona = _ok(api.get(f"/api/personas/{PERSONA}/")).json()

    created = _ok(
        api.post("/api/calls/", json={"persona": PERSONA, "to": TO, "variables": VARIABLES}), 201
    ).json()
    call_id = created["id"]
    assert created["status"] == "queued" and created["to_number"] == TO

    # Follow the call as a live view does: new turns with ?after=<last seq>, then the status.
    polled: list[dict] = []
    seen_live: list[dict] = []
    deadline = time.monotonic() + CALL_LIMIT_S
    while True:
        after = polled[-1]["seq"] if polled else 0
        new = _ok(api.get(f"/api/calls/{call_id}/turns/", params={"after": after})).json()
        call = _ok(api.get(f"/api/calls/{call_id}/")).json()
        polled += new
        if call["status"] == "in-progress":  # fetched before this status: seen while running
            seen_live += new
        if call["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"call still {call['status']} after {CALL_LIMIT_S:.0f} s; turns: "
                        f"{[t['text'] for t in polled]}\n{tail(server.log)}")  # fmt: skip
        time.sleep(0.25)

    # The end status can come from the carrier's callback before the server has finished the
    # call: the last turns, then the recording, then our end reason (what the tests check).
    deadline = time.monotonic() + FINALISE_LIMIT_S
    while not (call["recording_url"] and call["end_reason"]) and time.monotonic() < deadline:
        time.sleep(0.25)
        call = _ok(api.get(f"/api/calls/{call_id}/")).json()
    after = polled[-1]["seq"] if polled else 0
    polled += _ok(api.get(f"/api/calls/{call_id}/turns/", params={"after": after})).json()

    report = _ok(server.carrier.get(f"/sandbox/calls/{call['twilio_sid']}.json")).json()
    return Finished(
        call=call,
        persona=persona,
        turns=_ok(api.get(f"/api/calls/{call_id}/turns/")).json(),
        events=_ok(api.get(f"/api/calls/{call_id}/events/")).json(),
        recording=api.get(f"/api/calls/{call_id}/recording/"),
        report=report,
        polled=polled,
        seen_live=seen_live,
        log=server.log,
    )


def render(template: str, persona: dict) -> str:
    values = {k: persona[k] for k in ("agent_name", "company", "role")} | VARIABLES
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), template)


def qa_answer(persona: dict, question: str) -> str:
    return next(e["answer"] for e in persona["qa_entries"] if e["question"] == question)


# --- what the call left behind ------------------------------------------------------------------
def test_the_status_goes_queued_ringing_in_progress_completed(finished):
    statuses = [p["status"] for p in finished.events_of("status")]
    assert statuses == ["queued", "ringing", "in-progress", "completed"], finished.events
    call = finished.call
    assert call["status"] == "completed" and call["answered_by"] == "human"
    assert call["answered_at"] and call["ended_at"] and call["duration"] >= 20
    assert call["end_reason"] == "agent ended the call", finished.transcript()
    # The carrier's signed callbacks all reached the server (a bad signature would be a 403).
    callbacks = finished.report["callbacks"]
    assert [c["status"] for c in callbacks] == ["initiated", "ringing", "in-progress", "completed"]
    assert all(c["http"] == 204 for c in callbacks), callbacks


def test_the_media_stream_ran_over_a_real_socket(finished):
    [stream] = finished.report["streams"]
    assert stream["params"]["call"] == finished.call["id"]
    assert stream["frames_received"] > 500 and stream["frames_sent"] > 500  # 20 ms frames
    assert stream["media_received"] < stream["frames_received"]  # several frames a message
    assert stream["marks_echoed"] >= 5 and stream["dtmf_sent"] == 1
    assert finished.report["errors"] == []
    starts = [p for p in finished.events_of("stream") if p.get("event") == "start"]
    assert [p["stream_sid"] for p in starts] == [stream["stream_sid"]]


def test_the_agent_greets_with_the_personas_first_message(finished):
    first = finished.turns[0]
    greeting = render(finished.persona["first_message"], finished.persona)
    assert greeting == "Hi, this is Myra from Escade Networks. Am I speaking with Jordan Lee?"
    assert (first["seq"], first["speaker"], first["text"]) == (1, "agent", greeting)
    assert not first["interrupted"]


def test_caller_and_agent_take_turns_with_the_callers_words_recognised(finished):
    turns, persona = finished.turns, finished.persona
    assert [t["seq"] for t in turns] == list(range(1, len(turns) + 1))
    speakers = [t["speaker"] for t in turns]
    assert speakers == ["agent"] + ["caller", "agent"] * 5, finished.transcript()
    exchanges = list(zip(turns[1::2], turns[2::2], strict=False))  # (caller, agent's reply)
    expected = [
        # caller said (key words, any case and punctuation)   the agent's reply says
        ("yes this is jordan speaking", "great are you still interested in the position"),
        ("yes still very interested", "great when you are free for a 30 minute interview"),
        ("salary range", qa_answer(persona, "What is the salary range?")),
        ("sorry free on thursday afternoon", "thank you do you have any questions about the role"),
        ("no that's all thank you goodbye", render(persona["goodbye"], persona)),
    ]
    assert len(exchanges) == len(expected)
    for (caller, agent), (said, reply) in zip(exchanges, expected, strict=True):
        assert has_words(caller["text"], said), (said, finished.transcript())
        assert has_words(agent["text"], reply), (reply, finished.transcript())
    # The callee's own record: it said its scenario's lines, in order.
    scenario = load_scenario(SCENARIO_DIR / f"{SCENARIO}.yaml")
    assert finished.report["callee"]["said"] == scenario.lines()


def test_talking_over_the_agent_stores_what_the_caller_heard(finished):
    answer = qa_answer(finished.persona, "What is the salary range?")
    [cut] = [t for t in finished.turns if t["interrupted"]]
    assert cut["speaker"] == "agent" and cut["text"] == answer
    heard = cut["heard_text"]
    assert heard and answer.startswith(heard) and len(heard) < len(answer), cut
    assert len(words(heard)) < len(words(answer))
    following = finished.turns[cut["seq"]]  # the next turn: what the caller said over it
    assert following["speaker"] == "caller" and has_words(following["text"], "thursday afternoon")
    # The carrier saw the agent yield: a `clear` soon after the callee started talking.
    [barge] = finished.report["callee"]["barge_ins"]
    assert barge["kind"] == "barge_in" and barge["agent_stopped"], barge
    assert len(finished.report["callee"]["clears"]) == 1


def test_the_key_press_is_an_event(finished):
    assert {"digit": "1"} in finished.events_of("dtmf"), finished.events


def test_goodbye_ends_the_call_with_the_end_call_tool(finished):
    tools = [t["name"] for t in finished.events_of("tool_call")]  # set_stage ones too
    assert tools.count("end_call") == 1 and tools[-1] == "end_call", tools
    goodbye = render(finished.persona["goodbye"], finished.persona)
    last = finished.turns[-1]
    assert (last["speaker"], last["text"], last["interrupted"]) == ("agent", goodbye, False)
    assert {"action": "hangup", "reason": "agent ended the call"} in finished.events_of("control")
    # The server hung up through the carrier's REST API after its goodbye had played.
    assert finished.report["ended_by"] == "app" and not finished.report["callee"]["hung_up"]


def test_turns_are_served_while_the_call_is_running(finished):
    live = finished.seen_live
    assert live, "no turn was served while the call was in progress"
    assert {t["speaker"] for t in live} == {"agent", "caller"}
    assert len(live) >= 4, [t["text"] for t in live]
    # ?after=<seq> polling got every turn exactly once, in order, as the final list has them.
    assert [t["seq"] for t in finished.polled] == [t["seq"] for t in finished.turns]
    assert [t["text"] for t in finished.polled] == [t["text"] for t in finished.turns]


def test_the_recording_is_stereo_8khz_with_speech_on_both_sides(finished):
    response = finished.recording
    assert response.status_code == 200, (finished.call, response.text[:300])
    assert response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        seconds = wav.getnframes() / 8000
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    assert 20 <= seconds <= CALL_LIMIT_S, seconds
    frames = len(pcm) // 160  # 20 ms windows
    rms = np.sqrt((pcm[: frames * 160].astype(np.float64) ** 2).reshape(frames, 160, 2).mean(1))
    caller_s, agent_s = ((rms[:, ch] > 500).sum() * 0.02 for ch in (0, 1))
    # The callee spoke 5 short lines (~6 s), the agent 6 replies, one cut short (~12 s).
    assert caller_s >= 3, caller_s
    assert agent_s >= 6, agent_s
    assert not np.array_equal(pcm[:, 0], pcm[:, 1])
