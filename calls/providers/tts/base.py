"""The text-to-speech interface: text in, 8 kHz mu-law audio chunks out, streamed."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TTSOptions:
    voice: str = ""
    model: str = ""
    language: str = "en-US"
    extra: dict = field(default_factory=dict)


class TTSError(Exception):
    """Raised by a provider when synthesis fails (network, HTTP status, engine error)."""


class TTSProvider(abc.ABC):
    name: str = "tts"

    @abc.abstractmethod
    def synthesize(self, text: str, options: TTSOptions) -> AsyncIterator[bytes]:
        """Yield raw 8 kHz mono mu-law bytes (no header) as soon as each piece is ready."""

    async def warm_up(self, options: TTSOptions) -> None:  # noqa: B027 - optional hook
        """Open connections / load models ahead of the first request (optional)."""
