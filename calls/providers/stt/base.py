"""The speech-to-text interface: a live session fed 8 kHz mu-law, yielding transcript events."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class STTOptions:
    language: str = "en-US"
    model: str = ""
    endpointing_ms: int = 300
    utterance_end_ms: int = 1000
    keywords: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Transcript:
    """A transcript of the caller's speech. `final` is a stable segment; `speech_final` ends the turn."""

    text: str
    final: bool
    speech_final: bool = False
    confidence: float = 1.0
    start: float = 0.0  # seconds since the session opened (audio time)
    end: float = 0.0


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    timestamp: float = 0.0


@dataclass(frozen=True, slots=True)
class UtteranceEnd:
    last_word_end: float = 0.0


@dataclass(frozen=True, slots=True)
class STTError:
    reason: str
    fatal: bool = False


STTEvent = Transcript | SpeechStarted | UtteranceEnd | STTError


class STTSession(abc.ABC):
    """One live recognition stream. `send` never blocks on the network for long (it buffers)."""

    @abc.abstractmethod
    async def send(self, mulaw: bytes, *, urgent: bool = True) -> None:
        """Queue caller audio. `urgent=False` lets a session hold it briefly to send fewer,
        larger messages (it is never held past the next urgent frame, finalize or close)."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[STTEvent]:
        """Events in order; the iterator ends when the session is closed or lost."""

    async def finalize(self) -> None:  # noqa: B027 - optional hook
        """Ask for whatever is pending to be emitted as final now (optional)."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class STTProvider(abc.ABC):
    name: str = "stt"

    @abc.abstractmethod
    async def open(self, options: STTOptions) -> STTSession: ...
