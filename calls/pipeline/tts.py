"""Synthesises reply text in order, streaming audio on as it arrives; a second TTS takes over on failure.

TextChunk / Say -> SpeechChunk* (per segment, `end` on the last piece) ; ReplyDone passes in order
Interrupt       -> drops queued text, cancels the synthesis in flight

Text of one reply that queued up while the previous segment was being synthesised goes out as one
segment (one request): it would have waited anyway, and one request costs the provider's
concurrency limit, the network and the server less than several, and is read with one intonation.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator

from calls.pipeline.chunker import TextChunker
from calls.pipeline.context import CallContext
from calls.pipeline.frames import (
    EventRecord,
    Frame,
    Interrupt,
    ReplyDone,
    Say,
    SpeechChunk,
    TextChunk,
    ToolRequest,
)
from calls.pipeline.processor import Processor
from calls.providers.tts.base import TTSOptions, TTSProvider

log = logging.getLogger(__name__)
# Queued text joined into one request up to this length (ElevenLabs streams any length at the
# same first-byte latency; a cap keeps one segment's heard-text estimate coarse at worst).
MAX_JOINED_CHARS = 400


class AudioCache:
    """A small LRU of synthesised lines (greetings, goodbyes, fallbacks), shared by all calls."""

    def __init__(self, max_items: int = 256) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple, bytes] = OrderedDict()

    def get(self, key: tuple) -> bytes | None:
        audio = self._items.get(key)
        if audio is not None:
            self._items.move_to_end(key)
        return audio

    def put(self, key: tuple, audio: bytes) -> None:
        self._items[key] = audio
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)


audio_cache = AudioCache()


def cache_key(provider: TTSProvider, options: TTSOptions, text: str) -> tuple:
    return (type(provider).__name__, options.voice, options.model, text)


async def synthesize_cached(provider: TTSProvider, options: TTSOptions, text: str) -> bytes:
    """Whole-line synthesis through the shared cache (used to pre-synthesise the greeting)."""
    key = cache_key(provider, options, text)
    audio = audio_cache.get(key)
    if audio is None:
        audio = b"".join([piece async for piece in provider.synthesize(text, options)])
        audio_cache.put(key, audio)
    return audio


class TTSProcessor(Processor):
    def __init__(
        self,
        ctx: CallContext,
        primary: TTSProvider,
        options: TTSOptions,
        *,
        fallback: TTSProvider | None = None,
        fallback_options: TTSOptions | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.providers = [(primary, options)]
        if fallback is not None:
            self.providers.append((fallback, fallback_options or options))
        self._queue: asyncio.Queue[Frame] = asyncio.Queue()
        self._segments = itertools.count(1)
        self._worker: asyncio.Task | None = None

    async def start(self) -> None:
        self._worker = self.spawn(self._work(), "tts-worker")

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, TextChunk | ReplyDone | ToolRequest):
            self._queue.put_nowait(frame)  # in order: a transfer waits for the words before it
        elif isinstance(frame, Say):
            self._enqueue_say(frame)
        elif isinstance(frame, Interrupt):
            await self._interrupt()
            await self.push(frame)
        else:
            await self.push(frame)

    def _enqueue_say(self, say: Say) -> None:
        reply_id = self.ctx.next_reply_id()
        self.ctx.conversation.add_agent(say.text, reply_id=reply_id)
        chunker = TextChunker(first_clause_words=10_000)  # whole sentences: cached lines repeat
        for piece in [*chunker.push(say.text + " "), *chunker.flush()]:
            self._queue.put_nowait(TextChunk(reply_id, piece))
        self._queue.put_nowait(ReplyDone(reply_id, end_call=say.end_call))

    async def _interrupt(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._worker = self.spawn(self._work(), "tts-worker")

    async def _work(self) -> None:
        held: Frame | None = None  # taken off the queue while joining text, handled next
        while True:
            if held is None:
                frame = await self._queue.get()
            else:
                frame, held = held, None
            if isinstance(frame, TextChunk):
                frame, held = self._join_queued(frame)
                await self._synthesize(frame)
            else:
                await self.push(frame)

    def _join_queued(self, chunk: TextChunk) -> tuple[TextChunk, Frame | None]:
        """`chunk` plus the text of the same reply queued right behind it, as one chunk, and the
        first queued frame that does not join (another reply's, a ReplyDone, a cached line)."""
        texts, size = [chunk.text], len(chunk.text)
        held: Frame | None = None
        if not self._cached(chunk.text):
            while not self._queue.empty():
                frame = self._queue.get_nowait()
                if (
                    not isinstance(frame, TextChunk)
                    or frame.reply_id != chunk.reply_id
                    or size + 1 + len(frame.text) > MAX_JOINED_CHARS
                    or self._cached(frame.text)
                ):
                    held = frame
                    break
                texts.append(frame.text)
                size += 1 + len(frame.text)
        if len(texts) == 1:
            return chunk, held
        return TextChunk(chunk.reply_id, " ".join(texts)), held

    def _cached(self, text: str) -> bool:
        provider, options = self.providers[0]
        return audio_cache.get(cache_key(provider, options, text)) is not None

    async def _synthesize(self, chunk: TextChunk) -> None:
        segment = next(self._segments)
        metrics = self.ctx.metrics.setdefault(chunk.reply_id, {})
        for index, (provider, options) in enumerate(self.providers):
            cached = audio_cache.get(cache_key(provider, options, chunk.text))
            if cached is not None:
                metrics.setdefault("tts_request", self.ctx.clock())
                metrics.setdefault("tts_first_byte", self.ctx.clock())
                await self.push(SpeechChunk(chunk.reply_id, segment, chunk.text, cached, end=True))
                return
            sent = False
            try:
                metrics.setdefault("tts_request", self.ctx.clock())
                async for audio in self._stream(provider, options, chunk.text):
                    metrics.setdefault("tts_first_byte", self.ctx.clock())
                    sent = True
                    await self.push(SpeechChunk(chunk.reply_id, segment, chunk.text, audio))
                await self.push(SpeechChunk(chunk.reply_id, segment, chunk.text, b"", end=True))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self.push(EventRecord("error", {"provider": "tts", "backend": index,
                                                      "reason": str(exc) or type(exc).__name__}))  # fmt: skip
                if sent:  # part of the segment already played: end it there
                    await self.push(SpeechChunk(chunk.reply_id, segment, chunk.text, b"", end=True))
                    return
        log.error("every TTS failed for %r", chunk.text)
        await self.push(SpeechChunk(chunk.reply_id, segment, chunk.text, b"", end=True))

    @staticmethod
    async def _stream(
        provider: TTSProvider, options: TTSOptions, text: str
    ) -> AsyncIterator[bytes]:
        async for audio in provider.synthesize(text, options):
            if audio:
                yield audio
