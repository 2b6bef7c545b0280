"""An optional observer of the live streams and calls, for measuring a running server (bench)."""

from __future__ import annotations

from typing import Protocol


class StreamObserver(Protocol):
    """Called on the server's event loop, in the audio path: each method must return at once.
    Times are `time.monotonic()` seconds."""

    def message_in(self, stream_sid: str, text: str, done: float) -> None:
        """A text message of a started stream was handled (parsed, given to the session)."""

    def media_out(self, stream_sid: str, frames: int, at: float) -> None:
        """A media message of `frames` 20 ms frames is being handed to the socket."""

    def stream_stopped(self, stream_sid: str, at: float) -> None:
        """The stream ended (a `stop`, a closed socket, or a close of ours)."""

    def call_finalised(self, call_uuid: str) -> None:
        """The call's turns, events, recording and end status are all written."""


_observer: StreamObserver | None = None


def observe(observer: StreamObserver | None) -> None:
    """Report to `observer` (None: to nobody) from the next media stream on. Unobserved, the
    consumer's per-frame path is exactly what it is without this module."""
    global _observer
    _observer = observer


def current() -> StreamObserver | None:
    return _observer
