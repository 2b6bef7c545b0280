"""Processor: frames pushed down the chain; stopping cancels owned tasks and never waits forever."""

from __future__ import annotations

import asyncio
import logging

from calls.pipeline import processor as processor_module
from calls.pipeline.processor import Processor


async def _stubborn(started: asyncio.Event, release: asyncio.Event) -> None:
    started.set()
    while not release.is_set():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:  # what a buggy library might do
            continue


async def test_stop_cancels_owned_tasks():
    p = Processor()
    task = p.spawn(asyncio.sleep(10), "sleeper")
    await asyncio.sleep(0)
    await p.stop()
    assert task.cancelled()


async def test_a_task_ignoring_cancellation_is_logged_and_left_behind(monkeypatch, caplog):
    monkeypatch.setattr(processor_module, "STOP_TIMEOUT_S", 0.1)
    started, release = asyncio.Event(), asyncio.Event()
    p = Processor()
    task = p.spawn(_stubborn(started, release), "stubborn")
    await started.wait()
    with caplog.at_level(logging.ERROR, logger="calls.pipeline.processor"):
        await asyncio.wait_for(p.stop(), 2.0)
    assert not task.done()
    [record] = caplog.records
    assert "task stubborn still running" in record.getMessage()
    assert "in _stubborn" in record.getMessage()
    release.set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_push_hands_the_frame_to_the_next_processor_and_ends_quietly_at_the_end():
    from calls.pipeline.processor import Pipeline, Sink

    seen: list[object] = []
    first, last = Processor(), Processor()
    Pipeline([first, last, Sink(seen.append)])
    await first.push("frame")  # first -> last.process -> its push -> the sink
    assert seen == ["frame"]
    alone = Processor()
    assert await alone.push("nowhere") is None  # past the end of a chain: nothing happens
