"""Twilio webhooks: inbound calls (answer with a media stream) and status callbacks."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from agents.models import Persona
from calls import services
from calls.models import Call, Direction
from calls.status import TERMINAL, CallStatus, IllegalTransition
from calls.telephony import twiml
from calls.telephony.signature import twilio_signed
from calls.telephony.tokens import stream_params

log = logging.getLogger(__name__)

_STATUS = {s.value for s in CallStatus}


def _xml(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="text/xml")


def _inbound_persona(dialled: str) -> Persona | None:
    slug = settings.INBOUND_PERSONAS.get(dialled) or settings.INBOUND_DEFAULT_PERSONA
    persona = Persona.objects.filter(slug=slug).first() if slug else None
    return persona or Persona.objects.order_by("id").first()


@csrf_exempt
@require_POST
@twilio_signed
def voice(request: HttpRequest) -> HttpResponse:
    """An incoming call: store it and answer with `<Connect><Stream>`."""
    sid, to, from_ = (request.POST.get(k, "") for k in ("CallSid", "To", "From"))
    existing = Call.objects.filter(twilio_sid=sid).first() if sid else None
    if existing:  # Twilio retried the webhook (our answer never reached it), or a replay
        return _stream_or_refuse(existing)
    persona = _inbound_persona(to)
    if persona is None:
        log.error("inbound call %s to %s rejected: no persona configured", sid, to)
        return _xml(twiml.reject())
    try:
        call = services.call_create(
            persona=persona, to=to, from_number=from_, direction=Direction.INBOUND,
            twilio_sid=sid, status=CallStatus.RINGING, require_variables=False,
        )  # fmt: skip
    except ValidationError as exc:
        log.warning("inbound call %s rejected: %s", sid, exc)
        return _xml(twiml.reject())
    return _xml(twiml.connect_stream(stream_params(call)))


def _stream_or_refuse(call: Call) -> HttpResponse:
    """A new stream token for a call whose stream has not started; none for one that has (a
    replayed webhook must not open a second stream) or that has ended."""
    if call.stream_sid or call.status in TERMINAL:
        log.warning("voice webhook for call %s refused: its stream already started", call.uuid)
        return _xml(twiml.hang_up())
    return _xml(twiml.connect_stream(stream_params(call)))


@csrf_exempt
@require_POST
@twilio_signed
def answer(request: HttpRequest) -> HttpResponse:
    """An outbound call was answered: connect its media stream, with a token issued now."""
    try:
        call = Call.objects.filter(uuid=request.GET.get("call", "")).first()
    except ValidationError:
        call = None
    sid = request.POST.get("CallSid", "")
    if call is None or (sid and call.twilio_sid and sid != call.twilio_sid):
        log.warning("answer webhook for an unknown call refused: call=%s sid=%s",
                    request.GET.get("call"), sid)  # fmt: skip
        return _xml(twiml.hang_up())
    return _stream_or_refuse(call)


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


@csrf_exempt
@require_POST
@twilio_signed
def status(request: HttpRequest) -> HttpResponse:
    """Call progress: idempotent, and a late or repeated status never moves a call backwards."""
    new = request.POST.get("CallStatus", "")
    sid = request.POST.get("CallSid", "")
    call_uuid = request.GET.get("call", "")
    try:
        calls = (
            Call.objects.filter(uuid=call_uuid)
            if call_uuid
            else Call.objects.filter(twilio_sid=sid)
        )
        call = calls.first()
    except ValidationError:
        call = None
    if new == "initiated":  # the carrier accepted the call: nothing changes (still queued)
        return HttpResponse(status=204)
    if call is None or new not in _STATUS:
        log.warning("status callback ignored: call=%s sid=%s status=%s", call_uuid, sid, new)
        return HttpResponse(status=204)
    if sid and not call.twilio_sid:
        services.call_update_outcome(call_id=call.pk, twilio_sid=sid)
    try:
        services.call_set_status(
            call_id=call.pk,
            status=new,
            answered_by=request.POST.get("AnsweredBy", ""),
            duration=_int(request.POST.get("CallDuration", "")),
            reason=f"carrier: {new}" if new != CallStatus.COMPLETED else "",
        )
    except IllegalTransition as exc:
        log.warning("status callback for %s ignored: %s", call.uuid, exc)
    return HttpResponse(status=204)
