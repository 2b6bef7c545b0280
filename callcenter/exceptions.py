"""API error handling: domain errors from services become clear 4xx/5xx answers with field messages."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from calls.status import IllegalTransition
from calls.telephony.carrier import CarrierError
from calls.telephony.policy import LimitReached


def api_exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, IllegalTransition):
        exc = exceptions.ValidationError({"status": [str(exc)]})
    elif isinstance(exc, ProtectedError):
        return Response(
            {"detail": "still referenced (e.g. a persona with calls); it cannot be deleted"},
            status=status.HTTP_409_CONFLICT,
        )
    elif isinstance(exc, LimitReached):
        return Response(
            {"detail": str(exc)},
            status=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(exc.retry_after)},
        )
    elif isinstance(exc, CarrierError):
        call = getattr(exc, "call", None)
        body: dict[str, object] = {"detail": str(exc), "code": exc.code}
        if call is not None:
            body["call"] = str(call.uuid)
        if exc.field:
            body[exc.field] = [str(exc)]
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(body, status=status.HTTP_502_BAD_GATEWAY)
    return exception_handler(exc, context)
