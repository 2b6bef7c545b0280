"""The call status state machine."""

import pytest

from calls.status import ACTIVE, TERMINAL, CallStatus, can_transition, is_stale

S = CallStatus


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.QUEUED, S.RINGING), (S.QUEUED, S.IN_PROGRESS), (S.QUEUED, S.FAILED),
        (S.QUEUED, S.CANCELED), (S.RINGING, S.IN_PROGRESS), (S.RINGING, S.BUSY),
        (S.RINGING, S.NO_ANSWER), (S.RINGING, S.CANCELED), (S.IN_PROGRESS, S.COMPLETED),
        (S.IN_PROGRESS, S.FAILED),
    ],
)  # fmt: skip
def test_legal_transitions(current, new):
    assert can_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [(S.IN_PROGRESS, S.BUSY), (S.IN_PROGRESS, S.NO_ANSWER), (S.IN_PROGRESS, S.CANCELED),
     (S.IN_PROGRESS, S.RINGING), (S.RINGING, S.QUEUED)]
    + [(t, s) for t in sorted(TERMINAL) for s in S if s != t],
)  # fmt: skip
def test_illegal_transitions(current, new):
    assert not can_transition(current, new)


def test_stale_statuses_are_recognised():
    assert is_stale(S.COMPLETED, S.RINGING)
    assert is_stale(S.IN_PROGRESS, S.RINGING)
    assert is_stale(S.RINGING, S.RINGING)
    assert not is_stale(S.RINGING, S.IN_PROGRESS)
    assert not is_stale(S.IN_PROGRESS, S.BUSY)  # illegal, not stale: must be reported
    assert ACTIVE.isdisjoint(TERMINAL)
