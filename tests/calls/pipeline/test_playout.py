"""Playout: 20 ms frames and marks to the carrier, and what the caller actually heard."""

from __future__ import annotations

import asyncio

import pytest

from calls.pipeline import playout as playout_module
from calls.pipeline.frames import (
    Hangup,
    Interrupt,
    MarkPlayed,
    ReplyDone,
    SpeechChunk,
    StageChanged,
    TurnRecord,
)
from calls.pipeline.playout import PlayoutProcessor, latency_figures
from tests.support import pipeline as support
from tests.support.clock import Clock
from tests.support.wait import wait_until

FRAME = 160


class Transport:
    def __init__(self) -> None:
        self.sent: list[tuple] = []

    async def send_media(self, mulaw: bytes) -> None:
        self.sent.append(("media", mulaw))

    async def send_mark(self, name: str) -> None:
        self.sent.append(("mark", name))

    async def send_clear(self) -> None:
        self.sent.append(("clear",))

    def media(self) -> list[bytes]:
        return [e[1] for e in self.sent if e[0] == "media"]

    def marks(self) -> list[str]:
        return [e[1] for e in self.sent if e[0] == "mark"]

    def frames(self) -> int:
        return sum(len(m) for m in self.media()) // FRAME


class Harness(support.Harness):
    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self.transport = Transport()
        self.played_at: list[float] = []
        self.playout = PlayoutProcessor(
            self.ctx, self.transport, on_audio_out=lambda frame, t: self.played_at.append(t)
        )
        self.chain(self.playout)

    async def segment(self, reply: int, seg: int, text: str, frames: float) -> str:
        """Queue one whole segment of `frames` 20 ms frames; returns its mark."""
        await self.send(
            SpeechChunk(reply, seg, text, b"\x11" * int(frames * FRAME)),
            SpeechChunk(reply, seg, text, b"", end=True),
        )
        return f"r{reply}s{seg}"

    async def echo(self, *marks: str) -> None:
        for mark in marks:
            await self.send(MarkPlayed(mark))

    async def until(self, predicate, limit: float = 3.0) -> None:
        await wait_until(predicate, limit, state=lambda: f"sent {self.kinds()}")

    def kinds(self) -> list[str]:
        return [e[0] if e[0] != "mark" else f"mark:{e[1]}" for e in self.transport.sent]

    def records(self) -> list[TurnRecord]:
        return [f for f in self.out if isinstance(f, TurnRecord)]


async def test_audio_goes_out_in_whole_20ms_frames_with_a_mark_after_each_segment():
    async with Harness() as h:
        await h.send(
            SpeechChunk(1, 1, "One.", b"\x01" * 300),
            SpeechChunk(1, 1, "One.", b"\x02" * 200),  # 500 bytes: 3 frames and 20 bytes
            SpeechChunk(1, 1, "One.", b"", end=True),
            SpeechChunk(1, 2, "Two.", b"\x03" * 320, end=True),
        )
        await h.until(lambda: len(h.transport.marks()) == 2)
    sent = h.transport.sent
    first = [m for kind, m in sent[: sent.index(("mark", "r1s1"))] if kind == "media"]
    second = [m for kind, m in sent[sent.index(("mark", "r1s1")) + 1 : -1] if kind == "media"]
    assert sent[-1] == ("mark", "r1s2")
    assert all(len(m) % FRAME == 0 for m in first + second)  # whole frames only
    assert b"".join(first) == b"\x01" * 300 + b"\x02" * 200 + b"\xff" * 140  # padded
    assert b"".join(second) == b"\x03" * 320
    # Each message is timed at its first frame; the six frames run back to back.
    sizes = [len(m) // FRAME for m in first + second]
    starts = [round(t - h.played_at[0], 3) for t in h.played_at]
    assert starts == [round(0.02 * sum(sizes[:i]), 3) for i in range(len(sizes))]


async def test_frames_are_paced_a_short_lead_ahead_of_the_playhead():
    clock = Clock()
    async with Harness(clock) as h:
        await h.segment(1, 1, "A long line.", frames=50)
        await h.until(lambda: h.transport.media())
        await asyncio.sleep(0.05)
        assert 9 <= h.transport.frames() <= 11  # 200 ms ahead, not the whole second
        clock.t += 0.1
        await h.until(lambda: h.transport.frames() >= 14)
        await asyncio.sleep(0.15)
        assert h.transport.frames() <= 16  # topped up to the same lead
        assert not h.transport.marks()


async def test_queued_audio_goes_out_in_messages_of_up_to_five_frames_of_one_segment():
    clock = Clock()
    async with Harness(clock) as h:
        await h.segment(1, 1, "First.", frames=7)
        await h.segment(1, 2, "Second.", frames=3)
        for _ in range(20):
            clock.t += 0.1
            await asyncio.sleep(0.01)
        await h.until(lambda: len(h.transport.marks()) == 2)
    sizes = [len(m) // FRAME for m in h.transport.media()]
    assert h.kinds() == ["media", "media", "mark:r1s1", "media", "mark:r1s2"]
    assert sizes == [5, 2, 3]  # whole frames, at most 5, a segment's own
    # Each message is timed at its first frame; the frames run back to back.
    assert [round(t - h.played_at[0], 3) for t in h.played_at] == [0.0, 0.1, 0.14]


async def test_a_reply_is_recorded_only_when_all_its_marks_are_echoed():
    async with Harness() as h:
        m1 = await h.segment(4, 1, "One.", frames=2)
        m2 = await h.segment(4, 2, "Two.", frames=2)
        await h.send(ReplyDone(4))
        await h.until(lambda: len(h.transport.marks()) == 2)
        assert h.ctx.agent_speaking
        await h.echo(m1)
        assert not h.records()
        await h.echo(m2)
        [record] = h.records()
    assert (record.speaker, record.text, record.interrupted) == ("agent", "One. Two.", False)
    assert record.heard_text == ""
    assert record.started_at <= record.ended_at
    assert not h.ctx.agent_speaking
    assert "clear" not in h.kinds()


async def test_replies_are_recorded_in_order_and_only_once_done():
    async with Harness() as h:
        first = await h.segment(1, 1, "Still talking.", frames=1)  # no ReplyDone yet
        second = await h.segment(2, 2, "Next.", frames=1)
        await h.send(ReplyDone(2))
        await h.until(lambda: len(h.transport.marks()) == 2)
        await h.echo(first, second)
        assert not h.records()
        await h.send(ReplyDone(1))
    assert [r.text for r in h.records()] == ["Still talking.", "Next."]


async def test_interrupt_clears_and_records_what_was_heard_up_to_the_playhead():
    clock = Clock()
    async with Harness(clock) as h:
        full = "Great to hear. one two three four five six seven eight nine ten Not heard at all."
        h.ctx.conversation.add_agent(full, reply_id=9)  # what the LLM put in history
        m1 = await h.segment(9, 1, "Great to hear.", frames=2)  # plays 100.00-100.04
        await h.segment(9, 2, "one two three four five six seven eight nine ten", frames=50)
        await h.segment(9, 3, "Not heard at all.", frames=10)
        await h.until(lambda: h.transport.marks())
        await h.echo(m1)
        clock.t = 100.04 + 0.5  # half of the second segment has played
        await h.send(Interrupt())
        [record] = h.records()
        assert h.transport.sent[-1] == ("clear",)
        assert h.out[-1] == Interrupt()
        sent = len(h.transport.media())
        clock.t += 5
        await asyncio.sleep(0.15)
        assert len(h.transport.media()) == sent  # the rest was dropped
        await h.echo(m1, "r9s2", "r9s3")  # the carrier echoes cleared marks: ignored
        assert len(h.records()) == 1
    assert record.interrupted and record.text == full
    assert record.heard_text == "Great to hear. one two three four five"
    assert h.ctx.conversation.messages == [
        {"role": "assistant", "content": "Great to hear. one two three four five"}
    ]
    assert not h.ctx.agent_speaking


async def test_a_segment_played_by_the_clock_counts_before_its_mark_comes_back():
    clock = Clock()
    async with Harness(clock) as h:
        await h.segment(2, 1, "First part.", frames=5)
        await h.segment(2, 2, "alpha beta gamma delta", frames=20)
        await h.until(lambda: h.transport.marks())
        clock.t = 100.1 + 0.1  # first segment over (no echo yet), a quarter of the second
        await h.send(Interrupt())
    [record] = h.records()
    assert record.heard_text == "First part. alpha"


async def test_interrupt_before_any_audio_played_keeps_nothing_in_history():
    clock = Clock()
    async with Harness(clock) as h:
        h.ctx.conversation.add_caller("Hi")
        h.ctx.conversation.add_agent("Never heard.", reply_id=3)
        await h.segment(3, 1, "Never heard.", frames=5)
        await h.until(lambda: h.transport.marks())
        await h.send(Interrupt())
    [record] = h.records()
    assert (record.heard_text, record.interrupted) == ("", True)
    assert h.ctx.conversation.messages == [{"role": "user", "content": "Hi"}]


async def test_interrupt_with_nothing_playing_sends_no_clear():
    async with Harness() as h:
        await h.send(Interrupt())
    assert h.transport.sent == [] and h.out == [Interrupt()]


async def test_marks_never_echoed_count_as_played_after_the_grace_period(monkeypatch):
    monkeypatch.setattr(playout_module, "MARK_GRACE_S", 0.05)
    async with Harness() as h:
        await h.segment(5, 1, "Are you there?", frames=2)
        await h.send(ReplyDone(5))
        await h.until(lambda: h.records())
    [record] = h.records()
    assert (record.text, record.interrupted) == ("Are you there?", False)
    assert not h.ctx.agent_speaking


async def test_end_call_hangs_up_once_the_goodbye_was_heard():
    async with Harness() as h:
        mark = await h.segment(6, 1, "Goodbye!", frames=2)
        await h.send(ReplyDone(6, end_call=True))
        await h.until(lambda: h.transport.marks())
        assert not any(isinstance(f, Hangup) for f in h.out)
        await h.echo(mark)
    record, hangup = h.out
    assert isinstance(record, TurnRecord) and record.text == "Goodbye!"
    assert hangup == Hangup("agent ended the call")


async def test_stop_records_what_was_played_of_unfinished_replies():
    clock = Clock()
    h = Harness(clock)
    await h.pipeline.start()
    h.ctx.conversation.add_agent("One. a b c d e f g h", reply_id=8)
    m1 = await h.segment(8, 1, "One.", frames=2)
    await h.segment(8, 2, "a b c d e f g h", frames=40)
    await h.until(lambda: h.transport.marks())
    await h.echo(m1)
    clock.t = 100.04 + 0.4  # half of the second segment
    await h.pipeline.stop()
    [record] = h.records()
    assert (record.text, record.heard_text, record.interrupted) == (
        "One. a b c d e f g h",
        "One. a b c d",
        True,
    )
    # a stream that stops is not the end of the conversation (digits reconnect the stream)
    assert h.ctx.conversation.messages[-1]["content"] == "One. a b c d"


async def test_stop_after_everything_was_played_is_not_an_interruption():
    clock = Clock()
    h = Harness(clock)
    await h.pipeline.start()
    await h.segment(8, 1, "All of it.", frames=2)
    await h.until(lambda: h.transport.marks())
    clock.t += 1  # played, but the mark and the ReplyDone never came
    await h.pipeline.stop()
    [record] = h.records()
    assert (record.text, record.interrupted, record.heard_text) == ("All of it.", False, "")


async def test_latency_figures_are_attached_to_the_agent_turn():
    clock = Clock(100.7)
    async with Harness(clock) as h:
        h.ctx.metrics[11] = {
            "speech_end": 100.0, "stt_final": 100.3, "llm_request": 100.31,
            "llm_first_token": 100.55, "tts_request": 100.56, "tts_first_byte": 100.66,
        }  # fmt: skip
        mark = await h.segment(11, 1, "Sure.", frames=2)
        await h.send(ReplyDone(11))
        await h.until(lambda: h.transport.marks())
        await h.echo(mark)
    [record] = h.records()
    assert record.latency == {
        "stt_final_ms": 300.0, "llm_request_ms": 310.0, "llm_first_token_ms": 550.0,
        "tts_request_ms": 560.0, "tts_first_byte_ms": 660.0, "first_audio_ms": 700.0,
        "voice_to_voice_ms": 700.0,
    }  # fmt: skip
    assert 11 not in h.ctx.metrics  # consumed with the record


@pytest.mark.parametrize("metrics", [{}, {"tts_request": 1.0, "first_audio": 1.1}])
def test_lines_not_answering_the_caller_have_no_latency(metrics):
    assert latency_figures(metrics) == {}


async def test_other_frames_pass_through():
    async with Harness() as h:
        await h.send(StageChanged("close"))
    assert h.out == [StageChanged("close")]


async def test_stop_ends_the_sender_even_when_woken_in_the_same_instant():
    """A wake-up and the cancellation in one loop iteration: `asyncio.wait_for` on 3.11 returns
    the wait's result and drops the cancellation (the sender then ran on after its call)."""
    h = Harness()
    await h.pipeline.start()
    mark = await h.segment(1, 1, "One.", 1)
    await h.until(lambda: mark in h.transport.marks())  # sent; waiting for the echo, with a timeout
    await asyncio.sleep(0.01)
    tasks = list(h.playout._tasks)
    h.playout._wake.set()
    await asyncio.wait_for(h.playout.stop(), 1.0)
    assert tasks and all(t.done() for t in tasks)
