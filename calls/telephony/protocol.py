"""Twilio Media Streams messages: parse what Twilio sends, build what we send back (pure, no I/O)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field

import orjson

# A 20 ms media frame is ~400 bytes of JSON; anything near this limit is not Twilio.
MAX_MESSAGE_BYTES = 16 * 1024
# Twilio sends 160-byte frames; tolerate larger ones from other carriers, not unbounded ones.
MAX_MEDIA_BYTES = 8000


# Stream SIDs are echoed into every outgoing frame: accept only what Twilio issues.
_SID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ProtocolError(ValueError):
    """A message that is not valid Media Streams protocol; the text says what is wrong."""


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str = ""


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str = ""
    params: dict[str, str] = field(default_factory=dict)
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000


@dataclass(frozen=True, slots=True)
class Media:
    stream_sid: str
    payload: bytes
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True)
class Dtmf:
    stream_sid: str
    digit: str


@dataclass(frozen=True, slots=True)
class MarkEcho:
    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    stream_sid: str
    call_sid: str = ""


Message = Connected | Start | Media | Dtmf | MarkEcho | Stop


def _obj(data: dict, key: str) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"'{key}' must be an object")
    return value


def _str(data: dict, key: str, *, required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or (required and not value):
        raise ProtocolError(f"'{key}' must be a non-empty string")
    return value


def _media(data: dict, sid: str) -> Media:
    media = _obj(data, "media")
    payload = media.get("payload")
    if not isinstance(payload, str):
        raise ProtocolError("'media.payload' must be a base64 string")
    try:
        # What b64decode(validate=True) does, without its wrapper's extra calls per frame.
        audio = binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("'media.payload' is not valid base64") from None
    if len(audio) > MAX_MEDIA_BYTES:
        raise ProtocolError(f"media payload of {len(audio)} bytes is too large")
    return Media(sid, audio, _timestamp(media.get("timestamp", "0")))


def _timestamp(value: object) -> int:
    """Twilio sends milliseconds as a decimal string; anything else (superscripts, floats) is 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 15:
        return int(value)
    return 0


def _sample_rate(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 6:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1_000_000:
        return value
    raise ProtocolError("'start.mediaFormat.sampleRate' must be a positive integer")


def _start(data: dict, sid: str) -> Start:
    start = _obj(data, "start")
    params = start.get("customParameters") or {}
    if not isinstance(params, dict):
        raise ProtocolError("'start.customParameters' must be an object")
    stream_sid = _str(start, "streamSid", required=False) or sid
    if not _SID.match(stream_sid):
        raise ProtocolError("'streamSid' is missing or malformed")
    fmt = start.get("mediaFormat", {})
    if not isinstance(fmt, dict):
        raise ProtocolError("'start.mediaFormat' must be an object")
    encoding = fmt.get("encoding", "audio/x-mulaw")
    if not isinstance(encoding, str):
        raise ProtocolError("'start.mediaFormat.encoding' must be a string")
    call_sid = _str(start, "callSid", required=False)
    account_sid = _str(start, "accountSid", required=False)
    for name, value in (("callSid", call_sid), ("accountSid", account_sid)):
        if value and not _SID.match(value):
            raise ProtocolError(f"'start.{name}' is malformed")
    if any(not isinstance(v, str | int | float) for v in params.values()):
        raise ProtocolError("'start.customParameters' values must be strings")
    return Start(
        stream_sid=stream_sid,
        call_sid=call_sid,
        account_sid=account_sid,
        params={str(k): str(v) for k, v in params.items()},
        encoding=encoding,
        sample_rate=_sample_rate(fmt.get("sampleRate", 8000)),
    )


def parse(text: str | bytes | None) -> Message:
    """One WebSocket text frame -> a typed message, or ProtocolError."""
    if text is None:
        raise ProtocolError("binary frames are not part of the protocol")
    if len(text) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(text)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        data = orjson.loads(text)  # 50 parses a second per call: ~1 us here, json's ~3
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("malformed JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("a message must be a JSON object")
    event = data.get("event")
    if event == "connected":
        return Connected(str(data.get("protocol", "")))
    sid = data.get("streamSid", "")
    if not isinstance(sid, str):
        raise ProtocolError("'streamSid' must be a string")
    if event == "media":
        return _media(data, sid)
    if event == "start":
        return _start(data, sid)
    if event == "dtmf":
        digit = _obj(data, "dtmf").get("digit")
        if not isinstance(digit, str) or len(digit) != 1 or digit not in "0123456789*#ABCD":
            raise ProtocolError("'dtmf.digit' must be one of 0-9 * # A-D")
        return Dtmf(sid, digit)
    if event == "mark":
        return MarkEcho(sid, _str(_obj(data, "mark"), "name"))
    if event == "stop":
        stop = data.get("stop") if isinstance(data.get("stop"), dict) else {}
        return Stop(sid, str(stop.get("callSid", "")))
    raise ProtocolError(f"unknown event {event!r}")


def media_message(stream_sid: str, mulaw: bytes) -> str:
    payload = base64.b64encode(mulaw).decode("ascii")
    return f'{{"event":"media","streamSid":"{stream_sid}","media":{{"payload":"{payload}"}}}}'


def mark_message(stream_sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid})
