"""Barge-in through the real consumer, SDK adapters and emulators: the caller talks over the agent."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from calls.models import CallEvent, Turn
from calls.sandbox.emulators.base import silence, speech_like
from tests.support.stream import Phone
from tests.support.wait import wait_until_db

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]  # talks in real time

EL_BYTES_PER_CHAR = 160  # the fixture's ElevenLabs emulator: 20 ms of audio per character
LONG = (
    "Great to hear. The interview is with the hiring manager and it takes about thirty minutes. "
    "We can do it on Tuesday or Thursday afternoon, whichever suits you best."
)


def turns(call) -> list[Turn]:
    return list(Turn.objects.filter(call=call).order_by("seq"))


async def answered(phone: Phone) -> int:
    """The greeting has played and the caller answered: returns the log position after it."""
    await phone.until(lambda: phone.echoed)
    start = len(phone.log)
    await phone.talk(speech_like(700) + silence(500))
    return start


async def test_talking_over_the_agent_clears_its_audio_and_keeps_only_what_was_heard(
    call, hosted_fakes, dial
):
    hosted_fakes.deepgram.script(["Yes, I am still interested.", "Wait, what about the salary?"])
    hosted_fakes.openai.script(LONG, "It pays well.")
    phone = await dial()
    reply_start = await answered(phone)
    # One segment (the reply's text was all there when its synthesis began): the caller talks
    # once ~0.6 s of it has played, "Great to hear." and a little more.
    await phone.until(lambda: phone.media_between(reply_start))
    await asyncio.sleep(0.6)
    await phone.talk(speech_like(800, seed=3), realtime=True)  # interim "Wait," after 300 ms
    await phone.talk(silence(600))
    await wait_until_db(lambda: Turn.objects.filter(call=call).count() >= 5)
    await phone.hang_up()

    # the consumer sent `clear`, and stopped sending the rest of the long reply
    assert phone.count("clear") == 1
    cleared_at = phone.log.index(("clear",))
    assert len(phone.media_between(reply_start, cleared_at)) < len(LONG) * EL_BYTES_PER_CHAR / 2

    greeting, caller, agent, caller2, answer = await database_sync_to_async(turns)(call)
    assert [t.speaker for t in (greeting, caller, agent, caller2, answer)] == [
        "agent", "caller", "agent", "caller", "agent",
    ]  # fmt: skip
    assert (agent.text, agent.interrupted) == (LONG, True)
    heard = agent.heard_text
    assert heard.startswith("Great to hear.") and LONG.startswith(heard) and heard != LONG
    assert caller2.text == "Wait, what about the salary?"
    assert (answer.text, answer.interrupted) == ("It pays well.", False)

    # the model is told only what the caller heard, in the messages and in the prompt
    _first, second = hosted_fakes.openai.requests
    assert second["messages"][-2:] == [
        {"role": "assistant", "content": heard},
        {"role": "user", "content": "Wait, what about the salary?"},
    ]
    unheard = LONG[len(heard) :].split()[-3:]
    assert " ".join(unheard) not in json.dumps(second["messages"])


async def test_a_backchannel_over_the_agent_leaves_the_reply_alone(call, hosted_fakes, dial):
    reply = "Great to hear. The interview is with the hiring manager and takes thirty minutes."
    hosted_fakes.deepgram.script(["Yes, I am still interested.", "Uh-huh."])
    hosted_fakes.openai.script(reply)
    phone = await dial()
    reply_start = await answered(phone)
    await phone.until(lambda: phone.media_between(reply_start))
    await asyncio.sleep(0.6)  # "Great to hear." has played; the rest of the reply is playing
    await phone.talk(speech_like(500, seed=4), realtime=True)  # interim "Uh-huh." at 300 ms
    await phone.talk(silence(500))
    await wait_until_db(lambda: Turn.objects.filter(call=call).count() >= 3)
    await wait_until_db(
        lambda: CallEvent.objects.filter(call=call, payload__kind="backchannel").exists()
    )
    await phone.hang_up()

    assert phone.count("clear") == 0
    _greeting, caller, agent = await database_sync_to_async(turns)(call)
    assert caller.text == "Yes, I am still interested."
    assert (agent.text, agent.interrupted, agent.heard_text) == (reply, False, "")
    event = await database_sync_to_async(CallEvent.objects.get)(
        call=call, payload__kind="backchannel"
    )
    assert event.type == "provider" and event.payload["text"] == "Uh-huh."
    assert len(hosted_fakes.openai.requests) == 1  # "Uh-huh." was not a turn
