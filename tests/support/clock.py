"""A clock that moves only when told: give it to `CallContext(clock=...)` or `Phone(clock=...)`."""

from __future__ import annotations


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t
