"""Deepgram Aura TTS over deepgram-sdk 7: raw 8 kHz mu-law streamed from `speak.v1.audio`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from calls.providers.deepgram_client import deepgram_client, describe
from calls.providers.tts.base import TTSError, TTSOptions, TTSProvider


class DeepgramTTS(TTSProvider):
    """`options.voice` (or `options.model`) names the Aura model, e.g. "aura-2-thalia-en".

    `timeout_s` bounds connecting and each wait between streamed chunks. Any failure, before or
    during the stream, is raised as TTSError. Extra keyword arguments go to `generate` (e.g.
    `speed=1.1`); `TTSOptions.extra` overrides them per request.
    """

    name = "deepgram"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "",
        model: str = "aura-2-thalia-en",
        timeout_s: float = 15.0,
        **params: Any,
    ):
        self.api_key = api_key
        self.base_url = base_url
        self.model = model
        self.timeout_s = timeout_s
        self.params = params
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = deepgram_client(
                api_key=self.api_key, base_url=self.base_url, timeout=self.timeout_s, max_retries=0
            )
        return self._client

    async def warm_up(self, options: TTSOptions) -> None:
        self._get_client()

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncIterator[bytes]:
        if not text.strip():
            return
        model = options.voice or options.model or self.model
        try:
            stream = self._get_client().speak.v1.audio.generate(
                text=text,
                model=model,
                encoding="mulaw",
                sample_rate=8000,
                container="none",
                **{**self.params, **options.extra},
            )
            async for chunk in stream:
                if chunk:
                    yield chunk
        except Exception as exc:
            raise TTSError(f"Deepgram TTS failed: {describe(exc)}") from exc
