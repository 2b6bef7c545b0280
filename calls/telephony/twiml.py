"""TwiML documents the product sends: connect a media stream, transfer, press digits, hang up."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from twilio.twiml.voice_response import Connect, VoiceResponse

MEDIA_PATH = "/ws/twilio/media/"


def media_stream_url() -> str:
    """`wss://<public host>/ws/twilio/media/` (`ws://` for a plain-http local base); never a query."""
    base = urlsplit(settings.PUBLIC_BASE_URL)
    scheme = "wss" if base.scheme == "https" else "ws"
    return f"{scheme}://{base.netloc}{MEDIA_PATH}"


def _connect(response: VoiceResponse, params: dict[str, str]) -> VoiceResponse:
    connect = Connect()
    stream = connect.stream(url=media_stream_url())
    for name, value in params.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return response


def connect_stream(params: dict[str, str]) -> str:
    return str(_connect(VoiceResponse(), params))


def press_digits_then_stream(digits: str, params: dict[str, str]) -> str:
    """Play DTMF, then reconnect a new media stream so the conversation continues."""
    response = VoiceResponse()
    response.play(digits=digits)
    return str(_connect(response, params))


def transfer(number: str, *, caller_id: str = "") -> str:
    response = VoiceResponse()
    response.dial(number, caller_id=caller_id or None)
    return str(response)


def hang_up(say: str = "") -> str:
    response = VoiceResponse()
    if say:
        response.say(say)
    response.hangup()
    return str(response)


def reject() -> str:
    response = VoiceResponse()
    response.reject()
    return str(response)
