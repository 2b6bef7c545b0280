"""events.run_sync: sync ORM work from a coroutine, its publishes sent from the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.layers import get_channel_layer

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
