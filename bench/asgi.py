"""The production ASGI application plus one bench-only HTTP route that warms a call's greeting.

    daphne -b 127.0.0.1 -p PORT bench.asgi:application
    POST /__bench__/warm-greeting?call=<uuid>  -> {"pieces": 2, "ms": 104.2}

Every other request, and every WebSocket, goes to `callcenter.asgi.application` untouched (one
dispatch per connection, nothing per message). The route does for the calls the bench stores
itself what `calls.runtime.dial.call_start` does for a placed call while the phone rings: it
pre-synthesises the greeting into `calls.pipeline.tts.audio_cache`, split the way the TTS
processor splits a `Say`, so the greeting's first frame can go out from the cache.

BENCH_PROBE=1 (set by bench/load.py) installs bench/probe.py as the server's stream observer
(calls.live.observers): per-frame timing of the media consumer, an event-loop lag sampler, and
`GET /__bench__/probe` to read them.
"""

from __future__ import annotations

import json
import os
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from callcenter.asgi import application as production
from calls.models import Call
from calls.pipeline.chunker import TextChunker
from calls.pipeline.tts import synthesize_cached
from calls.runtime.factory import build_session

WARM_PATH = "/__bench__/warm-greeting"
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
