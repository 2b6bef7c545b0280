"""`manage.py call --follow` shows what the agent does besides talking (tools, keys, transfers),
ends every outcome with a plain line and its documented exit code, and names README sections
that exist. The IVR and wants-human sandbox calls run for real, through the server."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from calls import services
from calls.management.commands.call import EXIT_CODES, OUTCOMES, Command
from calls.management.follow import timeline
from calls.models import CallEvent, Turn
from tests.support.liveserver import ROOT, free_port, live_server, sandbox_env, tail
from tests.support.speech import LOCAL_SPEECH

ACCOUNT_SID = "AC" + "f0" * 16
AUTH_TOKEN = "follow-token"
SARAH_VARS = {
    "insurer_name": "Blue Shield of California", "patient_name": "John Doe",
    "patient_dob": "March 4, 1961", "member_id": "XEA123456789",
    "procedure": "total knee arthroplasty", "cpt_code": "27447",
}  # fmt: skip
MYRA_VARS = {"applicant_name": "Jordan Lee", "position": "Network Engineer"}


@pytest.mark.django_db
def test_follow_shows_tools_keys_and_transfers_in_order(personas):
    call = services.call_create(persona=personas["myra-recruiting"], to="+14155550106",
                                variables=MYRA_VARS)  # fmt: skip
    services.call_set_status(call_id=call.pk, status="in-progress")
    record = services.event_record
    services.turn_append(call_id=call.pk, speaker="caller", text="Press 2 for claims.")
    record(call_id=call.pk, type="tool_call",
           payload={"name": "press_digits", "arguments": {"digits": "2"}})  # fmt: skip
    record(call_id=call.pk, type="dtmf", payload={"digits": "2", "direction": "sent"})
    record(call_id=call.pk, type="tool_call",
           payload={"name": "set_stage", "arguments": {"stage": "interest"}})  # fmt: skip
    record(call_id=call.pk, type="stage", payload={"stage": "interest"})
    record(call_id=call.pk, type="dtmf", payload={"digit": "5"})
    record(call_id=call.pk, type="tool_call", payload={"name": "transfer_call", "arguments": {}})
    record(call_id=call.pk, type="control", payload={"action": "transferred", "to": "+14155550142"})
    record(call_id=call.pk, type="control", payload={"action": "hangup", "reason": "agent ended"})
    record(call_id=call.pk, type="latency", payload={"stt": 1})
    lines = timeline(
        list(Turn.objects.filter(call=call)), list(CallEvent.objects.filter(call=call))
    )
    assert [line.split(None, 1) for line in lines] == [
        ["caller", "Press 2 for claims."],
        ["tool", 'press_digits {"digits": "2"}'],
        ["keys", "2 pressed by the agent"],
        ["stage", "interest"],
        ["keys", "5 pressed by the caller"],
        ["tool", "transfer_call"],
        ["transfer", "transferred to +14155550142"],
        ["hangup", "agent ended"],
    ]

    services.call_set_status(call_id=call.pk, status="completed", duration=9)
    out = io.StringIO()
    Command(stdout=out)._follow(call, timeout=5, poll=0.01)
    printed = out.getvalue().splitlines()
    assert printed[:-2] == lines and printed[-1] == "call completed, 9 s"


def test_help_documents_an_exit_code_for_every_outcome():
    out = io.StringIO()
    parser = Command(stdout=out).create_parser("manage.py", "call")
    text = parser.format_help()
    assert "exit codes:" in text
    table = dict(re.findall(r"^\s+(\d+)\s+(.+)$", EXIT_CODES, re.M))
    for status, (code, _) in OUTCOMES.items():
        assert str(code) in table and (code == 0 or status.replace("-", " ") in table[str(code)])
    assert len({code for code, _ in OUTCOMES.values()}) == len(OUTCOMES)


@pytest.mark.django_db
def test_canceled_and_failed_calls_end_with_a_plain_line(personas):
    for status, code in (("canceled", 7), ("failed", 6)):
        call = services.call_create(persona=personas["myra-recruiting"], to="+14155550100",
                                    variables=MYRA_VARS)  # fmt: skip
        services.call_set_status(call_id=call.pk, status=status)
        out = io.StringIO()
        Command(stdout=out)._follow(call, timeout=5, poll=0.01)
        assert out.getvalue().splitlines()[-1].startswith(f"call {status}: ")
        assert OUTCOMES[status][0] == code


def headings(readme: Path) -> set[str]:
    return set(re.findall(r"^#+ (.+?)\s*$", readme.read_text(), re.M))


def test_messages_name_readme_sections_that_exist():
    """`the README, "Real calls and hosted providers"` names a heading of README.md;
    `bench/README.md, "load"` the first word(s) of one of bench/README.md's."""
    named = []
    for path in [*ROOT.glob("*/**/*.py"), ROOT / "Makefile"]:
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        text = path.read_text(errors="replace")
        pattern = r'(bench/)?README(?:\.md)?[,:]?\s*\(?\s*"([^"]+)"'
        for bench, section in re.findall(pattern, text):
            named.append((path.relative_to(ROOT), bench + "README.md", section))
    assert any(p.name == "call.py" for p, _, _ in named), named
    missing = [
        (str(path), readme, section)
        for path, readme, section in named
        if not any(re.match(rf"{re.escape(section)}(?:$|[: ])", h) for h in headings(ROOT / readme))
    ]
    assert not missing, f"README sections that do not exist: {missing}"


# --- real sandbox calls through the server ----------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A daphne subprocess with the sandbox carrier in it, the local engines, a fresh database."""
    work = tmp_path_factory.mktemp("follow")
    port = free_port()
    env = sandbox_env(work, port, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    for args in (["migrate", "--noinput", "-v0"], ["load_personas", "fixtures/personas.yaml"]):
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=120)  # fmt: skip
    log = work / "server.log"
    with live_server(env, port, log) as carrier_url:
        yield {**env, "TWILIO_API_BASE_URL": carrier_url}, log


def follow(
    env: dict, log: Path, persona: str, number: str, variables: dict
) -> tuple[int, list[str], str]:
    """The exit code, the stripped lines printed, and all of it with the server log's tail."""
    args = [f"--var={k}={v}" for k, v in variables.items()]
    run = subprocess.run(
        [sys.executable, "manage.py", "call", persona, number, *args, "--follow",
         "--timeout", "100"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=130,
    )  # fmt: skip
    print(run.stdout)
    assert not run.stderr.strip() or "Traceback" not in run.stderr, run.stderr
    lines = [line.strip() for line in run.stdout.splitlines() if line.strip()]
    return run.returncode, lines, run.stdout + f"\n--- server log ---\n{tail(log)}"


needs_local_speech = pytest.mark.skipif(not LOCAL_SPEECH, reason="local TTS/STT not installed")


@pytest.mark.e2e  # real calls through a server and the sandbox
@needs_local_speech
@pytest.mark.timeout(150)
def test_the_ivr_call_shows_the_key_the_agent_pressed(server):
    env, log = server
    code, lines, out = follow(env, log, "sarah-prior-auth", "+14155550107", SARAH_VARS)
    assert 'tool  press_digits {"digits": "2"}' in lines, out
    pressed = lines.index("keys  2 pressed by the agent")
    assert any("Prior authorizations" in line for line in lines[pressed:]), out
    # The scripted engine moved the call on through Sarah's stages, to the close with the goodbye.
    stages = [line.split(None, 1)[1] for line in lines if line.startswith("stage  ")]
    assert stages and stages[-1] == "close", out
    assert lines.index("stage  close") < lines.index("tool  end_call"), out
    assert code == 0 and lines[-2] == "status  completed", out


@pytest.fixture(scope="module")
def wants_human(server) -> tuple[int, list[str], str]:
    """Myra calls the wants-human callee, who asks for a person: the agent transfers the call."""
    env, log = server
    return follow(env, log, "myra-recruiting", "+14155550106", MYRA_VARS)


@pytest.mark.e2e  # real calls through a server and the sandbox
@needs_local_speech
@pytest.mark.timeout(150)
def test_the_wants_human_call_shows_the_agents_transfer_tool(wants_human):
    code, lines, out = wants_human
    asked = next(i for i, line in enumerate(lines) if line.startswith("caller  Can I speak to"))
    assert lines[asked + 1] == "tool  transfer_call", out
    assert lines[asked + 2].startswith("agent  Of course. Let me transfer you"), out
    assert code == 0 and lines[-2] == "status  completed", out


@pytest.mark.e2e  # real calls through a server and the sandbox
@needs_local_speech
@pytest.mark.timeout(150)
def test_the_wants_human_call_shows_where_it_was_transferred(wants_human):
    _, lines, out = wants_human
    assert "transfer  transferred to +14155550142" in lines, out
    assert "+14155550142" in lines[-1], out
