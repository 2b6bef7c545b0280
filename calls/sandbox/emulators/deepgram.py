"""Deepgram emulator: live STT `GET /v1/listen` (scripted transcripts) and Aura `POST /v1/speak`.

    emu = DeepgramEmulator(api_key="test-key", final_latency_ms=300, first_byte_ms=0)
    emu.script(["hello there", "I want a human"])          # global FIFO of transcripts
    emu.script(["only for call 7"], tag="call-7")          # used first by sockets with ?tag=call-7
    emu.listen_faults = Faults(drop_after_messages=20, times=1)   # message = client frame received
    emu.drop_connections()                                 # cut every live /v1/listen socket now
    emu.speak_faults = Faults(status=500)                  # message = audio chunk sent
    async with emu.server() as srv: ...                    # srv.base_url / srv.ws_url
    emu.connections[-1].control, .bytes_received, .query, .sent   # what happened, for assertions
    python -m calls.sandbox.emulators.deepgram --port 8098 --script "hello there"

How recognition is scripted and timed: deepgram_listen.py; the speech: deepgram_speak.py.
"""

from __future__ import annotations

import argparse
import itertools
import threading
from collections import deque
from collections.abc import Iterable
from functools import partial

from aiohttp import web

from calls.sandbox.emulators.base import EmulatorServer, Faults, abort, new_app, run_cli
from calls.sandbox.emulators.deepgram_listen import (
    NET0001,
    ListenRecord,
    ListenSession,
    handle_listen,
)
from calls.sandbox.emulators.deepgram_speak import SpeakRecord, handle_speak

__all__ = ["NET0001", "DeepgramEmulator", "ListenRecord", "SpeakRecord", "main"]


class DeepgramEmulator:
    """Deepgram's listen and speak APIs on loopback: knobs, scripts and records (see above);
    `api_key=None` accepts any key."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        final_latency_ms: float = 300.0,
        interim_every_ms: float = 300.0,
        speech_threshold: float = 500.0,
        idle_timeout_s: float | None = 10.0,
        default_text: str = "",
        first_byte_ms: float = 0.0,
        ms_per_char: float = 67.0,
        chunk_ms: int = 40,
        realtime_factor: float = 0.0,
        listen_faults: Faults | None = None,
        speak_faults: Faults | None = None,
    ):
        self.api_key = api_key  # None accepts any key
        self.final_latency_ms = final_latency_ms
        self.interim_every_ms = interim_every_ms
        self.speech_threshold = speech_threshold
        self.idle_timeout_s = idle_timeout_s
        self.default_text = default_text
        self.first_byte_ms = first_byte_ms
        self.ms_per_char = ms_per_char
        self.chunk_ms = chunk_ms
        self.realtime_factor = realtime_factor  # 0 = as fast as possible
        self.listen_faults = listen_faults or Faults()
        self.speak_faults = speak_faults or Faults()
        self.connections: list[ListenRecord] = []
        self.speak_requests: list[SpeakRecord] = []
        self._queues: dict[str | None, deque[str]] = {None: deque()}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.live: set[ListenSession] = set()  # the open /v1/listen sockets

    # --- scripting ---------------------------------------------------------------------------

    def script(self, texts: Iterable[str], *, tag: str | None = None) -> None:
        with self._lock:
            self._queues.setdefault(tag, deque()).extend(texts)

    def pending_script(self, tag: str | None = None) -> list[str]:
        with self._lock:
            return list(self._queues.get(tag, ()))

    def _queue_for(self, tag: str | None) -> tuple[str | None, deque[str]]:
        if tag is not None and self._queues.get(tag):
            return tag, self._queues[tag]
        return None, self._queues[None]

    def peek_script(self, tag: str | None) -> str:
        """The text the next final would carry (interims show its first words)."""
        with self._lock:
            _, q = self._queue_for(tag)
            return q[0] if q else self.default_text

    def pop_script(self, tag: str | None) -> tuple[str, str | None, bool]:
        """(text, the queue it came from, whether it was scripted) for the next final."""
        with self._lock:
            key, q = self._queue_for(tag)
            if q:
                return q.popleft(), key, True
            return self.default_text, key, False

    def give_back(self, items: list[tuple[str, str | None]]) -> None:
        """Texts of finals that never went out return to the front of their queues."""
        with self._lock:
            for text, key in reversed(items):
                self._queues.setdefault(key, deque()).appendleft(text)

    def drop_connections(self) -> int:
        """Cut every open `/v1/listen` socket now (call on the emulator's loop)."""
        live = list(self.live)
        for session in live:
            session.record.close_reason = "dropped (drop_connections)"
            abort(session.request)
        return len(live)

    def next_id(self) -> int:
        return next(self._ids)

    # --- app ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = new_app()
        app.router.add_get("/v1/listen", partial(handle_listen, self))
        app.router.add_post("/v1/speak", partial(handle_speak, self))
        return app

    def server(self, *, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
        return EmulatorServer(self.app(), host=host, port=port)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8098, help="0 picks a free port")
    p.add_argument("--api-key", default="test-key", help="'' accepts any key")
    p.add_argument("--final-latency-ms", type=float, default=300.0)
    p.add_argument("--first-byte-ms", type=float, default=0.0, help="TTS first-byte latency")
    p.add_argument("--realtime-factor", type=float, default=0.0, help="TTS pacing; 0 = burst")
    p.add_argument("--script", action="append", default=[], help="a transcript (repeatable)")
    p.add_argument("--default-text", default="", help="final text once the script runs out")
    a = p.parse_args(argv)
    emu = DeepgramEmulator(
        api_key=a.api_key or None,
        final_latency_ms=a.final_latency_ms,
        first_byte_ms=a.first_byte_ms,
        realtime_factor=a.realtime_factor,
        default_text=a.default_text,
    )
    emu.script(a.script)
    run_cli(emu.app(), host=a.host, port=a.port, name="deepgram emulator")


if __name__ == "__main__":
    main()
