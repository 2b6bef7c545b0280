"""What a session may ask of the carrier for its call; the factory passes an implementation in."""

from __future__ import annotations

from typing import Protocol


class CallActions(Protocol):
    """Carrier requests for one call. Each raises on a refusal; the session decides what follows."""

    async def hang_up(self) -> None:
        """End the call on the carrier (its stream stops before this returns)."""

    async def transfer(self, number: str) -> None:
        """Connect the caller to `number` (E.164) and leave the call."""

    async def press_digits(self, digits: str) -> None:
        """Play `digits` as DTMF, then open a new media stream to the same session."""


class NoActions:
    """For a call with no carrier leg (tests, the bench's direct streams): every request refused."""

    async def hang_up(self) -> None:
        raise RuntimeError("this call has no carrier leg")

    async def transfer(self, number: str) -> None:
        raise RuntimeError("this call has no carrier leg")

    async def press_digits(self, digits: str) -> None:
        raise RuntimeError("this call has no carrier leg")
