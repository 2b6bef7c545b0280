"""The stream observer hooks (calls.live.observers) as the consumer and session call them."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from channels.db import database_sync_to_async

from calls import services
from calls.live import observers
from calls.runtime.consumer import MediaStreamConsumer
from calls.telephony.tokens import stream_params
from tests.support.stream import media_socket, start_msg

SID = "MZ" + "b" * 32
pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple] = []
        self.finalised = asyncio.Event()

    def message_in(self, stream_sid: str, text: str, done: float) -> None:
        self.seen.append(("in", stream_sid, json.loads(text)["event"], done))

    def media_out(self, stream_sid: str, frames: int, at: float) -> None:
        self.seen.append(("out", stream_sid, frames, at))

    def stream_stopped(self, stream_sid: str, at: float) -> None:
        self.seen.append(("stopped", stream_sid, at))

    def call_finalised(self, call_uuid: str) -> None:
        self.seen.append(("finalised", call_uuid))
        self.finalised.set()


@pytest.fixture
def recorder():
    recorder = Recorder()
    observers.observe(recorder)
    yield recorder
    observers.observe(None)


async def a_call(myra, *, frames: int) -> str:
    call = await database_sync_to_async(services.call_create)(
        persona=myra, to="+14155550100", welcome_message="Hi Ann.",
        variables={"applicant_name": "Ann", "position": "SRE"},
    )  # fmt: skip
    params = await database_sync_to_async(stream_params)(call)
    ws = media_socket()
    assert (await ws.connect(timeout=10))[0]
    await ws.send_json_to({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    await ws.send_json_to(start_msg(params, SID))
    while (await ws.receive_json_from(timeout=5))["event"] != "media":
        pass  # the greeting has started
    payload = base64.b64encode(b"\xff" * 160).decode()
    for i in range(frames):
        media = {"track": "inbound", "timestamp": str(i * 20), "payload": payload}
        await ws.send_json_to({"event": "media", "streamSid": SID, "media": media})
    await ws.send_json_to({"event": "stop", "streamSid": SID, "stop": {"callSid": "CA1"}})
    while (await ws.receive_output(timeout=10))["type"] != "websocket.close":
        pass
    await ws.disconnect()
    return str(call.uuid)


async def test_an_observer_sees_every_frame_the_stream_end_and_the_finalised_call(
    myra, hosted_fakes, settings, tmp_path, recorder
):
    settings.MEDIA_ROOT = tmp_path
    t0 = time.monotonic()
    call_uuid = await a_call(myra, frames=5)
    await asyncio.wait_for(recorder.finalised.wait(), 10)

    inbound = [s for s in recorder.seen if s[0] == "in"]
    # from the `start` that began the stream (nothing before it) to the `stop`
    assert [event for _, _, event, _ in inbound] == ["start", *["media"] * 5, "stop"]
    assert {sid for _, sid, _, _ in inbound} == {SID}
    outbound = [s for s in recorder.seen if s[0] == "out"]
    assert outbound and all(sid == SID and frames >= 1 for _, sid, frames, _ in outbound)
    times = [s[-1] for s in recorder.seen if s[0] != "finalised"]
    assert times == sorted(times) and times[0] >= t0
    stopped = [s for s in recorder.seen if s[0] == "stopped"]
    assert [sid for _, sid, _ in stopped] == [SID]  # once
    # the `stop` is handled once the call is finalised: its message comes last
    kinds = [s[0] for s in recorder.seen]
    assert kinds[-3:] == ["stopped", "finalised", "in"]
    assert recorder.seen[-2] == ("finalised", call_uuid)


async def test_without_an_observer_the_consumer_runs_its_own_methods(myra, hosted_fakes):
    seen: list[MediaStreamConsumer] = []
    connect = MediaStreamConsumer.connect

    async def remember(self):
        seen.append(self)
        await connect(self)

    MediaStreamConsumer.connect = remember
    try:
        await a_call(myra, frames=2)
    finally:
        MediaStreamConsumer.connect = connect
    [consumer] = seen
    assert "receive" not in vars(consumer) and "send_media" not in vars(consumer)
