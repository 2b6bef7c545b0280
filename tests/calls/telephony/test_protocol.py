"""The Media Streams parser: what Twilio sends becomes typed messages; anything else a clear error."""

import base64
import json

import pytest

from calls.telephony import protocol
from calls.telephony.protocol import Dtmf, MarkEcho, Media, ProtocolError, Start, Stop

SID = "MZ" + "e" * 32


def media(payload: object, **extra) -> str:
    return json.dumps({"event": "media", "streamSid": SID,
                       "media": {"payload": payload, "timestamp": "40", **extra}})  # fmt: skip


def test_each_event_parses_to_its_message():
    audio = bytes(range(160))
    assert protocol.parse(media(base64.b64encode(audio).decode())) == Media(SID, audio, 40)
    assert protocol.parse(media(base64.b64encode(audio).decode()).encode()) == Media(SID, audio, 40)
    start = protocol.parse(json.dumps({
        "event": "start", "streamSid": SID,
        "start": {"streamSid": SID, "callSid": "CA1", "customParameters": {"token": "t"},
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}},
    }))  # fmt: skip
    assert start == Start(SID, "CA1", params={"token": "t"})
    dtmf = {"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "#"}}
    assert protocol.parse(json.dumps(dtmf)) == Dtmf(SID, "#")
    mark = {"event": "mark", "streamSid": SID, "mark": {"name": "r1s0"}}
    assert protocol.parse(json.dumps(mark)) == MarkEcho(SID, "r1s0")
    stop = {"event": "stop", "streamSid": SID, "stop": {"callSid": "CA1"}}
    assert protocol.parse(json.dumps(stop)) == Stop(SID, "CA1")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"event": "media",', "malformed JSON"),
        ('{"event": "media", "x": NaN}', "malformed JSON"),
        ('{"event": "media", "x": "\\ud800"}', "malformed JSON"),  # a lone surrogate
        ("[]", "must be a JSON object"),
        (media("!!notbase64!!"), "not valid base64"),
        (media("AAA"), "not valid base64"),  # bad padding
        (media("AAAA=AAA"), "not valid base64"),  # data after padding
        (media("ÄÄÄÄ"), "not valid base64"),
        (media(160), "must be a base64 string"),
        (media(base64.b64encode(bytes(8001)).decode()), "too large"),
        ("x" * (protocol.MAX_MESSAGE_BYTES + 1), "exceeds"),
        (json.dumps({"event": "media", "streamSid": 7}), "'streamSid' must be a string"),
        (json.dumps({"event": "bogus"}), "unknown event"),
    ],
)
def test_what_is_not_the_protocol_is_a_clear_error(text, error):
    with pytest.raises(ProtocolError, match=error):
        protocol.parse(text)


def start(**fields) -> str:
    body = {"streamSid": SID, "callSid": "CA1", "customParameters": {"token": "t"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}  # fmt: skip
    for key, value in fields.items():
        if key in ("encoding", "sampleRate"):
            body["mediaFormat"] = {**body["mediaFormat"], key: value}
        else:
            body[key] = value
    return json.dumps({"event": "start", "streamSid": SID, "start": body})


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (start(sampleRate="x"), "sampleRate"),
        (start(sampleRate="²"), "sampleRate"),
        (start(sampleRate=-8000), "sampleRate"),
        (start(sampleRate=True), "sampleRate"),
        (start(sampleRate=8000.5), "sampleRate"),
        (start(sampleRate="9" * 40), "sampleRate"),
        (start(sampleRate=None), "sampleRate"),
        (start(encoding=["audio/x-mulaw"]), "encoding"),
        (start(mediaFormat="mulaw"), "mediaFormat"),
        (start(callSid="CA1\nforged log line"), "callSid"),
        (start(accountSid={"a": 1}), "accountSid"),
        (start(customParameters={"token": {"nested": 1}}), "customParameters"),
        (start(customParameters=["token"]), "customParameters"),
        (start(streamSid="MZ/../x"), "streamSid"),
    ],
)
def test_every_malformed_start_value_is_a_protocol_error(text, error):
    with pytest.raises(ProtocolError, match=error):
        protocol.parse(text)


@pytest.mark.parametrize("timestamp", ["²", "1.5", "-4", "", None, [], "9" * 40, True])
def test_a_malformed_media_timestamp_reads_as_zero(timestamp):
    frame = media(base64.b64encode(bytes(160)).decode(), timestamp=timestamp)
    assert protocol.parse(frame).timestamp_ms == 0


def test_a_start_given_the_sample_rate_as_a_string_parses():
    assert protocol.parse(start(sampleRate="8000")).sample_rate == 8000
