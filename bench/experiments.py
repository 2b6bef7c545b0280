"""Proposed fixes for the load bench, patched into the server process by bench/asgi.py when
BENCH_EXPERIMENTS names them (`python -m bench.load --experiment NAME`). Each measures a change
proposed in bench/README.md before anyone makes it; none is part of the product.

  stt-no-deflate    the Deepgram SDK's socket without permessage-deflate (the SDK opens it with
                    websockets' default `compression="deflate"`, so every 160-byte frame is
                    compressed; mu-law barely compresses)
  persister-thread  the persister writes through one dedicated thread holding one SQLite
                    connection, instead of `database_sync_to_async` with `conn_max_age=0`: no
                    connect + PRAGMAs + WAL checkpoint-on-close per write, and no queueing behind
                    the thread that status callbacks and the API share
  consumer-loop     the media consumer reads its socket in a plain loop instead of Channels'
                    `await_many_dispatch` (a new task and an `asyncio.wait` per message)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


def apply(names: set[str]) -> None:
    if "stt-no-deflate" in names:
        _stt_no_deflate()
    if "persister-thread" in names:
        _persister_thread()
    if "consumer-loop" in names:
        _consumer_loop()


def _stt_no_deflate() -> None:
    from deepgram.listen.v1 import client

    client.websockets_client_connect = functools.partial(
        client.websockets_client_connect, compression=None
    )


def _persister_thread() -> None:
    from asgiref.sync import SyncToAsync

    from calls.live.persister import Persister

    executor = ThreadPoolExecutor(1, thread_name_prefix="persister-db")

    def call(loop, service, kwargs):
        # what sync_to_async sets up: the services' async_to_sync(publish) hops to this loop
        SyncToAsync.threadlocal.main_event_loop = loop
        SyncToAsync.threadlocal.main_event_loop_pid = os.getpid()
        return service(**kwargs)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while (item := await self._queue.get()) is not None:
            service, kwargs = item
            for attempt in (1, 2):
                try:
                    await loop.run_in_executor(executor, call, loop, service, kwargs)
                    break
                except Exception:
                    log.exception("write %s failed (attempt %d)", service.__name__, attempt)
                    await asyncio.sleep(0.05)

    Persister._run = _run


def _consumer_loop() -> None:
    from channels.exceptions import StopConsumer
    from channels.layers import get_channel_layer

    from calls.telephony.consumer import MediaStreamConsumer

    async def __call__(self, scope, receive, send) -> None:
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        lock = asyncio.Lock()  # one message at a time, as Channels guarantees
        side = None
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)

            async def control() -> None:
                while True:
                    message = await channel_receive()
                    async with lock:
                        await self.dispatch(message)

            side = asyncio.get_running_loop().create_task(control())
        try:
            while True:
                message = await receive()
                async with lock:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            if side is not None:
                side.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopConsumer):
                    await side

    MediaStreamConsumer.__call__ = __call__
