"""Deepgram Aura text-to-speech, `POST /v1/speak`: audio for the text, streamed in chunks."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from calls.sandbox.emulators.base import (
    SAMPLE_RATE,
    Faults,
    mulaw_decode,
    stream_chunks,
    text_audio,
)
from calls.sandbox.emulators.deepgram_http import authorized, error

if TYPE_CHECKING:
    from calls.sandbox.emulators.deepgram import DeepgramEmulator


@dataclass
class SpeakRecord:
    query: dict[str, str]
    body: Any
    status: int = 200
    bytes_sent: int = 0


async def handle_speak(emu: DeepgramEmulator, request: web.Request) -> web.StreamResponse:
    q = dict(request.query)
    try:
        body = await request.json()
    except ValueError:
        body = None
    record = SpeakRecord(query=q, body=body)
    emu.speak_requests.append(record)
    early: web.StreamResponse | None = None
    encoding = q.get("encoding", "mp3")
    if not authorized(request, emu.api_key):
        early = error(401, "INVALID_AUTH", "Invalid credentials.")
    elif encoding not in ("mulaw", "linear16") or q.get("sample_rate", "8000") != "8000":
        early = error(
            400,
            "UNSUPPORTED_AUDIO_FORMAT",
            "emulator supports encoding=mulaw|linear16 at sample_rate=8000",
        )
    elif not isinstance(body, dict) or not str(body.get("text", "")).strip():
        early = error(400, "INVALID_QUERY", "body must be JSON with a non-empty text")
    faults = Faults() if early else emu.speak_faults.take()
    early = early or await faults.gate({"err_code": "INTERNAL", "err_msg": "injected"})
    if early is not None:
        record.status = early.status
        return early
    audio = text_audio(body["text"], ms_per_char=emu.ms_per_char)
    if encoding == "linear16":
        audio = mulaw_decode(audio).astype("<i2").tobytes()
    if q.get("container", "wav") == "wav":
        audio = _wav_header(len(audio), encoding) + audio
    if emu.first_byte_ms > 0:
        await asyncio.sleep(emu.first_byte_ms / 1000)
    resp = web.StreamResponse(
        headers={
            "Content-Type": "audio/basic" if encoding == "mulaw" else "audio/l16",
            "dg-model-name": q.get("model", "aura-2-thalia-en"),
            "dg-char-count": str(len(body["text"])),
            "dg-request-id": str(uuid.uuid4()),
        }
    )
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    size = SAMPLE_RATE * emu.chunk_ms // 1000 * (2 if encoding == "linear16" else 1)
    await stream_chunks(
        request,
        resp,
        audio,
        size=size,
        chunk_ms=emu.chunk_ms,
        realtime_factor=emu.realtime_factor,
        faults=faults,
        record=record,
    )
    return resp


def _wav_header(n: int, encoding: str) -> bytes:
    fmt, width = (7, 1) if encoding == "mulaw" else (1, 2)
    return (
        b"RIFF"
        + (36 + n).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + fmt.to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + SAMPLE_RATE.to_bytes(4, "little")
        + (SAMPLE_RATE * width).to_bytes(4, "little")
        + width.to_bytes(2, "little")
        + (8 * width).to_bytes(2, "little")
        + b"data"
        + n.to_bytes(4, "little")
    )
