"""Starting outbound calls: store the call, then place it on the carrier with a stream token."""

from __future__ import annotations

import logging

from django.conf import settings

from agents import context as persona_context
from agents.models import Engine, Persona
from calls import services
from calls.live import warmup
from calls.models import Call
from calls.runtime.factory import stt_options, tts_options
from calls.status import CallStatus
from calls.telephony import carrier, policy

log = logging.getLogger(__name__)


def call_start(
    *,
    persona: Persona,
    to: str,
    variables: dict | None = None,
    welcome_message: str = "",
    from_number: str = "",
) -> Call:
    """Create the call and dial it. A number the dialling policy refuses raises DialRefused, and a
    cap reached LimitReached, before anything is stored; a carrier refusal leaves a failed call
    and raises CarrierError."""
    number = policy.check(services.normalize_number(to, field="to"))
    policy.check_capacity(number)
    call = services.call_create(
        persona=persona,
        to=to,
        variables=variables,
        welcome_message=welcome_message,
        from_number=from_number or settings.TWILIO_FROM_NUMBER,
    )
    greeting = call.welcome_message or persona_context.render_greeting(persona, call.variables)
    warmup.prefetch_greeting(greeting, tts_options(persona))  # ready before the callee answers
    if persona.engine != Engine.REALTIME:
        warmup.preopen_stt(str(call.uuid), stt_options(persona))
    try:
        sid = carrier.create_call(
            call_uuid=str(call.uuid),
            to=str(call.to_number),
            from_=str(call.from_number),
            time_limit=persona.max_duration_seconds,
            machine_detection=persona.machine_detection,
            record=persona.record_on_carrier,
        )
    except carrier.CarrierError as exc:
        log.warning("call %s refused by the carrier: %s", call.uuid, exc)
        services.call_set_status(call_id=call.pk, status=CallStatus.FAILED, reason=str(exc))
        exc.call = call  # the API reports which call failed
        raise
    services.call_update_outcome(call_id=call.pk, twilio_sid=sid)
    call.twilio_sid = sid
    return call
