"""What reading Twilio media streams costs each server before any code of ours runs.

    python -m bench.sockets [--streams 100,200] [--seconds 10] [--server daphne,uvicorn]

Each server (started as `python -m callcenter.serve` starts it, pinned to CPU 0) serves a bare ASGI
app that accepts a WebSocket and drops every message. A client on CPU 1 opens N sockets and sends
Twilio-shaped `media` messages (160 bytes of mu-law, base64, in JSON) on each every 20 ms on an
absolute schedule, as the carrier does. Prints the server's CPU over the window: the floor under
`make load`'s figures (bench/README.md, "load").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time

from websockets.asyncio.client import connect

from bench.load import cpu_seconds
from bench.stack import ROOT, free_port, pinning_available
from callcenter import serve

FRAME_S = 0.02
APP = "bench.sockets:application"


async def application(scope, receive, send) -> None:
    """Accept, then read and drop every message (the server's own work only)."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


def _media(n: int) -> str:
    payload = base64.b64encode(bytes(range(160))).decode()
    return json.dumps({"event": "media", "sequenceNumber": str(n + 2), "streamSid": "MZ" + "0" * 32,
                       "media": {"track": "inbound", "chunk": str(n + 1),
                                 "timestamp": str(n * 20), "payload": payload}})  # fmt: skip


async def _drive(url: str, streams: int, seconds: float, counts: dict[str, int]) -> None:
    t0 = time.monotonic() + 1.0

    async def one(i: int) -> None:
        async with connect(url, compression=None, max_queue=None) as ws:
            start = t0 + (i % 50) * FRAME_S / 50  # spread within a frame, like calls placed apart
            n = 0
            while (due := start + n * FRAME_S) < t0 + seconds:
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -FRAME_S:
                    counts["late"] += 1
                await ws.send(_media(n))
                n += 1
            counts["sent"] += n

    await asyncio.gather(*(one(i) for i in range(streams)))


def measure(server: str, streams: int, seconds: float, pin: bool) -> dict:
    port = free_port()
    argv = serve.command(server, "127.0.0.1", port, APP)
    if pin:
        argv = ["taskset", "-c", "0", *argv]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{server} did not start") from None
                time.sleep(0.05)
        warm, counts = 3.0, {"late": 0, "sent": 0}
        loop = asyncio.new_event_loop()
        task = loop.create_task(_drive(f"ws://127.0.0.1:{port}/", streams, warm + seconds, counts))
        loop.run_until_complete(asyncio.sleep(1.0 + warm))  # sockets open, pacing settled
        cpu0, wall0 = cpu_seconds(proc.pid), time.monotonic()
        loop.run_until_complete(asyncio.sleep(seconds))
        cpu1, wall1 = cpu_seconds(proc.pid), time.monotonic()
        loop.run_until_complete(task)
        loop.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    cpu = (cpu1 - cpu0) / (wall1 - wall0)
    frames = streams / FRAME_S
    return {"server": server, "streams": streams, "cpu_percent": round(cpu * 100, 1),
            "us_per_frame": round(cpu / frames * 1e6, 1), "frames_sent": counts["sent"],
            "client_late_frames": counts["late"]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--streams", default="100,200")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--server", default=",".join(serve.SERVERS))
    a = p.parse_args(argv)
    pin = pinning_available()
    if pin:
        os.sched_setaffinity(0, {1})
    print("| server | streams | server CPU, % of a core | us per frame | client late frames |")
    print("|---|---|---|---|---|")
    for server in a.server.split(","):
        for n in (int(x) for x in a.streams.split(",")):
            r = measure(server, n, a.seconds, pin)
            print(f"| {server} | {n} | {r['cpu_percent']} | {r['us_per_frame']} "
                  f"| {r['client_late_frames']} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
