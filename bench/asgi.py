"""The production ASGI application plus one bench-only HTTP route that warms a call's greeting.

    daphne -b 127.0.0.1 -p PORT bench.asgi:application
    POST /__bench__/warm-greeting?call=<uuid>  -> {"pieces": 2, "ms": 104.2}

Every other request, and every WebSocket, goes to `callcenter.asgi.application` untouched (one
dispatch per connection, nothing per message). The route does what nothing in the product does
yet: it pre-synthesises the call's greeting into `calls.pipeline.tts.audio_cache`, split the way
the TTS processor splits a `Say`, so the greeting's first frame can go out from the cache.

BENCH_EXPERIMENTS (comma-separated; off unless `--experiment` asks) patches this server process to
measure a proposed fix before anyone makes it; the report names the experiments that were on:
  frame-dispatch  the media consumer skips Channels' per-message `aclose_old_connections` thread
                  hop (channels/consumer.py AsyncConsumer.dispatch) on every inbound frame
  preload         provider SDKs imported and clients built at startup, not in the first call
  stt-no-deflate, persister-thread, consumer-loop: for the load bench, see bench/experiments.py

BENCH_PROBE=1 (set by bench/load.py) installs bench/probe.py: per-frame timing of the media
consumer, an event-loop lag sampler, and `GET /__bench__/probe` to read them.
"""

from __future__ import annotations

import json
import os
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from bench import experiments
from bench.stack import KNOWN_EXPERIMENTS, LOAD_EXPERIMENTS
from callcenter.asgi import application as production
from calls.live.factory import build_session
from calls.models import Call
from calls.pipeline.chunker import TextChunker
from calls.pipeline.tts import synthesize_cached

WARM_PATH = "/__bench__/warm-greeting"
EXPERIMENTS = {e for e in os.environ.get("BENCH_EXPERIMENTS", "").split(",") if e}


def _apply_experiments() -> None:
    known = (*KNOWN_EXPERIMENTS, *LOAD_EXPERIMENTS)
    unknown = EXPERIMENTS - set(known)
    if unknown:
        raise SystemExit(f"unknown BENCH_EXPERIMENTS {sorted(unknown)}; known: {known}")
    experiments.apply(EXPERIMENTS)
    if "frame-dispatch" in EXPERIMENTS:
        from channels.consumer import get_handler_name

        from calls.telephony.consumer import MediaStreamConsumer

        async def dispatch(self, message) -> None:
            # database_sync_to_async already closes stale connections around every ORM call.
            handler = getattr(self, get_handler_name(message), None)
            if handler is None:
                raise ValueError(f"No handler for message type {message['type']}")
            await handler(message)

        MediaStreamConsumer.dispatch = dispatch
    if "preload" in EXPERIMENTS:
        from calls.live import providers as registry

        for kind in ("stt", "llm", "tts", "tts_fallback"):
            registry.provider(kind)


_apply_experiments()
PROBE = os.environ.get("BENCH_PROBE") == "1"
if PROBE:
    from bench import probe

    probe.install()


async def application(scope, receive, send) -> None:
    if PROBE:
        probe.PROBE.ensure_loop_probe()
        if scope["type"] == "http" and scope["path"] == probe.PROBE_PATH:
            await probe.serve(scope, receive, send)
            return
    if scope["type"] == "http" and scope["path"] == WARM_PATH:
        await _warm(scope, receive, send)
    else:
        await production(scope, receive, send)


@database_sync_to_async
def _greeting_plan(call_uuid: str):
    session = build_session(Call.objects.select_related("persona").get(uuid=call_uuid))
    chunker = TextChunker(first_clause_words=10_000)  # as TTSProcessor._enqueue_say splits a Say
    pieces = [*chunker.push(session.call.greeting + " "), *chunker.flush()]
    return session.providers.tts, session.providers.tts_options, pieces


async def _warm(scope, receive, send) -> None:
    while (await receive()).get("more_body"):
        pass
    t0 = time.monotonic()
    query = parse_qs(scope.get("query_string", b"").decode())
    try:
        provider, options, pieces = await _greeting_plan(query["call"][0])
        for piece in pieces:
            await synthesize_cached(provider, options, piece)
        status, body = 200, {"pieces": len(pieces), "ms": round((time.monotonic() - t0) * 1000, 1)}
    except Exception as exc:  # the bench reports it; the server goes on
        status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
