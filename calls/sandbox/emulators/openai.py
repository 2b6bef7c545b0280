"""Wire-level emulator of OpenAI chat completions (SSE streaming) and the Realtime GA WebSocket."""

from __future__ import annotations

import argparse
import asyncio
import itertools
from collections import deque
from functools import partial

from aiohttp import web

from calls.sandbox.emulators.base import EmulatorServer, Faults, new_app, run_cli
from calls.sandbox.emulators.openai_chat import FAULT_KINDS, ChatFaults, chat_fault, handle_chat
from calls.sandbox.emulators.openai_realtime import RealtimeSession, handle_realtime
from calls.sandbox.emulators.openai_realtime_config import (
    MS_PER_CHAR,
    SERVER_VAD_DEFAULTS,
    AudioFormat,
)
from calls.sandbox.emulators.openai_replies import (
    Reply,
    ScriptedToolCall,
    argument_pieces,
    default_reply,
    text_pieces,
)

__all__ = [
    "FAULT_KINDS",
    "MS_PER_CHAR",
    "SERVER_VAD_DEFAULTS",
    "AudioFormat",
    "ChatFaults",
    "OpenAIEmulator",
    "RealtimeSession",
    "Reply",
    "ScriptedToolCall",
    "argument_pieces",
    "default_reply",
    "main",
    "text_pieces",
]


class OpenAIEmulator:
    """OpenAI chat completions (`POST /v1/chat/completions`) and Realtime (`GET /v1/realtime`).

    Replies: `script(*replies)` queues chat replies, `script_realtime(*replies)` Realtime
    responses, `script_transcript(*texts)` what the caller said in each committed Realtime turn;
    unscripted turns get `default_reply(last user text)` / `default_transcript`.
    Pacing: `first_token_latency` and `token_delay` (seconds) apply to both APIs.
    Faults: `chat_faults` (ChatFaults) and `realtime_faults` (Faults, handshake + socket);
    `fail_next(kind, after=, count=)` sets `chat_faults` for the next requests.
    `api_key=None` accepts any Bearer key. Records: `requests` (chat bodies),
    `realtime_connections`, `realtime_events` (client events; appends skipped when
    `record_audio=False`), `truncations` (valid truncates: item_id, content_index, audio_end_ms).
    """

    def __init__(
        self,
        *,
        api_key: str | None = "sk-test",
        first_token_latency: float = 0.0,
        token_delay: float = 0.0,
        default_transcript: str = "hello",
        vad_threshold_rms: float = 300.0,
        record_audio: bool = True,
        chat_faults: ChatFaults | None = None,
        realtime_faults: Faults | None = None,
    ) -> None:
        self.api_key = api_key
        self.first_token_latency = first_token_latency
        self.token_delay = token_delay
        self.default_transcript = default_transcript
        self.vad_threshold_rms = vad_threshold_rms
        self.record_audio = record_audio  # False: appends are not kept (long benchmark runs)
        self.chat_faults = chat_faults or ChatFaults()
        self.realtime_faults = realtime_faults or Faults()
        self.replies: deque[Reply] = deque()
        self.realtime_replies: deque[Reply] = deque()
        self.transcripts: deque[str] = deque()
        self.requests: list[dict] = []
        self.request_headers: list[dict[str, str]] = []  # beside `requests`, lower-case names
        self.realtime_connections: list[dict] = []
        self.realtime_events: list[dict] = []
        self.truncations: list[dict] = []
        self._ids = itertools.count(1)
        self.stopping = asyncio.Event()  # set on server shutdown: ends hanging requests

    # knobs -----------------------------------------------------------------
    def script(self, *replies: Reply | str | dict | list | tuple) -> None:
        self.replies.extend(Reply.of(r) for r in replies)

    def script_realtime(self, *replies: Reply | str | dict | list | tuple) -> None:
        self.realtime_replies.extend(Reply.of(r) for r in replies)

    def script_transcript(self, *texts: str) -> None:
        self.transcripts.extend(texts)

    def fail_next(
        self, kind: str, *, after: int | None = None, count: int = 1, message: str = ""
    ) -> None:
        """Fail the next `count` chat requests: http_500, http_429, stream_error, drop or hang.

        `after` is the number of chunks streamed first (stream_error/drop default 1; hang with
        `after=None` never sends headers).
        """
        self.chat_faults = chat_fault(kind, after=after, count=count, message=message)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def server(self, *, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
        """`async with emu.server() as srv:` -> base_url=f"{srv.base_url}/v1", ws at srv.ws_url."""
        return EmulatorServer(self.app(), host=host, port=port)

    # app -------------------------------------------------------------------
    def app(self) -> web.Application:
        app = new_app()
        app.router.add_post("/v1/chat/completions", partial(handle_chat, self))
        app.router.add_get("/v1/realtime", partial(handle_realtime, self))
        app.on_startup.append(self._on_startup)
        app.on_shutdown.insert(0, self._on_shutdown)
        return app

    async def _on_startup(self, _app: web.Application) -> None:
        self.stopping = asyncio.Event()

    async def _on_shutdown(self, _app: web.Application) -> None:
        self.stopping.set()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8097)
    parser.add_argument("--api-key", default="sk-test", help="'' accepts any Bearer key")
    parser.add_argument("--first-token-ms", type=float, default=0.0)
    parser.add_argument("--token-delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    emu = OpenAIEmulator(
        api_key=args.api_key or None,
        first_token_latency=args.first_token_ms / 1000,
        token_delay=args.token_delay_ms / 1000,
    )
    run_cli(emu.app(), host=args.host, port=args.port, name="openai emulator")


if __name__ == "__main__":
    main()
