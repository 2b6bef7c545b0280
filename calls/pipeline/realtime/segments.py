"""Pairs a response's audio with its transcript words: SpeechChunk segments the playout can cut."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from calls.pipeline.frames import Frame, Say, SpeechChunk
from calls.pipeline.realtime.client import RealtimeClient

BYTES_PER_MS = 8  # G.711 mu-law, 8 kHz
# At the start of an item, agent audio waits up to this much for its first transcript words.
HOLD_START_BYTES = 1000 * BYTES_PER_MS


def take_words(pending: str) -> tuple[str, str]:
    """Split streamed transcript into (words to give a segment now, a possibly unfinished word).

    " Hello, how are yo" -> ("Hello, how are", " yo"); a single word goes out whole.
    """
    if pending[-1:].isspace():
        return pending.strip(), ""
    words = pending.lstrip()
    cut = words.rfind(" ")
    if cut < 0:
        return words, ""
    return words[:cut].rstrip(), words[cut:]


@dataclass
class Item:
    """One assistant audio item: audio waiting for its words, and which segments carry it."""

    id: str
    held: bytearray = field(default_factory=bytearray)
    text: str = ""  # transcript not yet given to a segment
    transcript: str = ""
    received_ms: int = 0  # counted per delta, in whole ms, as the server counts it
    segments: dict[int, int] = field(default_factory=dict)  # segment -> audio bytes


@dataclass
class Reply:
    """One Realtime response, spoken as one reply."""

    id: int
    response_id: str
    rt: RealtimeClient
    say: Say | None = None
    items: dict[str, Item] = field(default_factory=dict)
    item: Item | None = None  # the item being streamed
    segment: int | None = None  # the open segment
    segment_text: str = ""
    calls: list[dict] = field(default_factory=list)  # its tool calls, chat format
    results: list[asyncio.Future] = field(default_factory=list)  # -> (call_id, result)
    end_call: bool = False
    follow_up: bool = False
    interrupted: bool = False

    @property
    def text(self) -> str:
        return " ".join(t for t in (i.transcript.strip() for i in self.items.values()) if t)


class Segmenter:
    """Audio normally arrives next to its words; held audio and new words go out together as a
    new segment, so that a barge-in knows which words were heard."""

    def __init__(self, push: Callable[[Frame], Awaitable[None]]) -> None:
        self.push = push
        # Replies whose audio may still be playing (barge-in truncates their items).
        self.audible: dict[int, Reply] = {}
        self._segments = itertools.count(1)

    async def audio(self, reply: Reply, item_id: str, data: bytes) -> None:
        item = await self._item(reply, item_id)
        # Audio with no words waits one delta at most, except at the start of an item, where it
        # waits (up to a bound) for the first words.
        waited = reply.segment is not None or len(item.held) >= HOLD_START_BYTES
        if item.held and not item.text.strip() and waited:
            if reply.segment is None:
                await self._open(reply, "")
            await self._emit(reply, item)
        item.held += data
        item.received_ms += len(data) // BYTES_PER_MS
        await self._pair(reply, item)

    async def transcript(self, reply: Reply, item_id: str, delta: str) -> None:
        item = await self._item(reply, item_id)
        item.text += delta
        item.transcript += delta
        await self._pair(reply, item)

    async def flush(self, reply: Reply, item: Item) -> None:
        """The item is complete: send what is held with the words left, close the segment."""
        text, item.text = item.text.strip(), ""
        if item.held:
            if text or reply.segment is None:
                await self._open(reply, text)
            await self._emit(reply, item)
        elif text:
            await self._open(reply, text)  # words without audio: a silent segment
        await self._close(reply)
        if reply.item is item:
            reply.item = None

    async def _item(self, reply: Reply, item_id: str) -> Item:
        item = reply.items.get(item_id)
        if item is None:
            if reply.item is not None:
                await self.flush(reply, reply.item)
            item = reply.items[item_id] = Item(item_id)
            reply.item = item
        return item

    async def _pair(self, reply: Reply, item: Item) -> None:
        if item.held and item.text.strip():
            words, item.text = take_words(item.text)
            await self._open(reply, words)
            await self._emit(reply, item)

    async def _open(self, reply: Reply, text: str) -> None:
        await self._close(reply)
        reply.segment, reply.segment_text = next(self._segments), text

    async def _close(self, reply: Reply) -> None:
        if reply.segment is not None:
            segment, reply.segment = reply.segment, None
            await self.push(SpeechChunk(reply.id, segment, reply.segment_text, b"", end=True))

    async def _emit(self, reply: Reply, item: Item) -> None:
        data = bytes(item.held)
        item.held.clear()
        assert reply.segment is not None
        item.segments[reply.segment] = item.segments.get(reply.segment, 0) + len(data)
        self.audible[reply.id] = reply
        await self.push(SpeechChunk(reply.id, reply.segment, reply.segment_text, data))
