"""A Twilio-like far end for the Media Streams consumer, for tests that hold a conversation.

    phone = await Phone.dial(call)            # connected + start with the call's stream token
    await phone.until(lambda: phone.echoed)   # the greeting has played
    await phone.talk(speech_like(700) + silence(500))            # a burst, or realtime=True
    await phone.hang_up()                     # stop; returns once the call is finalised

Agent audio is "played" in real time from when it arrives; each mark is echoed once the audio sent
before it has played. `clear` drops what is buffered and echoes the pending marks at once, as
Twilio does. Everything the consumer sent is kept in `log`, in order.

Fixtures, for test modules that import `fixture_call` and `fixture_dial`: `call` is Myra's call to
Ann about the SRE position (greeting "Hi Ann."), `phone = await dial()` connects a Phone to it;
every phone dialled is closed after the test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from callcenter.asgi import application
from calls import services
from calls.telephony.tokens import stream_params

PATH = "/ws/twilio/media/"
SID = "MZ" + "e" * 32
FRAME = 160


def start_msg(params: dict, sid: str = SID) -> dict:
    return {
        "event": "start", "sequenceNumber": "1", "streamSid": sid,
        "start": {"streamSid": sid, "accountSid": "AC1", "callSid": "CA1", "tracks": ["inbound"],
                  "customParameters": params,
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
    }  # fmt: skip


async def until_db(predicate, limit: float = 5.0) -> None:
    """Poll a synchronous ORM predicate until it holds."""
    deadline = time.monotonic() + limit
    while not await database_sync_to_async(predicate)():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class Phone:
    def __init__(self, ws: WebsocketCommunicator) -> None:
        self.ws = ws
        self.log: list[tuple[str, object]] = []  # ("media", bytes) / ("mark", name) / ("clear",)
        self.echoed: list[str] = []
        self.closed: dict | None = None
        self._play_end = 0.0
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def dial(cls, call) -> Phone:
        ws = WebsocketCommunicator(application, PATH)
        connected, _ = await ws.connect()
        assert connected
        await ws.send_json_to({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await ws.send_json_to(start_msg(await database_sync_to_async(stream_params)(call)))
        return cls(ws)

    # --- what the consumer sends --------------------------------------------------------------
    async def _read(self) -> None:
        while True:
            # Never let this time out: a timeout cancels the application under test.
            out = await self.ws.receive_output(timeout=120)
            if out["type"] == "websocket.close":
                self.closed = out
                return
            msg = json.loads(out["text"])
            event = msg["event"]
            if event == "media":
                audio = base64.b64decode(msg["media"]["payload"])
                self.log.append(("media", audio))
                self._play_end = max(self._play_end, time.monotonic()) + len(audio) / 8000
            elif event == "mark":
                name = msg["mark"]["name"]
                self.log.append(("mark", name))
                delay = max(0.0, self._play_end - time.monotonic())
                self._pending[name] = asyncio.get_running_loop().call_later(delay, self._echo, name)
            elif event == "clear":
                self.log.append(("clear",))
                self._play_end = time.monotonic()
                for name, handle in list(self._pending.items()):
                    handle.cancel()
                    self._echo(name)

    def _echo(self, name: str) -> None:
        self._pending.pop(name, None)
        self.echoed.append(name)
        message = {"event": "mark", "streamSid": SID, "mark": {"name": name}}
        task = asyncio.get_running_loop().create_task(self.ws.send_json_to(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def count(self, kind: str) -> int:
        return sum(1 for entry in self.log if entry[0] == kind)

    def media_between(self, start: int, end: int | None = None) -> bytes:
        """Agent audio received between two positions of the log."""
        return b"".join(e[1] for e in self.log[start:end] if e[0] == "media")

    # --- what the caller does -----------------------------------------------------------------
    async def talk(self, audio: bytes, *, realtime: bool = False) -> None:
        """Caller audio in 20 ms media messages: a burst, or paced like a live line."""
        t0 = time.monotonic()
        for n, i in enumerate(range(0, len(audio), FRAME)):
            if realtime:
                await asyncio.sleep(max(0.0, t0 + n * 0.02 - time.monotonic()))
            payload = base64.b64encode(audio[i : i + FRAME]).decode()
            await self.ws.send_json_to(
                {"event": "media", "streamSid": SID, "media": {"track": "inbound",
                                                                "payload": payload}}
            )  # fmt: skip

    async def until(self, predicate, limit: float = 5.0) -> None:
        deadline = time.monotonic() + limit
        while not predicate():
            assert time.monotonic() < deadline, f"timed out; log={[e[0] for e in self.log]}"
            await asyncio.sleep(0.01)

    async def hang_up(self) -> None:
        """Twilio's `stop`: the consumer finalises the call, then closes the socket."""
        await self.ws.send_json_to({"event": "stop", "streamSid": SID, "stop": {"callSid": "CA1"}})
        await asyncio.wait_for(asyncio.shield(self._reader), 10)
        await self.close()

    async def close(self) -> None:
        """Drop the line (idempotent): what a test does last, even when it failed."""
        if self._reader.done() and self.ws.future.done():
            return
        self._reader.cancel()
        for handle in self._pending.values():
            handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(self._reader, *self._tasks, return_exceptions=True)
        await self.ws.disconnect(timeout=5)


@pytest.fixture(name="call")
def fixture_call(myra):
    return services.call_create(
        persona=myra, to="+14155550100", variables={"applicant_name": "Ann", "position": "SRE"},
        welcome_message="Hi Ann.",
    )  # fmt: skip


@pytest.fixture(name="dial")
async def fixture_dial(call):
    phones: list[Phone] = []

    async def _dial() -> Phone:
        phones.append(await Phone.dial(call))
        return phones[-1]

    yield _dial
    for phone in phones:
        await phone.close()
