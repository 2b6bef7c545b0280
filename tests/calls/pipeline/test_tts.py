"""The TTS processor: ordered segments of streamed audio, the fallback TTS, the cache, interruption."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from calls.pipeline import tts as tts_module
from calls.pipeline.frames import (
    EventRecord,
    Interrupt,
    ReplyDone,
    Say,
    SpeechChunk,
    StageChanged,
    TextChunk,
)
from calls.pipeline.tts import AudioCache, TTSProcessor, cache_key, synthesize_cached
from calls.providers.tts.base import TTSError, TTSOptions, TTSProvider
from tests.support import pipeline as support

PRIMARY, BACKUP = TTSOptions(voice="primary-voice"), TTSOptions(voice="backup-voice")


class FakeTTS(TTSProvider):
    """8 bytes of `byte` per character, in `pieces` pieces. Fails the first `fail_times`
    requests, before any audio or (with `fail_after`) after that many pieces."""

    def __init__(self, byte: int, *, pieces: int = 3, fail_times: int = 0, fail_after: int = 0):
        self.byte, self.pieces = byte, pieces
        self.fail_times, self.fail_after = fail_times, fail_after
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None  # when set: wait for it after the first piece
        self.slow: dict[str, float] = {}  # text -> seconds before the first piece

    def audio(self, text: str) -> bytes:
        return bytes([self.byte]) * (8 * len(text))

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncIterator[bytes]:
        self.calls.append(text)
        await asyncio.sleep(self.slow.get(text, 0))
        audio, size = self.audio(text), -(-8 * len(text) // self.pieces)
        failing = self.fail_times > 0
        self.fail_times -= 1
        for n, i in enumerate(range(0, len(audio), size)):
            if failing and n == self.fail_after:
                raise TTSError(f"tts {self.byte} failed")
            yield audio[i : i + size]
            if n == 0 and self.gate is not None:
                await self.gate.wait()


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch) -> AudioCache:
    cache = AudioCache()
    monkeypatch.setattr(tts_module, "audio_cache", cache)
    return cache


class Harness(support.Harness):
    def __init__(self, primary: FakeTTS, fallback: FakeTTS | None = None) -> None:
        super().__init__()
        self.tts = TTSProcessor(
            self.ctx, primary, PRIMARY, fallback=fallback, fallback_options=BACKUP
        )
        self.chain(self.tts)

    def audio_of(self, segment: int) -> bytes:
        return b"".join(c.mulaw for c in self.of(SpeechChunk) if c.segment == segment)


async def test_segments_come_out_in_order_as_streamed_pieces():
    primary = FakeTTS(0x11)
    primary.slow["It is hybrid."] = 0.05  # the slow first line still goes first
    async with Harness(primary) as h:
        await h.send(TextChunk(7, "It is hybrid."))
        await h.until(lambda: primary.calls)  # its synthesis started: the next is a segment
        await h.send(TextChunk(7, "Two days."), ReplyDone(7))
        await h.until(lambda: h.of(ReplyDone))
    chunks = h.of(SpeechChunk)
    first, second = chunks[0].segment, chunks[-1].segment
    assert second == first + 1
    assert [(c.segment, c.text, bool(c.mulaw), c.end) for c in chunks] == [
        (first, "It is hybrid.", True, False),
        (first, "It is hybrid.", True, False),
        (first, "It is hybrid.", True, False),
        (first, "It is hybrid.", False, True),
        (second, "Two days.", True, False),
        (second, "Two days.", True, False),
        (second, "Two days.", True, False),
        (second, "Two days.", False, True),
    ]
    assert h.audio_of(first) == primary.audio("It is hybrid.")
    assert h.out[-1] == ReplyDone(7)  # after its audio
    assert {c.reply_id for c in chunks} == {7}
    metrics = h.ctx.metrics[7]
    assert metrics["tts_first_byte"] >= metrics["tts_request"]


async def test_audio_is_passed_on_before_the_synthesis_finishes():
    primary = FakeTTS(0x11)
    primary.gate = asyncio.Event()
    async with Harness(primary) as h:
        await h.send(TextChunk(1, "A long sentence to speak."))
        await h.until(lambda: h.of(SpeechChunk))
        assert not any(c.end for c in h.of(SpeechChunk))
        primary.gate.set()
        await h.until(lambda: any(c.end for c in h.of(SpeechChunk)))


async def test_other_frames_are_not_held_behind_the_text():
    primary = FakeTTS(0x11)
    primary.gate = asyncio.Event()
    async with Harness(primary) as h:
        await h.send(TextChunk(1, "Speaking."), ReplyDone(1), StageChanged("close"))
        await h.until(lambda: h.of(StageChanged))
        assert not h.of(ReplyDone)
        primary.gate.set()
        await h.until(lambda: h.of(ReplyDone))


async def test_a_failing_primary_falls_back_to_the_second_tts_and_is_recorded():
    primary, backup = FakeTTS(0x11, fail_times=1), FakeTTS(0x22)
    async with Harness(primary, backup) as h:
        await h.send(TextChunk(3, "Hello there."))
        await h.until(lambda: backup.calls)
        await h.send(TextChunk(3, "Bye."), ReplyDone(3))
        await h.until(lambda: h.of(ReplyDone))
    [error] = h.of(EventRecord)
    assert error.type == "error"
    assert error.payload == {"provider": "tts", "backend": 0, "reason": "tts 17 failed"}
    first = h.of(SpeechChunk)[0].segment
    assert h.audio_of(first) == backup.audio("Hello there.")
    assert h.audio_of(first + 1) == primary.audio("Bye.")  # the primary is tried again
    assert backup.calls == ["Hello there."]
    assert h.out.index(error) < h.out.index(h.of(SpeechChunk)[0])


async def test_a_failure_mid_segment_ends_the_segment_without_repeating_it():
    primary, backup = FakeTTS(0x11, fail_times=1, fail_after=1), FakeTTS(0x22)
    async with Harness(primary, backup) as h:
        await h.send(TextChunk(3, "Hello there."), ReplyDone(3))
        await h.until(lambda: h.of(ReplyDone))
    chunks = h.of(SpeechChunk)
    assert [(bool(c.mulaw), c.end) for c in chunks] == [(True, False), (False, True)]
    assert len(h.of(EventRecord)) == 1 and backup.calls == []


async def test_when_every_tts_fails_the_segment_still_closes():
    async with Harness(FakeTTS(0x11, fail_times=1), FakeTTS(0x22, fail_times=1)) as h:
        await h.send(TextChunk(3, "Hello there."), ReplyDone(3))
        await h.until(lambda: h.of(ReplyDone))
    assert [e.payload["backend"] for e in h.of(EventRecord)] == [0, 1]
    [chunk] = h.of(SpeechChunk)
    assert chunk.end and chunk.mulaw == b""


async def test_cached_lines_are_played_without_asking_the_provider(fresh_cache):
    primary = FakeTTS(0x11)
    fresh_cache.put(cache_key(primary, PRIMARY, "Hi Ann."), b"\x01" * 320)
    async with Harness(primary) as h:
        await h.send(TextChunk(4, "Hi Ann."), ReplyDone(4))
        await h.until(lambda: h.of(ReplyDone))
    [chunk] = h.of(SpeechChunk)
    assert (chunk.text, chunk.mulaw, chunk.end) == ("Hi Ann.", b"\x01" * 320, True)
    assert primary.calls == []
    assert "tts_first_byte" in h.ctx.metrics[4]


async def test_synthesize_cached_synthesises_once_per_text_and_voice():
    primary = FakeTTS(0x11)
    assert await synthesize_cached(primary, PRIMARY, "Hi Ann.") == primary.audio("Hi Ann.")
    assert await synthesize_cached(primary, PRIMARY, "Hi Ann.") == primary.audio("Hi Ann.")
    assert primary.calls == ["Hi Ann."]
    await synthesize_cached(primary, BACKUP, "Hi Ann.")  # another voice is another line
    assert primary.calls == ["Hi Ann.", "Hi Ann."]


async def test_interrupt_drops_queued_text_and_cancels_the_synthesis_in_flight():
    primary = FakeTTS(0x11)
    primary.gate = asyncio.Event()
    async with Harness(primary) as h:
        await h.send(TextChunk(5, "First line."))
        await h.until(lambda: h.of(SpeechChunk))
        await h.send(TextChunk(5, "Second line."), ReplyDone(5))
        await h.send(Interrupt())
        assert h.out[-1] == Interrupt()
        primary.gate.set()
        await asyncio.sleep(0.05)
        assert [c.text for c in h.of(SpeechChunk)] == ["First line."]  # the one piece before
        assert not h.of(ReplyDone)
        assert primary.calls == ["First line."]
        primary.gate = None
        await h.send(TextChunk(6, "After."), ReplyDone(6))  # still working afterwards
        await h.until(lambda: h.of(ReplyDone))
    assert h.of(ReplyDone) == [ReplyDone(6)]
    assert primary.calls == ["First line.", "After."]


async def test_text_queued_behind_a_synthesis_goes_out_in_one_request():
    primary = FakeTTS(0x11)
    primary.gate = asyncio.Event()
    async with Harness(primary) as h:
        await h.send(TextChunk(2, "Sure."))
        await h.until(lambda: h.of(SpeechChunk))
        await h.send(TextChunk(2, "It is hybrid."), TextChunk(2, "Two days a week."))
        await h.send(ReplyDone(2), TextChunk(3, "Next reply."))
        primary.gate.set()
        await h.until(lambda: len(primary.calls) == 3)
        await h.until(lambda: h.of(SpeechChunk)[-1].end)
    assert primary.calls == ["Sure.", "It is hybrid. Two days a week.", "Next reply."]
    segments = [(c.segment, c.text) for c in h.of(SpeechChunk) if c.end]
    assert [t for _, t in segments] == primary.calls  # one segment per request, in order
    assert h.out.index(ReplyDone(2)) < h.out.index(
        next(c for c in h.of(SpeechChunk) if c.reply_id == 3)
    )


async def test_cached_lines_and_text_past_the_cap_are_not_joined(fresh_cache):
    primary = FakeTTS(0x11)
    fresh_cache.put(cache_key(primary, PRIMARY, "Hi Ann."), b"\x01" * 320)
    long = "word " * (tts_module.MAX_JOINED_CHARS // 5)
    async with Harness(primary) as h:
        await h.send(TextChunk(4, "Hi Ann."), TextChunk(4, "Ready?"), TextChunk(4, long.strip()))
        await h.send(ReplyDone(4))
        await h.until(lambda: h.of(ReplyDone))
    assert primary.calls == ["Ready?", long.strip()]  # the cached line played from the cache


async def test_say_is_split_into_cacheable_sentences_and_goes_into_history(fresh_cache):
    primary = FakeTTS(0x11)
    fresh_cache.put(cache_key(primary, PRIMARY, "Hi Ann, this is Myra."), b"\x01" * 320)
    async with Harness(primary) as h:
        await h.send(Say("Hi Ann, this is Myra. Do you have a minute?", end_call=True))
        await h.until(lambda: h.of(ReplyDone))
    assert primary.calls == ["Do you have a minute?"]  # the greeting's first sentence was cached
    [done] = h.of(ReplyDone)
    assert done.end_call is True
    assert {c.reply_id for c in h.of(SpeechChunk)} == {done.reply_id}
    assert h.ctx.conversation.messages == [
        {"role": "assistant", "content": "Hi Ann, this is Myra. Do you have a minute?"}
    ]
