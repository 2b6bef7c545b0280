"""Provider faults through the real consumer, SDK adapters and emulators: the call goes on."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from calls.models import CallEvent, Turn
from calls.pipeline.context import PipelineOptions
from calls.sandbox.emulators.base import Faults, silence, speech_like
from tests.support.wait import wait_until_db

pytestmark = pytest.mark.django_db(transaction=True)

FALLBACK = PipelineOptions().fallback_text


async def one_exchange(call, dial, *, after_greeting=None, realtime=False) -> list[Turn]:
    """Greeting, one caller turn (`realtime`: paced like a live line, not a burst), the agent's
    answer fully played; then hang up."""
    phone = await dial()
    await phone.until(lambda: phone.echoed)
    if after_greeting is not None:
        after_greeting()
    await phone.talk(speech_like(700) + silence(500), realtime=realtime)
    await wait_until_db(lambda: Turn.objects.filter(call=call).count() >= 3)
    await phone.hang_up()
    return await database_sync_to_async(lambda: list(call.turns.order_by("seq")))()


def errors(call, provider: str) -> list[dict]:
    events = CallEvent.objects.filter(call=call, type="error", payload__provider=provider)
    return list(events.order_by("pk").values_list("payload", flat=True))


@pytest.mark.slow  # the caller talks in real time
async def test_a_dropped_deepgram_socket_is_reopened_and_no_word_is_lost(call, hosted_fakes, dial):
    deepgram = hosted_fakes.deepgram
    deepgram.listen_faults = Faults(drop_after_messages=15, times=1)  # 300 ms into the speech
    deepgram.script(["Yes, I am still interested."])
    hosted_fakes.openai.script("Great to hear.")
    # Paced: a burst would reach Deepgram joined into fewer, larger messages (a server behind).
    _greeting, caller, agent = await one_exchange(call, dial, realtime=True)

    assert (caller.speaker, caller.text) == ("caller", "Yes, I am still interested.")
    assert (agent.speaker, agent.text) == ("agent", "Great to hear.")
    first, second = deepgram.connections[:2]
    assert first.close_reason == "dropped (fault)" and first.frames_received == 15
    assert second.bytes_received >= 60 * 160  # the whole utterance, replayed
    [error] = await database_sync_to_async(errors)(call, "stt")
    assert "reconnecting" in error["reason"] and error["fatal"] is False


async def test_an_openai_500_is_retried_and_the_reply_still_comes(call, hosted_fakes, dial):
    hosted_fakes.deepgram.script(["Yes, I am still interested."])
    hosted_fakes.openai.script("Great to hear.")
    hosted_fakes.openai.fail_next("http_500")
    *_, agent = await one_exchange(call, dial)

    assert agent.text == "Great to hear." and not agent.interrupted
    first, second = hosted_fakes.openai.requests
    assert first["messages"] == second["messages"]
    [error] = await database_sync_to_async(errors)(call, "llm")
    assert error["attempt"] == 1 and "500" in error["reason"]


async def test_openai_failing_twice_is_answered_with_the_fallback_line(call, hosted_fakes, dial):
    hosted_fakes.deepgram.script(["Yes, I am still interested."])
    hosted_fakes.openai.fail_next("http_500", count=2)
    *_, agent = await one_exchange(call, dial)

    assert (agent.speaker, agent.text, agent.interrupted) == ("agent", FALLBACK, False)
    assert len(hosted_fakes.openai.requests) == 2
    assert [e["attempt"] for e in await database_sync_to_async(errors)(call, "llm")] == [1, 2]


async def test_an_elevenlabs_failure_is_spoken_by_deepgram_aura(call, hosted_fakes, dial):
    hosted_fakes.deepgram.script(["Yes, I am still interested."])
    hosted_fakes.openai.script("Sure.")

    def break_elevenlabs() -> None:
        hosted_fakes.elevenlabs.http_faults = Faults(status=500)

    greeting, _caller, agent = await one_exchange(call, dial, after_greeting=break_elevenlabs)

    assert greeting.text == "Hi Ann."  # spoken by ElevenLabs, before it broke
    assert agent.text == "Sure."
    assert [r.status for r in hosted_fakes.elevenlabs.requests] == [200, 500]
    [aura] = hosted_fakes.deepgram.speak_requests
    assert (aura.status, aura.body["text"], aura.query["model"]) == (
        200,
        "Sure.",
        "aura-2-thalia-en",
    )
    [error] = await database_sync_to_async(errors)(call, "tts")
    assert error["backend"] == 0 and "500" in error["reason"]
