"""Signed, short-lived, single-use tokens that authorise one media stream for one call."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from calls import services
from calls.models import Call

_SALT = "calls.telephony.stream-token"


@dataclass(frozen=True)
class StreamGrant:
    call_uuid: str
    nonce: str


class InvalidToken(Exception):
    """The token is forged, expired or malformed (reuse is caught by `services.stream_claim`)."""


def issue(call_uuid: str) -> tuple[str, str]:
    """Return (token, nonce); the nonce is stored on the call and consumed on first use."""
    nonce = secrets.token_urlsafe(16)
    token = signing.dumps({"c": str(call_uuid), "n": nonce}, salt=_SALT, compress=False)
    return token, nonce


def verify(token: str) -> StreamGrant:
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.STREAM_TOKEN_TTL_SECONDS)
    except signing.SignatureExpired:
        raise InvalidToken("expired") from None
    except signing.BadSignature:
        raise InvalidToken("bad signature") from None
    if not isinstance(data, dict) or not {"c", "n"} <= data.keys():
        raise InvalidToken("malformed")
    return StreamGrant(call_uuid=str(data["c"]), nonce=str(data["n"]))


def stream_params(call: Call) -> dict[str, str]:
    """Custom parameters for a new `<Stream>` of `call`, with a fresh single-use token."""
    token, nonce = issue(str(call.uuid))
    services.stream_grant(call_id=call.pk, nonce=nonce)
    return {"call": str(call.uuid), "token": token}
