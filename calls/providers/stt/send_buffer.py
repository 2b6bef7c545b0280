"""What a live STT session still has to send, and the audio to replay on a new socket (no I/O)."""

from __future__ import annotations

import logging
from collections import deque

log = logging.getLogger(__name__)


class SendBuffer:
    """Audio and control messages in the order given, for one logical stream over any number of
    sockets. Offsets are session bytes: `total` is the audio clock (bytes accepted so far).

    - pending: what the current socket has yet to send, capped at `buffer_bytes` of audio (the
      oldest audio is dropped past that, counted in `dropped_bytes`); control messages are
      never dropped.
    - held: non-urgent audio gathered up to `chunk_bytes` before it becomes pending, so that
      long silences go out in few messages (urgent audio sends what is held with it).
    - replay ring: the audio since the last final transcript (`confirm`), at most `replay_bytes`
      (never less than the newest piece), sent first on a new socket (`replay`).
    """

    def __init__(
        self, *, buffer_bytes: int, replay_bytes: int, chunk_bytes: int, join_max_bytes: int
    ) -> None:
        self.buffer_bytes = buffer_bytes
        self.replay_bytes = replay_bytes
        self.chunk_bytes = chunk_bytes
        self.join_max_bytes = join_max_bytes  # queued audio sent as one message up to this size
        self.total = 0
        self.pending_bytes = 0
        self.dropped_bytes = 0
        self._pending: deque[tuple[int, bytes] | str] = deque()
        self._held = bytearray()
        self._ring: deque[tuple[int, bytes]] = deque()
        self._ring_bytes = 0
        self._skip_below = 0  # pending audio below this offset already went out in a replay

    def __bool__(self) -> bool:
        """Whether anything is pending."""
        return bool(self._pending)

    # --- in ------------------------------------------------------------------------------------
    def add(self, mulaw: bytes, urgent: bool = True) -> bool:
        """Take audio; True when some became pending (the sender has work)."""
        if not urgent or self._held:  # held audio goes out first, in the same message
            self._held += mulaw
            if not urgent and len(self._held) < self.chunk_bytes:
                return False
            mulaw, self._held = bytes(self._held), bytearray()
        item = (self.total, bytes(mulaw))
        self.total += len(mulaw)
        self._ring.append(item)
        self._ring_bytes += len(mulaw)
        while self._ring_bytes > self.replay_bytes and len(self._ring) > 1:
            self._ring_bytes -= len(self._ring.popleft()[1])
        self._pending.append(item)
        self.pending_bytes += len(mulaw)
        if self.pending_bytes > self.buffer_bytes:
            if not self.dropped_bytes:
                log.warning(
                    "stt send buffer over %d bytes, dropping oldest audio", self.buffer_bytes
                )
            while self.pending_bytes > self.buffer_bytes:
                self._drop_oldest_audio()
        return True

    def flush_held(self) -> bool:
        """Make held audio pending now (before a control message, or at the end)."""
        return bool(self._held) and self.add(b"")

    def control(self, kind: str) -> None:
        self._pending.append(kind)

    def retry_control(self, kind: str) -> None:
        """A control message that failed to go out is the next one to send."""
        self._pending.appendleft(kind)

    def _drop_oldest_audio(self) -> None:
        for i, item in enumerate(self._pending):
            if isinstance(item, tuple):
                del self._pending[i]
                self.pending_bytes -= len(item[1])
                self.dropped_bytes += len(item[1])
                return

    # --- out -----------------------------------------------------------------------------------
    def pop(self) -> bytes | str | None:
        """The next message: audio (what is queued behind it joined on, up to `join_max_bytes`:
        the sender fell behind, and one message costs the server less than several) or a control
        message's kind; None when nothing is left to send."""
        pending = self._pending
        while pending:
            item = pending.popleft()
            if isinstance(item, str):
                return item
            offset, data = item
            self.pending_bytes -= len(data)
            if offset < self._skip_below:  # a replay sent it already
                continue
            if not pending or not isinstance(pending[0], tuple):
                return data  # the sender keeps up: one piece
            # Contiguous by construction (offsets only grow); a control message ends the run.
            parts, size = [data], len(data)
            while pending and isinstance(pending[0], tuple) and size < self.join_max_bytes:
                _, more = pending.popleft()
                self.pending_bytes -= len(more)
                size += len(more)
                parts.append(more)
            return data if len(parts) == 1 else b"".join(parts)
        return None

    # --- sockets -------------------------------------------------------------------------------
    def replay(self) -> tuple[int, list[bytes]]:
        """For a new socket: the session offset of its first byte, and the ring's audio to send
        on it before anything pending (pending audio the ring holds is not sent again)."""
        if not self._ring:
            self._skip_below = 0
            return self.total, []
        first, (last, data) = self._ring[0][0], self._ring[-1]
        self._skip_below = last + len(data)
        return first, [piece for _, piece in self._ring]

    def confirm(self, upto: int) -> None:
        """A final transcript covers the audio up to session offset `upto`: it is not replayed."""
        ring = self._ring
        while ring and ring[0][0] + len(ring[0][1]) <= upto:
            self._ring_bytes -= len(ring.popleft()[1])
