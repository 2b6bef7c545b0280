"""Barge-in on a Realtime session: cut each agent item back to the audio the caller heard."""

from __future__ import annotations

import logging

from calls.pipeline.playout import PlayoutProcessor
from calls.pipeline.realtime.client import RealtimeClient
from calls.pipeline.realtime.segments import BYTES_PER_MS, Reply

log = logging.getLogger(__name__)

Cut = tuple[RealtimeClient, str, int]  # (session, item, audio_end_ms)


def cuts(audible: dict[int, Reply], playout: PlayoutProcessor) -> list[Cut]:
    """Every agent item the caller did not hear in full, and how much of it was heard. Empties
    `audible` (after the interrupt none of it plays any more); call it before the playout
    forgets its playhead."""
    found = []
    for reply in list(audible.values()):
        del audible[reply.id]
        played = playout.played_ms(reply.id)
        if played is None:
            continue  # already played out in full
        for item in reply.items.values():
            heard = sum(
                min(size, int(played.get(segment, 0.0) * BYTES_PER_MS))
                for segment, size in item.segments.items()
            )
            end_ms = min(item.received_ms, heard // BYTES_PER_MS)
            if end_ms < item.received_ms:
                found.append((reply.rt, item.id, end_ms))
    return found


async def truncate(current: RealtimeClient | None, found: list[Cut]) -> None:
    """Tell the session of the moment where each of its items was cut (`conversation.item.truncate`)."""
    for client, item_id, played_ms in found:
        if client is not current:
            continue  # that session is gone, and its items with it
        try:
            await client.truncate(played_ms, item_id)
        except Exception as exc:
            log.debug("realtime truncate failed: %s", exc)
