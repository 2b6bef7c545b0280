"""The silence timeout counts silence only: a caller talking longer than it is not nudged (in the
agent-to-agent sandbox call, the answering agent said "Are you still there?" over a long line)."""

from __future__ import annotations

from calls.pipeline.frames import CallerSpeechStarted, CallerSpeechStopped, Say
from tests.calls.pipeline.test_idle import NUDGE, Harness, fast_ticks  # noqa: F401


async def test_a_caller_talking_past_the_timeout_is_not_nudged():
    async with Harness() as h:
        await h.at(1.0)
        await h.pipeline.send(CallerSpeechStarted(101.0))
        await h.at(12.0)  # still talking, 11 s into it: no silence yet
        assert h.injected == []
        await h.pipeline.send(CallerSpeechStopped(112.0))
        await h.at(12.0 + 7.9)
        assert h.injected == []
        await h.at(12.0 + 8.0)  # 8 s of silence after the speech ended
        assert h.injected == [Say(NUDGE, kind="nudge")]


async def test_speech_that_never_stops_counts_as_silence_after_a_minute():
    from calls.pipeline import idle

    async with Harness() as h:
        await h.pipeline.send(CallerSpeechStarted(100.0))  # and no CallerSpeechStopped
        await h.at(idle.MAX_SPEECH_S - 0.1)
        assert h.injected == []
        await h.at(idle.MAX_SPEECH_S + 8.0)
        assert h.injected == [Say(NUDGE, kind="nudge")]
