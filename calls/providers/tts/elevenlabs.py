"""ElevenLabs TTS over elevenlabs 2.x: `text_to_speech.stream` as raw 8 kHz mu-law (ulaw_8000)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx

from calls.providers.tts.base import TTSError, TTSOptions, TTSProvider

try:
    from elevenlabs import AsyncElevenLabs
    from elevenlabs.core.api_error import ApiError
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "ElevenLabsTTS needs the ElevenLabs SDK: pip install 'elevenlabs>=2.78,<3'"
    ) from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return f"HTTP {exc.status_code}: {exc.body}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class ElevenLabsTTS(TTSProvider):
    """`options.voice` overrides `voice_id`, `options.model` overrides `model_id`.

    `timeout_s` bounds connecting and each wait between streamed chunks. Any failure, before or
    during the stream, is raised as TTSError. Extra keyword arguments go to `stream` (e.g.
    `voice_settings=...`, `language_code="en"`); `TTSOptions.extra` overrides them per request.

    Requests go round-robin over `pool_shards` SDK clients, each with its own connection pool
    that keeps up to `keepalive` idle connections. httpcore 1.x (the SDK's transport) scans the
    whole pool on every request and response, with a syscall per idle connection and a pass over
    every connection per idle one (quadratic); with its default of 20 kept-alive connections,
    replies that come in bursts (many calls at once) also reconnect whatever exceeds 20. Small
    pools, several of them, keep that cost flat as calls are added (bench/README.md has the figures).
    """

    name = "elevenlabs"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "",
        voice_id: str = "",
        model_id: str = "eleven_flash_v2_5",
        optimize_streaming_latency: int | None = 3,
        timeout_s: float = 15.0,
        pool_shards: int = 8,
        keepalive: int = 32,
        **params: Any,
    ):
        self.api_key = api_key
        self.base_url = base_url
        self.voice_id = voice_id
        self.model_id = model_id
        self.optimize_streaming_latency = optimize_streaming_latency
        self.timeout_s = timeout_s
        self.params = params
        self.pool_shards = max(1, pool_shards)
        self.keepalive = keepalive
        self._clients: list[AsyncElevenLabs] = []
        self._next = itertools.count()

    def _get_client(self) -> AsyncElevenLabs:
        if not self._clients:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=self.keepalive)
            tls = httpx.create_ssl_context()  # one for all: each costs ~30 ms to load the CAs
            self._clients = [
                AsyncElevenLabs(
                    api_key=self.api_key,
                    base_url=self.base_url or None,
                    timeout=self.timeout_s,
                    httpx_client=httpx.AsyncClient(
                        timeout=self.timeout_s, limits=limits, follow_redirects=True, verify=tls
                    ),
                )
                for _ in range(self.pool_shards)
            ]
        return self._clients[next(self._next) % len(self._clients)]

    async def warm_up(self, options: TTSOptions) -> None:
        self._get_client()

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncIterator[bytes]:
        if not text.strip():
            return
        voice = options.voice or self.voice_id
        if not voice:
            raise TTSError("ElevenLabsTTS needs a voice id (voice_id= or TTSOptions.voice)")
        kw: dict[str, Any] = {**self.params, **options.extra}
        if self.optimize_streaming_latency is not None:
            kw.setdefault("optimize_streaming_latency", self.optimize_streaming_latency)
        try:
            stream = self._get_client().text_to_speech.stream(
                voice,
                text=text,
                model_id=options.model or self.model_id,
                output_format="ulaw_8000",
                # Audio as the network delivers it: the SDK's default re-cuts the stream into
                # 1 kB pieces, which holds back the first 128 ms of audio until all of it is in.
                request_options={"max_retries": 0, "chunk_size": None},
                **kw,
            )
            async for chunk in stream:
                if chunk:
                    yield chunk
        except Exception as exc:
            raise TTSError(f"ElevenLabs TTS failed: {_describe(exc)}") from exc
