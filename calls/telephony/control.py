"""Live control of a call: the API asks, the consumer holding the call (any process) acts."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError

from calls import services
from calls.events import control_group
from calls.models import Call, EventType
from calls.status import CallStatus
from calls.telephony import carrier, policy

log = logging.getLogger(__name__)


class CallNotActive(ValidationError):
    def __init__(self, call: Call) -> None:
        super().__init__({"status": [f"the call is {call.status}; it cannot be controlled"]})


def _send(call: Call, action: str, **args: object) -> None:
    layer = get_channel_layer()
    async_to_sync(layer.group_send)(
        control_group(call.uuid), {"type": "call.control", "action": action, **args}
    )


def _require_active(call: Call) -> None:
    if not call.is_active:
        raise CallNotActive(call)


def _require_live(call: Call) -> None:
    _require_active(call)
    if call.status != CallStatus.IN_PROGRESS:
        raise ValidationError({"status": [f"the call is {call.status}, not in progress yet"]})


def hang_up(call: Call, *, reason: str = "hung up by operator") -> Call:
    """Hang up now. Goes to the carrier directly, so it works even if no stream is connected."""
    _require_active(call)
    services.event_record(call_id=call.pk, type=EventType.CONTROL, payload={"action": "hangup"})
    # Recorded first: the carrier stops the stream before its API call returns, and the session
    # would otherwise end the call as "stream stopped".
    services.call_update_outcome(call_id=call.pk, end_reason=reason)
    if call.twilio_sid:
        status = "completed" if call.status == CallStatus.IN_PROGRESS else "canceled"
        carrier.update_call(call.twilio_sid, status=status)
    _send(call, "hangup", reason=reason)
    return services.call_end(call_id=call.pk, reason=reason)


def transfer(call: Call, *, to: str) -> None:
    _require_live(call)
    number = policy.check(services.normalize_number(to, field="to"))
    services.event_record(
        call_id=call.pk, type=EventType.CONTROL, payload={"action": "transfer", "to": number}
    )
    _send(call, "transfer", to=number)


def press_digits(call: Call, *, digits: str) -> None:
    _require_live(call)
    if not digits or any(ch not in "0123456789*#wW" for ch in digits) or len(digits) > 32:
        raise ValidationError({"digits": ["use 0-9, * and #, with w for a half-second pause"]})
    services.event_record(
        call_id=call.pk,
        type=EventType.CONTROL,
        payload={"action": "press_digits", "digits": digits},
    )
    _send(call, "press_digits", digits=digits)


def say(call: Call, *, text: str) -> None:
    _require_live(call)
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": ["say something"]})
    services.event_record(
        call_id=call.pk, type=EventType.OVERRIDE, payload={"action": "say", "text": text}
    )
    _send(call, "say", text=text)
