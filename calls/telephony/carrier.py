"""Carrier actions on a call through the Twilio REST API (real Twilio or the sandbox carrier)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from twilio.base.exceptions import TwilioException, TwilioRestException

from calls.telephony import policy
from calls.telephony.client import twilio_client

log = logging.getLogger(__name__)

STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
# Twilio error codes that mean the request itself was wrong (the caller can fix it).
_NUMBER_ERRORS = {21211: "to", 21214: "to", 21215: "to", 21217: "to", 21210: "from", 21212: "from"}


@dataclass
class CarrierError(Exception):
    """The carrier refused or failed a request; `field` names the input at fault, if any."""

    message: str
    code: int | None = None
    status: int | None = None
    field: str = ""

    def __str__(self) -> str:
        return self.message


def _wrap(exc: Exception) -> CarrierError:
    if isinstance(exc, TwilioRestException):
        msg = f"carrier error {exc.code}: {exc.msg}" if exc.code else f"carrier error: {exc.msg}"
        return CarrierError(msg, exc.code, exc.status, _NUMBER_ERRORS.get(exc.code or 0, ""))
    return CarrierError(f"carrier unreachable: {exc}")


def status_callback_url(call_uuid: str) -> str:
    """Carries our call id, so callbacks find the call even before its SID is stored."""
    return f"{settings.PUBLIC_BASE_URL}{reverse('twilio-status')}?call={call_uuid}"


def answer_url(call_uuid: str) -> str:
    """Where the carrier fetches what to do once the callee answers: the stream and its token."""
    return f"{settings.PUBLIC_BASE_URL}{reverse('twilio-answer')}?call={call_uuid}"


def create_call(
    *,
    call_uuid: str,
    to: str,
    from_: str,
    time_limit: int | None = None,
    machine_detection: bool = False,
    record: bool = False,
) -> str:
    """Place a call; returns the call SID, or raises CarrierError (or DialRefused: `to` is checked
    against the dialling policy here too, so no caller of this can skip it). Once answered, the
    carrier asks `answer_url` for the stream: its token is issued then, not while the call waits
    in the carrier's queue (calls per second) or rings."""
    policy.check(to)
    kwargs: dict[str, object] = {
        "to": to,
        "from_": from_,
        "url": answer_url(call_uuid),
        "method": "POST",
        "status_callback": status_callback_url(call_uuid),
        "status_callback_event": STATUS_EVENTS,
        "status_callback_method": "POST",
    }
    if time_limit:
        kwargs["time_limit"] = time_limit
    if machine_detection:
        kwargs["machine_detection"] = "Enable"
    if record:
        kwargs["record"] = True
    try:
        return twilio_client().calls.create(**kwargs).sid
    except (TwilioException, OSError) as exc:
        raise _wrap(exc) from exc


def update_call(sid: str, **fields: str) -> None:
    """`status="completed"` hangs up; `twiml=...` replaces what the call is doing."""
    try:
        twilio_client().calls(sid).update(**fields)
    except (TwilioException, OSError) as exc:
        raise _wrap(exc) from exc
