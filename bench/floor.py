"""The emulators' own latency: each one timed by a plain client, with no server of ours in between.

What the fakes add on top of their injected latency (request parsing, synthetic audio, Deepgram's
endpoint seen on a 20 ms frame grid) is not our overhead; measuring it the same way the server
meets it gives a floor to read the bench's overhead against.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
from websockets.asyncio.client import connect

from calls.sandbox.emulators.base import silence, speech_like

FRAME_S = 0.02
# A chat request about the size the server sends: a rendered persona prompt and four tools.
_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": f"tool_{i}",
            "description": "d" * 200,
            "parameters": {"type": "object", "properties": {"x": {"type": "string"}}},
        },
    }
    for i in range(4)
]
_MESSAGES = [{"role": "system", "content": "s" * 3000}, {"role": "user", "content": "Tell me more."}]  # fmt: skip


async def llm_floor(base_url: str, key: str, injected_ms: float, n: int) -> list[float]:
    body = {"model": "gpt-4o-mini", "messages": _MESSAGES, "tools": _TOOLS, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"}
    out = []
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(n + 1):  # the first request opens the connection: not counted
            t0 = time.monotonic()
            url = f"{base_url}/v1/chat/completions"
            async with client.stream("POST", url, json=body, headers=headers) as resp:
                async for chunk in resp.aiter_raw():
                    if b'"content"' in chunk:
                        if i:
                            out.append((time.monotonic() - t0) * 1000 - injected_ms)
                        break
            await asyncio.sleep(0.1)
    return out


async def tts_floor(base_url: str, key: str, injected_ms: float, n: int) -> list[float]:
    url = f"{base_url}/v1/text-to-speech/voice/stream?output_format=ulaw_8000"
    body = {"text": "Sure, I can help.", "model_id": "eleven_flash_v2_5"}
    out = []
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(n + 1):  # the first request opens the connection: not counted
            t0 = time.monotonic()
            async with client.stream("POST", url, json=body, headers={"xi-api-key": key}) as resp:
                async for chunk in resp.aiter_raw():
                    if chunk:
                        if i:
                            out.append((time.monotonic() - t0) * 1000 - injected_ms)
                        break
            await asyncio.sleep(0.1)
    return out


async def stt_floor(
    base_url: str, key: str, injected_ms: float, n: int, *, speech_ms: int = 1000
) -> list[float]:
    """Real-time audio on one socket, as the server sends it: end of speech -> speech_final."""
    query = ("model=nova-3&encoding=mulaw&sample_rate=8000&channels=1&interim_results=true"
             "&vad_events=true&endpointing=300&utterance_end_ms=1000")  # fmt: skip
    url = base_url.replace("http", "ws", 1) + "/v1/listen?" + query
    out: list[float] = []
    loop = asyncio.get_running_loop()
    async with connect(url, additional_headers={"Authorization": f"Token {key}"}) as ws:
        for i in range(n):
            # Leading silence of varying length moves the speech around the emulator's frame grid.
            audio = silence(100 + 20 * i) + speech_like(speech_ms, seed=i) + silence(700)
            final: asyncio.Future = loop.create_future()

            async def listen(final: asyncio.Future = final) -> None:
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg.get("type") == "Results" and msg.get("speech_final"):
                        final.set_result(time.monotonic())
                        return

            listener = loop.create_task(listen())
            due, speech_end = loop.time(), 0.0
            speech_from = len(silence(100 + 20 * i))
            speech_to = speech_from + len(speech_like(speech_ms))
            for offset in range(0, len(audio), 160):
                await ws.send(audio[offset : offset + 160])
                if offset + 160 == speech_to:
                    speech_end = due
                due += FRAME_S
                await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                arrived = await asyncio.wait_for(final, 3)
                out.append((arrived - speech_end) * 1000 - injected_ms)
            except TimeoutError:
                listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
    return out


async def measure(urls: dict[str, str], keys: dict[str, str], injected, n: int) -> dict:
    return {
        "stt": await stt_floor(urls["deepgram"], keys["deepgram"], injected.stt_final, n),
        "llm": await llm_floor(urls["openai"], keys["openai"], injected.llm_first_token, n),
        "tts": await tts_floor(urls["elevenlabs"], keys["elevenlabs"], injected.tts_first_byte, n),
    }
