"""Idle monitor: a nudge after the silence timeout, goodbye and hang-up after a second one, max duration."""

from __future__ import annotations

import asyncio

import pytest

from calls.core.persona import PersonaSpec
from calls.pipeline import idle as idle_module
from calls.pipeline.context import PipelineOptions
from calls.pipeline.frames import (
    CallerSpeechStarted,
    CallerSpeechStopped,
    EventRecord,
    Frame,
    Hangup,
    ReplyStarted,
    Say,
    TurnRecord,
)
from calls.pipeline.idle import IdleMonitor
from tests.support import pipeline as support
from tests.support.clock import Clock

NUDGE = PipelineOptions().nudge_text


@pytest.fixture(autouse=True)
def fast_ticks(monkeypatch):
    monkeypatch.setattr(idle_module, "TICK_S", 0.002)


class Harness(support.Harness):
    def __init__(self, *, goodbye: str = "Goodbye!", **options) -> None:
        super().__init__(
            persona=PersonaSpec(name="p", agent_name="Ann", goodbye=goodbye),
            clock=Clock(),
            **{"silence_timeout_s": 8.0, **options},
        )
        self.injected: list[Frame] = []
        self.chain(IdleMonitor(self.ctx, self._inject))

    async def _inject(self, frame: Frame) -> None:
        self.injected.append(frame)

    async def at(self, t: float) -> None:
        """Move the clock to 100 + t and let the monitor look at it a few times."""
        self.clock.t = 100.0 + t
        await asyncio.sleep(0.02)

    def events(self) -> list[tuple[str, dict]]:
        return [(f.type, f.payload) for f in self.out if isinstance(f, EventRecord)]


async def test_a_silent_caller_is_nudged_then_told_goodbye():
    async with Harness() as h:
        await h.at(7.9)
        assert h.injected == [] and h.out == []
        await h.at(8.0)
        assert h.injected == [Say(NUDGE, kind="nudge")]
        assert h.events() == [("silence", {"action": "nudge"})]
        await h.at(15.9)
        assert len(h.injected) == 1
        await h.at(16.0)
        assert h.injected[1] == Say("Goodbye!", kind="goodbye", end_call=True)
        assert h.events()[1] == ("silence", {"reason": "caller silent"})
        await h.at(35.9)
        assert len(h.injected) == 2 and len(h.out) == 2
        # The goodbye never played out (here: no playout; live: the caller talked over it).
        await h.at(36.0)
        assert h.out[-1] == Hangup("caller silent")
        await h.at(100.0)
        assert len(h.injected) == 2 and len(h.out) == 3  # the monitor is done


async def test_without_a_goodbye_line_it_hangs_up_directly():
    async with Harness(goodbye="") as h:
        await h.at(8.0)
        await h.at(16.0)
    assert h.out[-1] == Hangup("caller silent")
    assert h.injected == [Say(NUDGE, kind="nudge")]


@pytest.mark.parametrize(
    "activity",
    [[CallerSpeechStarted(0.0), CallerSpeechStopped(0.0)], [TurnRecord("caller", "I'm here.")]],
)
async def test_the_caller_speaking_again_resets_the_nudge(activity):
    async with Harness() as h:
        await h.at(8.0)
        await h.at(10.0)
        for frame in activity:
            await h.pipeline.send(frame)
        await h.at(17.9)
        assert len(h.injected) == 1
        await h.at(18.0)
        assert h.injected == [Say(NUDGE, kind="nudge")] * 2  # a nudge again, not the goodbye


async def test_the_agent_speaking_or_replying_is_not_silence():
    async with Harness() as h:
        h.ctx.agent_speaking = True
        await h.at(50.0)
        h.ctx.agent_speaking = False
        await h.at(57.9)
        assert h.injected == []
        await h.pipeline.send(ReplyStarted(1))  # the agent is about to answer
        await h.at(65.8)
        assert h.injected == []
        await h.at(66.0)
        assert h.injected == [Say(NUDGE, kind="nudge")]


async def test_max_duration_ends_the_call_even_mid_conversation():
    async with Harness(max_duration_s=600.0) as h:
        h.ctx.agent_speaking = True
        await h.at(599.0)
        assert h.injected == []
        await h.at(600.0)
    assert h.injected == [Say("Goodbye!", kind="goodbye", end_call=True)]
    assert h.events() == [("limit", {"reason": "max duration reached"})]


async def test_a_hangup_passing_by_stops_the_monitor():
    async with Harness() as h:
        await h.pipeline.send(Hangup("agent ended the call"))
        await h.at(30.0)
    assert h.out == [Hangup("agent ended the call")] and h.injected == []


async def test_a_played_goodbye_needs_no_second_hang_up():
    async with Harness() as h:
        await h.at(8.0)
        await h.at(16.0)
        await h.pipeline.send(Hangup("agent ended the call"))  # the goodbye's own hang-up
        await h.at(60.0)
    assert [f for f in h.out if isinstance(f, Hangup)] == [Hangup("agent ended the call")]


# The silence timeout counts silence only: a caller talking longer than it is not nudged.
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
