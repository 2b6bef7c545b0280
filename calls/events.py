"""Publishes stored turns and events to the call's channel group, for live views.

Who listens: nobody yet. The live event socket of the supervisor issue (#16) is to join
`events_group(call)` for each call it streams. Until something joins, publishing costs nothing on
the in-memory channel layer: `listened` says no before a message is built, so a write pays no
publish. On a cross-process layer (Redis) a listener may be in another process, so every turn and
event is sent.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer

if TYPE_CHECKING:
    from calls.models import CallEvent, Turn

log = logging.getLogger(__name__)
T = TypeVar("T")


def events_group(call_uuid: uuid.UUID | str) -> str:
    """Group a live view joins to see turns and events as they are stored."""
    return f"call.{call_uuid}.events"


def control_group(call_uuid: uuid.UUID | str) -> str:
    """Group the consumer holding the call joins to receive live control (hang up, say...)."""
    return f"call.{call_uuid}.control"


def listened(call_uuid: uuid.UUID | str) -> bool:
    """Whether a message to the call's events group can reach anyone: on the in-memory layer,
    only while a consumer of this process is in the group (the layer drops a group when its last
    member leaves); on a cross-process layer, always."""
    layer = get_channel_layer()
    if layer is None:
        return False
    if isinstance(layer, InMemoryChannelLayer):
        return events_group(call_uuid) in layer.groups  # calls.core.patches guards this read
    return True


_deferral = threading.local()


@contextmanager
def deferred() -> Iterator[list[tuple[str, dict]]]:
    """Collect what this thread publishes instead of sending it; the caller sends the list from
    its event loop (`send_all`), so a writer thread never blocks on the channel layer."""
    collected: list[tuple[str, dict]] = []
    _deferral.collected = collected
    try:
        yield collected
    finally:
        _deferral.collected = None


async def send_all(messages: list[tuple[str, dict]]) -> None:
    if not messages:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    for group, message in messages:
        try:
            await layer.group_send(group, message)
        except Exception:  # a live view missing one update must never fail a write
            log.warning("publish to %s failed", group, exc_info=True)


async def run_sync(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run sync ORM work off the loop (`database_sync_to_async`) for a coroutine; what it
    publishes is sent from the loop once it returns (or raises, for what it committed first).
    Published from the worker thread, each message would wait for the event loop, which is at
    its busiest when calls start and end."""
    collected: list[tuple[str, dict]] = []

    def call() -> T:
        with deferred() as published:
            try:
                return fn(*args, **kwargs)
            finally:
                collected.extend(published)

    try:
        return await database_sync_to_async(call)()
    finally:
        await send_all(collected)


def _send(group: str, message: dict) -> None:
    collected = getattr(_deferral, "collected", None)
    if collected is not None:
        collected.append((group, message))
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # a live view missing one update must never fail a write
        log.warning("publish to %s failed", group, exc_info=True)


def publish_turn(call_uuid: uuid.UUID, turn: Turn) -> None:
    if not listened(call_uuid):
        return
    _send(
        events_group(call_uuid),
        {
            "type": "call.turn",
            "seq": turn.seq,
            "speaker": turn.speaker,
            "text": turn.text,
            "heard_text": turn.heard_text,
            "interrupted": turn.interrupted,
            "latency": turn.latency,
        },
    )


def publish_event(call_uuid: uuid.UUID, event: CallEvent) -> None:
    if not listened(call_uuid):
        return
    _send(
        events_group(call_uuid),
        {"type": "call.event", "id": event.id, "event": event.type, "payload": event.payload},
    )
