"""ElevenLabs TTS emulator: REST convert/stream and the `stream-input` WebSocket, synthetic audio.

    emu = ElevenLabsEmulator(api_key="test-key", first_byte_ms=150, realtime_factor=0)
    emu.http_faults = Faults(status=500, times=1)   # message = audio chunk sent
    emu.ws_faults = Faults(drop_after_messages=3)   # message = audio message sent
    async with emu.server() as srv: AsyncElevenLabs(api_key="test-key", base_url=srv.base_url)
    emu.requests[-1].body / .query / .voice_id;  emu.ws_sessions[-1].received / .audio_messages
    python -m calls.sandbox.emulators.elevenlabs --port 8096 --first-byte-ms 150

REST: `POST /v1/text-to-speech/{voice_id}[/stream]?output_format=ulaw_8000|pcm_8000`, header
`xi-api-key`, body {"text", "model_id", ...}; audio is ~`ms_per_char` ms per character of
speech-like signal, written in `chunk_ms` chunks after `first_byte_ms`.

WebSocket: `/v1/text-to-speech/{voice_id}/stream-input?model_id=&output_format=ulaw_8000`.
A wrong `xi-api-key` header is refused with 401 before the upgrade; without the header the first
message must carry "xi-api-key" (or "authorization": "Bearer <key>"). The first message must
be {"text": " ", ...}. Text accumulates until it reaches the next `chunk_length_schedule` size
(default [120, 160, 250, 290]), or a message has "flush" / "try_trigger_generation" true;
{"text": ""} generates what is left, sends {"isFinal": true} and closes with 1000. Each audio
message is {"audio": b64, "isFinal": null, "normalizedAlignment": {...}, "alignment": {...}} with
character timings (ms) relative to the start of that message's audio. Errors are sent as
{"message", "error", "code"} and the socket closes with 1008.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from calls.sandbox.emulators.base import (
    SAMPLE_RATE,
    EmulatorServer,
    Faults,
    abort,
    mulaw_decode,
    new_app,
    run_cli,
    stream_chunks,
    text_audio,
    track_ws,
)

FORMATS = {"ulaw_8000": ("audio/basic", 1), "pcm_8000": ("audio/pcm", 2)}
DEFAULT_SCHEDULE = (120, 160, 250, 290)


@dataclass
class TTSRecord:
    voice_id: str
    streaming: bool
    query: dict[str, str]
    body: Any
    status: int = 200
    bytes_sent: int = 0
    peer: str = ""  # the client's address:port: which connection carried the request


@dataclass
class WSRecord:
    voice_id: str
    query: dict[str, str]
    status: int = 101
    received: list[dict] = field(default_factory=list)
    generations: list[str] = field(default_factory=list)
    audio_messages: int = 0
    bytes_sent: int = 0
    close_code: int | None = None


def _detail(status: str, message: str) -> dict:
    return {"detail": {"status": status, "message": message}}


class ElevenLabsEmulator:
    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        first_byte_ms: float = 0.0,
        ms_per_char: float = 67.0,
        chunk_ms: int = 40,
        realtime_factor: float = 0.0,
        http_faults: Faults | None = None,
        ws_faults: Faults | None = None,
    ):
        self.api_key = api_key  # None accepts any key
        self.first_byte_ms = first_byte_ms
        self.ms_per_char = ms_per_char
        self.chunk_ms = chunk_ms
        self.realtime_factor = realtime_factor  # 0 = as fast as possible
        self.http_faults = http_faults or Faults()
        self.ws_faults = ws_faults or Faults()
        self.requests: list[TTSRecord] = []
        self.ws_sessions: list[WSRecord] = []

    def app(self) -> web.Application:
        app = new_app()
        app.router.add_post("/v1/text-to-speech/{voice_id}", self._tts)
        app.router.add_post("/v1/text-to-speech/{voice_id}/stream", self._tts)
        app.router.add_get("/v1/text-to-speech/{voice_id}/stream-input", self._stream_input)
        return app

    def server(self, *, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
        return EmulatorServer(self.app(), host=host, port=port)

    def _key_ok(self, key: str | None) -> bool:
        return bool(key) and (self.api_key is None or key == self.api_key)

    def _audio(self, text: str, output_format: str) -> bytes:
        audio = text_audio(text, ms_per_char=self.ms_per_char)
        if output_format == "pcm_8000":
            return mulaw_decode(audio).astype("<i2").tobytes()
        return audio

    async def _tts(self, request: web.Request) -> web.StreamResponse:
        q = dict(request.query)
        try:
            body = await request.json()
        except ValueError:
            body = None
        record = TTSRecord(
            voice_id=request.match_info["voice_id"],
            streaming=request.path.endswith("/stream"),
            query=q,
            body=body,
            peer=":".join(map(str, (request.transport.get_extra_info("peername") or ())[:2])),
        )
        self.requests.append(record)
        fmt = q.get("output_format", "mp3_44100_128")
        early: web.StreamResponse | None = None
        if not self._key_ok(request.headers.get("xi-api-key")):
            early = web.json_response(_detail("invalid_api_key", "Invalid API key"), status=401)
        elif fmt not in FORMATS:
            early = web.json_response(
                _detail("invalid_output_format", f"emulator supports {', '.join(FORMATS)}"),
                status=400,
            )
        elif not isinstance(body, dict) or not str(body.get("text", "")).strip():
            early = web.json_response(
                {
                    "detail": [
                        {
                            "loc": ["body", "text"],
                            "msg": "field required",
                            "type": "value_error.missing",
                        }
                    ]
                },
                status=422,
            )
        faults = Faults() if early else self.http_faults.take()
        early = early or await faults.gate(_detail("internal_error", "injected"))
        if early is not None:
            record.status = early.status
            return early
        audio = self._audio(body["text"], fmt)
        if self.first_byte_ms > 0:
            await asyncio.sleep(self.first_byte_ms / 1000)
        content_type, width = FORMATS[fmt]
        resp = web.StreamResponse(headers={"Content-Type": content_type})
        if record.streaming:
            resp.enable_chunked_encoding()
        else:
            resp.content_length = len(audio)
        await resp.prepare(request)
        await stream_chunks(
            request,
            resp,
            audio,
            size=SAMPLE_RATE * self.chunk_ms // 1000 * width,
            chunk_ms=self.chunk_ms,
            realtime_factor=self.realtime_factor,
            faults=faults,
            record=record,
        )
        return resp

    async def _stream_input(self, request: web.Request) -> web.StreamResponse:
        q = dict(request.query)
        record = WSRecord(voice_id=request.match_info["voice_id"], query=q)
        self.ws_sessions.append(record)
        header_key = request.headers.get("xi-api-key")
        fmt = q.get("output_format", "mp3_44100_128")
        early: web.StreamResponse | None = None
        if header_key is not None and not self._key_ok(header_key):
            early = web.json_response(_detail("invalid_api_key", "Invalid API key"), status=401)
        elif fmt not in FORMATS:
            early = web.json_response(
                _detail("invalid_output_format", f"emulator supports {', '.join(FORMATS)}"),
                status=400,
            )
        faults = Faults() if early else self.ws_faults.take()
        early = early or await faults.gate(_detail("internal_error", "injected"))
        if early is not None:
            record.status = early.status
            return early
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with track_ws(request, ws):
            session = _StreamInput(
                self, request, ws, record, faults, fmt, authed=header_key is not None
            )
            await session.run(float(q.get("inactivity_timeout", 20)))
        record.close_code = ws.close_code
        return ws


class _StreamInput:
    """One stream-input socket: a reader that buffers text and a writer that sends audio."""

    def __init__(
        self,
        emu: ElevenLabsEmulator,
        request: web.Request,
        ws: web.WebSocketResponse,
        record: WSRecord,
        faults: Faults,
        fmt: str,
        *,
        authed: bool,
    ):
        self.emu, self.request, self.ws, self.record = emu, request, ws, record
        self.faults, self.fmt, self.authed = faults, fmt, authed
        self.schedule: list[int] = list(DEFAULT_SCHEDULE)
        self.generated = 0
        self.buffer = ""
        self.jobs: asyncio.Queue[str | None] = asyncio.Queue()

    async def run(self, inactivity_s: float) -> None:
        writer = asyncio.create_task(self._writer())
        drop = None
        if self.faults.drop_after_s is not None:
            drop = asyncio.create_task(self._drop_later(self.faults.drop_after_s))
        try:
            await self._reader(inactivity_s)
            if not self.ws.closed:
                await writer
        finally:
            for task in (writer, drop):
                if task is not None:
                    task.cancel()

    async def _fail(self, error: str, message: str) -> None:
        await self.ws.send_str(json.dumps({"message": message, "error": error, "code": 1008}))
        await self.ws.close(code=1008, message=error.encode())

    async def _reader(self, inactivity_s: float) -> None:
        first = True
        while not self.ws.closed:
            try:
                msg = await self.ws.receive(timeout=inactivity_s)
            except TimeoutError:
                await self._fail(
                    "input_timeout_exceeded", f"no text received for {inactivity_s:g} seconds"
                )
                return
            if msg.type != WSMsgType.TEXT:
                return
            try:
                data = json.loads(msg.data)
            except ValueError:
                await self._fail("invalid_message", "messages must be JSON")
                return
            self.record.received.append(data)
            if first:
                first = False
                if not await self._init(data):
                    return
                continue
            text = data.get("text")
            if text is None:
                await self._fail("invalid_message", "missing field: text")
                return
            if text == "":
                self._generate()
                await self.jobs.put(None)
                return
            self.buffer += text
            if (
                data.get("flush")
                or data.get("try_trigger_generation")
                or len(self.buffer) >= (self.schedule[min(self.generated, len(self.schedule) - 1)])
            ):
                self._generate()

    async def _init(self, data: dict) -> bool:
        key = data.get("xi-api-key") or (data.get("authorization") or "").removeprefix("Bearer ")
        if not self.authed and not self.emu._key_ok(key or None):
            await self._fail("invalid_api_key", "Invalid API key")
            return False
        if data.get("text") != " ":
            await self._fail("invalid_message", 'the first message must have text " "')
            return False
        schedule = (data.get("generation_config") or {}).get("chunk_length_schedule")
        if schedule:
            self.schedule = [int(n) for n in schedule]
        return True

    def _generate(self) -> None:
        if self.buffer.strip():
            self.jobs.put_nowait(self.buffer)
            self.record.generations.append(self.buffer)
            self.generated += 1
        self.buffer = ""

    async def _writer(self) -> None:
        width = FORMATS[self.fmt][1]
        size = SAMPLE_RATE * self.emu.chunk_ms // 1000 * width
        while (text := await self.jobs.get()) is not None:
            if self.emu.first_byte_ms > 0:
                await asyncio.sleep(self.emu.first_byte_ms / 1000)
            audio = self.emu._audio(text, self.fmt)
            per_char = len(audio) / width / SAMPLE_RATE * 1000 / max(1, len(text))
            for i in range(0, len(audio), size):
                piece = audio[i : i + size]
                t0 = i / width / SAMPLE_RATE * 1000
                t1 = t0 + len(piece) / width / SAMPLE_RATE * 1000
                chars = [
                    (c, round(k * per_char - t0))
                    for k, c in enumerate(text)
                    if t0 <= k * per_char < t1
                ]
                alignment = {
                    "chars": [c for c, _ in chars],
                    "charStartTimesMs": [s for _, s in chars],
                    "charDurationsMs": [round(per_char)] * len(chars),
                }
                await self.ws.send_str(
                    json.dumps(
                        {
                            "audio": base64.b64encode(piece).decode(),
                            "isFinal": None,
                            "normalizedAlignment": alignment,
                            "alignment": alignment,
                        }
                    )
                )
                self.record.audio_messages += 1
                self.record.bytes_sent += len(piece)
                limit = self.faults.drop_after_messages
                if limit is not None and self.record.audio_messages >= limit:
                    abort(self.request)
                    return
                if self.emu.realtime_factor > 0:
                    await asyncio.sleep(self.emu.chunk_ms / 1000 / self.emu.realtime_factor)
        await self.ws.send_str(json.dumps({"isFinal": True}))
        await self.ws.close(code=1000)

    async def _drop_later(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        abort(self.request)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8096, help="0 picks a free port")
    p.add_argument("--api-key", default="test-key", help="'' accepts any key")
    p.add_argument("--first-byte-ms", type=float, default=0.0)
    p.add_argument("--realtime-factor", type=float, default=0.0, help="pacing; 0 = burst")
    a = p.parse_args(argv)
    emu = ElevenLabsEmulator(
        api_key=a.api_key or None, first_byte_ms=a.first_byte_ms, realtime_factor=a.realtime_factor
    )
    run_cli(emu.app(), host=a.host, port=a.port, name="elevenlabs emulator")


if __name__ == "__main__":
    main()
