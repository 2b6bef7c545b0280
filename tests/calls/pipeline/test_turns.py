"""Turn-taking: when a caller turn ends, and when caller speech over the agent is a barge-in."""

from __future__ import annotations

import pytest

from calls.pipeline.context import PipelineOptions
from calls.pipeline.frames import (
    AudioIn,
    CallerSpeechStarted,
    CallerSpeechStopped,
    CallerTranscript,
    CallerTurn,
    EventRecord,
    Interrupt,
    TurnRecord,
)
from calls.pipeline.turns import TurnTaker, is_backchannel
from tests.support import pipeline as support
from tests.support.clock import Clock

VOICED = b"\x10" * 160
BACKCHANNELS = PipelineOptions().backchannels


class Harness(support.Harness):
    """A TurnTaker with a settable clock and the agent's speaking state, and what it emitted."""

    def __init__(self, **options) -> None:
        super().__init__(clock=Clock(), system_prompt=lambda conversation: "system", **options)
        self.chain(TurnTaker(self.ctx))

    async def speak(self, start: float, end: float) -> None:
        """Caller speech from `start` to `end` (seconds): the VAD start, then 20 ms frames."""
        await self.send(CallerSpeechStarted(start))
        await self.frames(start, end)

    async def frames(self, start: float, end: float) -> None:
        """20 ms voiced frames arriving from `start` to `end`, the clock following them."""
        t = start
        while t < end - 1e-9:
            t += 0.02
            self.clock.t = t
            await self.send(AudioIn(VOICED, t))


async def test_a_turn_ends_on_speech_final_with_the_finals_joined():
    h = Harness()
    await h.speak(100.0, 101.0)
    await h.send(
        CallerTranscript("I want", final=False),
        CallerTranscript("I want to", final=True),
        CallerTranscript("apply for the", final=False),
        CallerTranscript("apply for the job.", final=True),
    )
    assert not h.of(CallerTurn)
    await h.send(CallerSpeechStopped(101.0))
    h.clock.t = 101.4
    await h.send(CallerTranscript("", final=True, speech_final=True))
    [turn] = h.of(CallerTurn)
    assert turn.text == "I want to apply for the job."
    assert (turn.speech_end, turn.stt_final) == (101.0, 101.4)
    [record] = h.of(TurnRecord)
    assert (record.speaker, record.text) == ("caller", "I want to apply for the job.")
    assert (record.started_at, record.ended_at) == (100.0, 101.0)
    assert h.out.index(record) < h.out.index(turn)  # persisted before the reply starts
    assert not h.of(AudioIn)  # audio stops at turn-taking


async def test_a_final_that_is_also_speech_final_ends_the_turn_itself():
    h = Harness()
    await h.send(CallerTranscript("Hello?", final=True, speech_final=True))
    assert [t.text for t in h.of(CallerTurn)] == ["Hello?"]
    await h.send(CallerTranscript("", final=True, speech_final=True))  # a late UtteranceEnd
    assert len(h.of(CallerTurn)) == 1


async def test_interims_alone_never_make_a_turn():
    h = Harness()
    await h.send(
        CallerTranscript("maybe I", final=False),
        CallerTranscript("", final=True, speech_final=True),
    )
    assert not h.of(CallerTurn) and not h.of(TurnRecord)


async def test_barge_in_needs_the_agent_speaking_and_min_interrupt_ms_of_real_words():
    h = Harness()
    h.ctx.agent_speaking = True
    await h.send(CallerTranscript("wait a", final=False))
    await h.speak(100.0, 100.38)
    assert not h.of(Interrupt)  # 380 ms < 400 ms
    await h.frames(100.38, 100.42)
    assert len(h.of(Interrupt)) == 1
    await h.frames(100.42, 100.9)
    assert len(h.of(Interrupt)) == 1  # once per stretch of speech


async def test_no_barge_in_while_the_agent_is_silent():
    h = Harness()
    await h.send(CallerTranscript("wait a second", final=False))
    await h.speak(100.0, 102.0)
    assert not h.of(Interrupt)


async def test_a_transcript_arriving_late_interrupts_on_the_clock():
    h = Harness()
    h.ctx.agent_speaking = True
    await h.speak(100.0, 100.5)  # no words yet: not long enough for a blind interrupt
    assert not h.of(Interrupt)
    h.clock.t = 100.6
    await h.send(CallerTranscript("hold on", final=False))
    assert len(h.of(Interrupt)) == 1


async def test_min_interrupt_ms_is_configurable():
    h = Harness(min_interrupt_ms=200)
    h.ctx.agent_speaking = True
    await h.send(CallerTranscript("stop", final=False))
    await h.speak(100.0, 100.22)
    assert len(h.of(Interrupt)) == 1


@pytest.mark.parametrize("word", ["Uh-huh.", "Yeah.", "Okay.", "Mm-hmm", "Yeah, okay.", "Got it."])
async def test_a_backchannel_over_the_agent_neither_interrupts_nor_becomes_a_turn(word):
    h = Harness()
    h.ctx.agent_speaking = True
    await h.send(CallerTranscript(word, final=False))
    await h.speak(100.0, 100.9)  # long enough to interrupt, were it not a backchannel
    await h.send(CallerSpeechStopped(100.9), CallerTranscript(word, final=True, speech_final=True))
    assert not h.of(Interrupt)
    assert not h.of(CallerTurn) and not h.of(TurnRecord)
    assert [(e.type, e.payload) for e in h.of(EventRecord)] == [("backchannel", {"text": word})]
    # it is forgotten: the next real turn does not carry it
    h.ctx.agent_speaking = False
    await h.send(CallerTranscript("What time?", final=True, speech_final=True))
    assert [t.text for t in h.of(CallerTurn)] == ["What time?"]


async def test_okay_is_a_turn_when_the_agent_is_silent():
    h = Harness()
    await h.speak(100.0, 100.3)
    await h.send(
        CallerSpeechStopped(100.3), CallerTranscript("Okay.", final=True, speech_final=True)
    )
    assert [t.text for t in h.of(CallerTurn)] == ["Okay."]
    assert not h.of(EventRecord)


async def test_a_very_long_backchannel_or_unrecognised_speech_interrupts_after_3x():
    h = Harness()
    h.ctx.agent_speaking = True
    await h.send(CallerTranscript("yeah", final=False))
    await h.speak(100.0, 101.1)
    assert not h.of(Interrupt)
    await h.frames(101.1, 101.22)
    assert len(h.of(Interrupt)) == 1

    blind = Harness()
    blind.ctx.agent_speaking = True
    await blind.speak(100.0, 101.1)
    assert not blind.of(Interrupt)
    await blind.frames(101.1, 101.22)
    assert len(blind.of(Interrupt)) == 1


async def test_the_words_that_barged_in_become_the_next_turn():
    h = Harness()
    h.ctx.agent_speaking = True
    await h.send(CallerTranscript("okay but", final=False))
    await h.speak(100.0, 100.5)
    assert len(h.of(Interrupt)) == 1
    h.ctx.agent_speaking = False  # the playout stopped
    await h.send(
        CallerSpeechStopped(100.5),
        CallerTranscript("Okay but what about pay?", final=True, speech_final=True),
    )
    assert [t.text for t in h.of(CallerTurn)] == ["Okay but what about pay?"]


async def test_numbers_spoken_over_the_agent_are_not_a_backchannel():
    h = Harness()
    h.ctx.agent_speaking = True
    await h.send(CallerTranscript("94040", final=False))
    await h.speak(100.0, 100.5)
    assert len(h.of(Interrupt)) == 1
    await h.send(CallerTranscript("94040", final=True, speech_final=True))
    assert [t.text for t in h.of(CallerTurn)] == ["94040"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Uh-huh.", True),
        ("uh huh", True),
        ("OK, right.", True),
        ("I see.", True),
        ("", True),
        ("Yeah, but no.", False),
        ("Okay, what's the salary?", False),
        ("94040", False),
        ("Да", False),
        ("Mm-hmm, 5", False),
    ],
)
def test_is_backchannel(text, expected):
    assert is_backchannel(text, BACKCHANNELS) is expected
