"""events: publishes sent from the loop after the work, and none while nobody can listen."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer

from calls import events, services
from calls.events import events_group
from calls.models import Call

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def call(myra) -> Call:
    return services.call_create(persona=myra, to="+14155550100", require_variables=False)


async def _listen(call: Call) -> tuple:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(events_group(call.uuid), channel)
    return layer, channel


async def test_publishes_go_out_from_the_loop_in_order_after_the_work(call, monkeypatch):
    layer, channel = await _listen(call)
    loop_thread = threading.get_ident()
    sent_from: list[int] = []
    real_send_all = events.send_all

    async def recording_send_all(messages):
        sent_from.append(threading.get_ident())
        await real_send_all(messages)

    monkeypatch.setattr(events, "send_all", recording_send_all)

    def two_writes() -> str:
        services.call_set_status(call_id=call.id, status="ringing")
        services.call_set_status(call_id=call.id, status="in-progress")
        return "done"

    assert await events.run_sync(two_writes) == "done"
    assert sent_from == [loop_thread]
    statuses = []
    while len(statuses) < 2:
        message = await asyncio.wait_for(layer.receive(channel), 2)
        statuses.append(message["payload"].get("status"))
    assert statuses == ["ringing", "in-progress"]


async def test_what_was_committed_before_a_failure_is_still_published(call):
    layer, channel = await _listen(call)

    def write_then_fail() -> None:
        services.call_set_status(call_id=call.id, status="ringing")
        raise RuntimeError("after the commit")

    with pytest.raises(RuntimeError, match="after the commit"):
        await events.run_sync(write_then_fail)
    message = await asyncio.wait_for(layer.receive(channel), 2)
    assert (message["type"], message["payload"]["status"]) == ("call.event", "ringing")


@pytest.fixture
def in_memory_layer(settings):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield get_channel_layer()
    channel_layers.backends.clear()


@database_sync_to_async
def _write(call: Call, status: str, text: str) -> list[tuple[str, dict]]:
    """A status change and a turn; what they publish."""
    with events.deferred() as published:
        services.call_set_status(call_id=call.id, status=status)
        services.turn_append(call_id=call.id, speaker="agent", text=text)
    return list(published)


async def test_nothing_is_published_in_process_until_someone_joins_the_group(call, in_memory_layer):
    assert not events.listened(call.uuid)
    assert await _write(call, "ringing", "Hello") == []

    layer, channel = await _listen(call)
    assert events.listened(call.uuid)
    published = await _write(call, "in-progress", "How are you?")
    assert [(g, m["type"]) for g, m in published] == [
        (events_group(call.uuid), "call.event"),
        (events_group(call.uuid), "call.turn"),
    ]
    await events.send_all(published)
    assert (await asyncio.wait_for(layer.receive(channel), 2))["payload"]["status"] == "in-progress"
    assert (await asyncio.wait_for(layer.receive(channel), 2))["text"] == "How are you?"

    await layer.group_discard(events_group(call.uuid), channel)  # the last listener leaves
    assert not events.listened(call.uuid)
    assert await _write(call, "completed", "Bye") == []


class CrossProcessLayer(BaseChannelLayer):
    """A layer whose listeners could be in other processes: it keeps what it was sent."""

    sent: list[tuple[str, dict]] = []

    async def group_send(self, group: str, message: dict) -> None:
        self.sent.append((group, message))


async def test_on_a_cross_process_layer_every_write_is_published(call, settings):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.CrossProcessLayer"}}
    channel_layers.backends.clear()
    CrossProcessLayer.sent.clear()
    try:
        assert events.listened(call.uuid)
        await events.run_sync(services.call_set_status, call_id=call.id, status="ringing")
    finally:
        channel_layers.backends.clear()
    assert [(g, m["payload"]) for g, m in CrossProcessLayer.sent] == [
        (events_group(call.uuid), {"status": "ringing"})
    ]
