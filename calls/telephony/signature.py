"""X-Twilio-Signature checks, against the URL as Twilio saw it (PUBLIC_BASE_URL + path + query)."""

from __future__ import annotations

import functools
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponseForbidden
from twilio.request_validator import RequestValidator

from calls.telephony.twiml import media_stream_url

log = logging.getLogger(__name__)


def public_url(request: HttpRequest) -> str:
    """The URL Twilio requested: our public base (proxies rewrite host and scheme) + full path."""
    return settings.PUBLIC_BASE_URL + request.get_full_path()


def is_valid(request: HttpRequest) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    params = request.POST if request.method == "POST" else {}
    return validator.validate(public_url(request), params, signature)


def twilio_signed(view):
    """Reject (403) any request not signed by Twilio with our auth token."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not is_valid(request):
            log.warning(
                "forged or unsigned Twilio webhook rejected: %s from %s",
                request.path,
                request.META.get("REMOTE_ADDR"),
            )
            return HttpResponseForbidden("invalid Twilio signature")
        return view(request, *args, **kwargs)

    return wrapper


def stream_upgrade_allowed(scope: dict) -> bool:
    """The media socket's upgrade, signed by Twilio over the stream URL our TwiML names (no
    form parameters). An unsigned upgrade is let in only with the sandbox carrier on."""
    signature = next(
        (v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-twilio-signature"), ""
    )
    if not signature:
        return bool(settings.SANDBOX_CARRIER)
    query = scope.get("query_string", b"").decode("latin-1")
    url = media_stream_url() + (f"?{query}" if query else "")
    return RequestValidator(settings.TWILIO_AUTH_TOKEN).validate(url, {}, signature)
