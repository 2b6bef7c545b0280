"""await_chain: where a suspended task is, through the gathers and tasks it waits on."""

from __future__ import annotations

import asyncio

from calls.pipeline.stacks import await_chain


async def _innermost(gate: asyncio.Event) -> None:
    await gate.wait()


async def _middle(gate: asyncio.Event) -> None:
    await _innermost(gate)


async def _outer(gate: asyncio.Event) -> None:
    child = asyncio.create_task(_middle(gate), name="the-child")
    await asyncio.gather(child)


async def test_the_chain_follows_coroutines_gathers_and_child_tasks():
    gate = asyncio.Event()
    task = asyncio.create_task(_outer(gate), name="the-parent")
    await asyncio.sleep(0.01)
    chain = await_chain(task)
    gate.set()
    await task
    lines = chain.splitlines()
    assert "in _outer" in lines[0]
    assert "awaiting _GatheringFuture" in chain
    assert "task the-child:" in chain
    assert chain.index("in _middle") < chain.index("in _innermost")
    assert chain.index("in _innermost") < chain.index("in wait")  # into asyncio's Event.wait
