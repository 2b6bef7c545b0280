"""The call status life cycle (Twilio's values) and which transitions are legal."""

from __future__ import annotations

from django.db import models


class CallStatus(models.TextChoices):
    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"


S = CallStatus
TERMINAL: frozenset[str] = frozenset({S.COMPLETED, S.BUSY, S.FAILED, S.NO_ANSWER, S.CANCELED})
ACTIVE: frozenset[str] = frozenset({S.QUEUED, S.RINGING, S.IN_PROGRESS})

_ALLOWED: dict[str, frozenset[str]] = {
    S.QUEUED: frozenset({S.RINGING, S.IN_PROGRESS, *TERMINAL}),
    S.RINGING: frozenset({S.IN_PROGRESS, *TERMINAL}),
    # Once answered a call can only end: completed, or failed when the stream broke.
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.FAILED}),
    **{t: frozenset() for t in TERMINAL},
}


class IllegalTransition(ValueError):
    def __init__(self, current: str, new: str) -> None:
        super().__init__(f"illegal status transition {current!r} -> {new!r}")
        self.current, self.new = current, new


def can_transition(current: str, new: str) -> bool:
    return new in _ALLOWED.get(current, frozenset())


def is_stale(current: str, new: str) -> bool:
    """True for a late or repeated status (a `ringing` after `completed`): safe to ignore."""
    order = [S.QUEUED, S.RINGING, S.IN_PROGRESS]
    if new == current or current in TERMINAL:
        return True
    return new in order and current in order and order.index(new) < order.index(current)
