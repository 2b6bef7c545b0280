"""The live calls' writer: order, batching, failures, publication from the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.layers import get_channel_layer

from calls import services
from calls.events import events_group
from calls.live import persister
from calls.live.persister import Persister
from calls.models import Call, CallEvent, Turn

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def call(myra) -> Call:
    return services.call_create(persona=myra, to="+14155550100", require_variables=False)


def _turns(call: Call) -> list[tuple[int, str]]:
    return list(Turn.objects.filter(call=call).order_by("seq").values_list("seq", "text"))


@pytest.fixture
def calls(myra) -> list[Call]:
    return [
        services.call_create(persona=myra, to="+14155550100", require_variables=False)
        for _ in range(5)
    ]


async def test_writes_of_many_calls_are_stored_in_order_in_few_transactions(calls, monkeypatch):
    batches: list[int] = []
    real = persister._run_batch
    monkeypatch.setattr(persister, "_run_batch", lambda b: (batches.append(len(b)), real(b))[1])
    writers = [Persister() for _ in calls]
    for i in range(20):
        for c, w in zip(calls, writers, strict=True):
            w.write(services.turn_append, call_id=c.id, speaker="caller", text=f"line {i}")
    await asyncio.gather(*(w.drain() for w in writers))
    for c in calls:
        assert await asyncio.to_thread(_turns, c) == [(i + 1, f"line {i}") for i in range(20)]
    assert sum(batches) == 100 and len(batches) < 10, batches  # batched, not a commit per write


async def test_writes_that_finish_together_are_stored_together(calls, monkeypatch):
    batches: list[int] = []
    real = persister._run_batch
    monkeypatch.setattr(persister, "_run_batch", lambda b: (batches.append(len(b)), real(b))[1])
    runs: list[list[str]] = []
    many = services.turn_append.many
    monkeypatch.setattr(
        services.turn_append, "many", lambda turns: (runs.append([t["text"] for t in turns]),
                                                     many(turns))[1],
    )  # fmt: skip
    monkeypatch.setattr(persister, "GATHER_S", 0.5)  # far above the pause below, on any host
    writer = Persister()
    writer.write(services.turn_append, call_id=calls[0].id, speaker="caller", text="one")
    await asyncio.sleep(0.05)
    writer.write(services.turn_append, call_id=calls[1].id, speaker="agent", text="two")
    writer.write(services.event_record, call_id=calls[1].id, type="error", payload={"n": 1})
    writer.write(services.turn_append, call_id=calls[1].id, speaker="caller", text="three")
    await writer.drain()
    assert batches == [4]
    # each run of turns went in one call of the batch form, in order around the event
    assert runs == [["one", "two"], ["three"]]
    assert await asyncio.to_thread(_turns, calls[1]) == [(1, "two"), (2, "three")]


async def test_a_turn_that_cannot_be_stored_fails_alone(calls, caplog):
    writer = Persister()
    writer.write(services.turn_append, call_id=calls[0].id, speaker="agent", text="before")
    writer.write(services.turn_append, call_id=calls[0].id + 1000, speaker="agent", text="lost")
    writer.write(services.turn_append, call_id=calls[0].id, speaker="agent", text="after")
    await writer.drain()
    assert await asyncio.to_thread(_turns, calls[0]) == [(1, "before"), (2, "after")]
    assert "write turn_append failed (attempt 2)" in caplog.text


async def test_writes_queued_while_the_database_is_busy_keep_their_order(call):
    written = threading.Event()
    release = threading.Event()

    def slow_write(**kwargs):
        written.set()
        release.wait(5)
        services.event_record(**kwargs)

    writer = Persister()
    writer.write(slow_write, call_id=call.id, type="error", payload={"n": 1})
    writer.write(services.event_record, call_id=call.id, type="error", payload={"n": 2})
    await asyncio.to_thread(written.wait, 5)  # the database is busy: write() still returns at once
    writer.write(services.event_record, call_id=call.id, type="error", payload={"n": 3})
    release.set()
    await writer.drain()
    payloads = await asyncio.to_thread(
        lambda: [
            e.payload["n"] for e in CallEvent.objects.filter(call=call, type="error").order_by("id")
        ]
    )
    assert payloads == [1, 2, 3]


async def test_a_failing_write_is_retried_once_and_does_not_stop_the_others(call, caplog):
    attempts: list[int] = []

    def broken(**kwargs):
        attempts.append(1)
        raise RuntimeError("disk on fire")

    writer = Persister()
    writer.write(services.turn_append, call_id=call.id, speaker="agent", text="before")
    writer.write(broken)
    writer.write(services.turn_append, call_id=call.id, speaker="agent", text="after")
    await writer.drain()
    assert await asyncio.to_thread(_turns, call) == [(1, "before"), (2, "after")]
    assert len(attempts) == 3  # once in the batch, then twice on its own
    assert "write broken failed (attempt 2)" in caplog.text


async def test_stored_turns_are_published_from_the_event_loop(call):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(events_group(call.uuid), channel)
    writer = Persister()
    writer.write(services.turn_append, call_id=call.id, speaker="caller", text="hello there")
    await writer.drain()
    message = await asyncio.wait_for(layer.receive(channel), 2)
    assert (message["type"], message["seq"], message["text"]) == ("call.turn", 1, "hello there")


async def test_nothing_is_published_for_a_write_that_was_rolled_back(call):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(events_group(call.uuid), channel)

    def half_written(**kwargs):
        services.turn_append(call_id=call.id, speaker="agent", text="never stored")
        raise RuntimeError("failed after the insert")

    writer = Persister()
    writer.write(half_written)
    await writer.drain()
    assert await asyncio.to_thread(_turns, call) == []
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.3)
