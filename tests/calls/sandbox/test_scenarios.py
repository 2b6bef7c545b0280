"""Callee scenarios: the schema, the named files, and the callee's behaviour on a live stream."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import re

import pytest

from calls.sandbox.emulators.base import rms, speech_like
from calls.sandbox.scenario import (
    SCENARIO_DIR,
    BargeIn,
    Menu,
    Say,
    ScenarioBook,
    ScenarioError,
    Wait,
    WaitAgent,
    parse,
)
from tests.support.sandbox_app import TO, AppStream, place, running_line

NAMES = {"cooperative", "interrupter", "backchannel", "silent", "busy", "no-answer",
         "wants-human", "ivr", "agent-to-agent"}  # fmt: skip
LOCAL_SPEECH = all(importlib.util.find_spec(m) for m in ("hibari", "faster_whisper", "ctranslate2"))
needs_local_speech = pytest.mark.skipif(not LOCAL_SPEECH, reason="local TTS/STT not installed")


def test_the_named_scenarios_load_with_unique_numbers():
    book = ScenarioBook([SCENARIO_DIR])
    assert set(book.scenarios) >= NAMES
    numbers = book.by_number()
    assert len(numbers) == len(NAMES) and all(n.startswith("+1415555010") for n in numbers)
    assert book.get("busy").answer == "busy" and book.get("no-answer").answer == "no-answer"
    assert isinstance(book.get("ivr").steps[0], Menu)
    assert book.get("agent-to-agent").persona["agent_name"] == "Riley"
    assert any(isinstance(s, BargeIn) for s in book.get("interrupter").steps)
    coop = book.get("cooperative")
    assert coop.steps[0] == WaitAgent() and coop.steps[1] == Say("Yes, this is Jordan speaking.")
    assert "Is the job remote?" in coop.lines()


def test_steps_take_shorthand_and_full_forms():
    s = parse(
        {"steps": ["wait_agent", {"wait": 2}, {"barge_in": {"text": "Hey", "after": 0.5}},
                   {"menu": {"prompt": "Press 1.", "options": {1: ["hangup"]}}},
                   {"wait": {"seconds": 1, "jitter": 0.5}}]},
        "x",
    )  # fmt: skip
    assert s.name == "x" and s.steps[1] == Wait(2.0) and s.steps[2] == BargeIn("Hey", 0.5)
    assert list(s.steps[3].options) == ["1"]
    assert s.steps[4] == Wait(1.0, jitter=0.5)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": ["dance"]}, "unknown step 'dance'"),
        ({"steps": [{"say": {"txt": "hi"}}]}, "steps[0] say: unknown field(s) txt"),
        ({"steps": [{"wait": "soon"}]}, "steps[0] wait.seconds: expected a number"),
        ({"steps": [{"say": "a", "wait": 1}]}, "a step is a name or a one-key mapping"),
        ({"steps": [{"menu": {"prompt": "p", "options": {"1": [{"jump": 1}]}}}]},
         "options[1][0]: unknown step 'jump'"),
        ({"answer": "maybe"}, "answer must be one of"),
        ({"colour": "red"}, "unknown key(s) colour"),
        ({"persona": {"name": "x"}}, "persona must be a mapping with at least agent_name"),
    ],
)  # fmt: skip
def test_schema_errors_say_where(data, message):
    with pytest.raises(ScenarioError, match=re.escape(message)):
        parse(data, "bad")


def test_a_number_clash_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text('number: "+14155550100"\n')
    with pytest.raises(ScenarioError, match="share"):
        ScenarioBook([SCENARIO_DIR, tmp_path])


# --- the callee on a live stream (synthetic voice: no models) -------------------------------
@pytest.fixture
async def line():
    async with running_line() as running:
        yield running


async def inbound_level(s: AppStream, *, loud: bool, limit: float = 5.0) -> float:
    """Wait until the callee's audio turns loud, or quiet for 300 ms; returns when (loop clock)."""
    seen = len(s.media)
    need = 1 if loud else 15

    async def watch() -> float:
        nonlocal seen
        run = 0
        while True:
            while seen < len(s.media):
                frame = s.media[seen]
                seen += 1
                payload = base64.b64decode(frame.data["media"]["payload"])
                run = run + 1 if (rms(payload) > 500) == loud else 0
                if run >= need:
                    return frame.t
            await s.next_media()

    return await asyncio.wait_for(watch(), limit)


@pytest.mark.slow
async def test_callee_waits_for_the_agent_talks_over_it_and_backchannels(line):
    carrier, client, app = line.carrier, line.client, line.app
    steps = [
        {"wait_agent": {"gap": 0.5}},
        {"say": "Yes."},
        {"barge_in": {"text": "Wait, question.", "after": 0.4}},
        {"wait_agent": {"gap": 0.5}},
        {"say": "And?"},
        {"backchannel": {"text": "Uh-huh.", "after": 0.3}},
        {"wait_agent": {"gap": 0.5}},
        "hangup",
    ]
    carrier.plan(TO, parse({"voice": "synthetic", "ring": 0.1, "steps": steps}, "t"))
    sid = await place(client, app)
    s = await asyncio.wait_for(app.streams.get(), 5)
    await s.recv("start")
    loop = asyncio.get_running_loop()

    # the agent's greeting: the callee answers once it has ended and `gap` has passed
    await s.send_audio(speech_like(300))
    await s.mark("greeting")
    played = (await s.recv("mark")).t
    answered = await inbound_level(s, loud=True)
    assert 0.4 <= answered - played <= 0.8, answered - played
    await inbound_level(s, loud=False)

    # a long reply: the callee talks over it; this agent yields (clear) when it hears that
    await s.send_audio(speech_like(3000, seed=1))
    started = loop.time()
    barged = await inbound_level(s, loud=True)
    assert 0.35 <= barged - started <= 0.7
    await s.send(event="clear")
    await inbound_level(s, loud=False)
    await s.send_audio(speech_like(300, seed=3))  # the agent answers the question
    await inbound_level(s, loud=True)  # "And?"
    await inbound_level(s, loud=False)

    # a reply the callee backchannels into; this time the agent keeps talking
    await s.send_audio(speech_like(1000, seed=2))
    await s.mark("reply")
    await inbound_level(s, loud=True)
    await s.recv("mark", limit=4)
    await s.recv("stop", limit=3)

    call = await carrier.wait_ended(sid)
    report = call.party.report()
    kinds = [(b["kind"], b["agent_stopped"]) for b in report["barge_ins"]]
    assert kinds == [("barge_in", True), ("backchannel", False)]
    assert report["said"] == ["Yes.", "Wait, question.", "And?", "Uh-huh."]
    assert report["agent_utterances"] == 4 and report["hung_up"] and call.ended_by == "callee"


# --- with the local engines: voiced lines, transcribed expectations, a second persona -----
async def _tts(text: str) -> bytes:
    from calls.providers.tts.base import TTSOptions
    from calls.providers.tts.local import LocalTTS

    chunks = [c async for c in LocalTTS().synthesize(text, TTSOptions())]
    return b"".join(chunks)


@pytest.mark.slow
@needs_local_speech
async def test_lines_are_voiced_and_expectations_transcribed(line):
    carrier, client, app = line.carrier, line.client, line.app
    from calls.sandbox.speech import transcribe

    steps = [
        {"say": "Thursday works."},
        {"wait_agent": {"gap": 0.4}},
        {"expect": "hybrid two days"},
        {"expect": "anything"},  # nothing said since the last expect
        "hangup",
    ]
    carrier.voice = None  # this test hears the real voice
    carrier.plan(TO, parse({"ring": 0.1, "voice": "hibari-low", "steps": steps}, "t"))
    reply = asyncio.ensure_future(_tts("It is hybrid, two days a week."))
    sid = await place(client, app)
    s = await asyncio.wait_for(app.streams.get(), 5)
    await s.recv("start")
    await inbound_level(s, loud=True)
    await inbound_level(s, loud=False)
    heard = asyncio.ensure_future(transcribe(s.inbound_audio()))
    await s.send_audio(await reply)
    await s.recv("stop", limit=15)
    call = await carrier.wait_ended(sid)
    assert "thursday" in (await heard).lower()
    first, second = call.party.report()["expectations"]
    assert first["ok"] and "hybrid" in first["heard"].lower(), first
    assert not second["ok"] and second["heard"] == ""
    assert "hybrid" in " ".join(await call.party.transcript()).lower()


@pytest.mark.slow
@needs_local_speech
async def test_agent_to_agent_the_callee_is_another_persona(line):
    carrier, client, app = line.carrier, line.client, line.app
    persona = {
        "agent_name": "Dana",
        "goodbye": "Bye!",
        "tools": ["end_call"],
        "stages": [{"name": "verify", "description": 'Ask "May I have the account number?"'}],
    }
    carrier.plan(TO, parse({"ring": 0.1, "voice": "hibari-low", "persona": persona}, "a2a"))
    hello = asyncio.ensure_future(_tts("Hi, this is Alex, about a duplicate charge."))
    bye = asyncio.ensure_future(_tts("Thanks. Goodbye."))
    sid = await place(client, app)
    s = await asyncio.wait_for(app.streams.get(), 5)
    await s.recv("start")
    await s.send_audio(await hello)
    await inbound_level(s, loud=True, limit=10)  # Dana answers
    await inbound_level(s, loud=False, limit=10)
    await s.send_audio(await bye)
    await s.recv("stop", limit=15)  # Dana says goodbye and hangs up
    call = await carrier.wait_ended(sid)
    turns = call.party.report()["turns"]
    assert call.ended_by == "callee"
    said = [t["text"] for t in turns if t["speaker"] == "callee"]
    heard = [t["text"].lower() for t in turns if t["speaker"] == "app-agent"]
    assert said[0].endswith("May I have the account number?") and said[-1] == "Bye!"
    assert "duplicate charge" in heard[0] and "goodbye" in heard[-1]
