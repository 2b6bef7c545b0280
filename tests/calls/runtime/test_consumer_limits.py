"""The media socket's limits: a socket must start a call promptly, and only so many may wait."""

import json

import pytest

from tests.support.stream import media_socket

PATH = "/ws/twilio/media/"
SID = "MZ" + "a" * 32
CONNECTED = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_socket_that_sends_only_connected_is_closed_within_5_s():
    ws = media_socket()
    assert (await ws.connect(timeout=5))[0]
    await ws.send_json_to(CONNECTED)
    out = await ws.receive_output(timeout=5)
    assert out["type"] == "websocket.close" and out["code"] == 4008


async def test_a_start_with_a_malformed_value_closes_the_socket_cleanly():
    ws = media_socket()
    assert (await ws.connect(timeout=5))[0]
    await ws.send_json_to(CONNECTED)
    start = {"streamSid": SID, "callSid": "CA1", "customParameters": {"token": "t"},
             "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": "x"}}  # fmt: skip
    await ws.send_to(text_data=json.dumps({"event": "start", "streamSid": SID, "start": start}))
    out = await ws.receive_output(timeout=2)
    assert out["type"] == "websocket.close" and out["code"] == 4002
    assert await ws.receive_nothing(timeout=0.2)


async def test_sockets_waiting_for_their_start_are_bounded(settings):
    settings.MAX_PENDING_STREAMS = 2
    waiting = [media_socket() for _ in range(2)]
    for ws in waiting:
        assert (await ws.connect(timeout=5))[0]
    refused = media_socket()
    connected, _ = await refused.connect(timeout=5)
    assert not connected
    await waiting[0].disconnect()
    again = media_socket()
    assert (await again.connect(timeout=5))[0]  # a slot freed by the disconnect
    for ws in (waiting[1], again):
        await ws.disconnect()


async def test_an_unsigned_or_forged_upgrade_is_refused_with_the_sandbox_carrier_off(settings):
    settings.SANDBOX_CARRIER = False
    for ws in (media_socket(signature=""), media_socket(signature="Zm9yZ2Vk")):
        connected, _ = await ws.connect(timeout=5)
        assert not connected
    signed = media_socket()
    assert (await signed.connect(timeout=5))[0]
    await signed.disconnect()


async def test_an_upgrade_signed_for_another_host_is_refused(settings):
    from twilio.request_validator import RequestValidator

    elsewhere = "wss://evil.example/ws/twilio/media/"
    signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(elsewhere, {})
    connected, _ = await media_socket(signature=signature).connect(timeout=5)
    assert not connected


async def test_the_sandbox_carrier_lets_an_unsigned_upgrade_in(settings):
    settings.SANDBOX_CARRIER = True
    ws = media_socket(signature="")
    assert (await ws.connect(timeout=5))[0]
    await ws.disconnect()
