"""The app's Media Streams socket in process (channels' WebsocketCommunicator), driven like Twilio.

Two ways in: message by message (`open_stream`, `media_msgs`, `collect_until_mark`, `closed`), for
tests of the protocol itself; or the fake phone (`Phone`), for tests that hold a conversation:

    phone = await Phone.dial(call)            # connected + start with the call's stream token
    await phone.until(lambda: phone.echoed)   # the greeting has played
    await phone.talk(speech_like(700) + silence(500))            # a burst, or realtime=True
    await phone.hang_up()                     # stop; returns once the call is finalised

The phone plays agent audio in real time from when it arrives and echoes each mark once the audio
before it has played; `clear` drops what is buffered and echoes the pending marks at once, as
Twilio does (`calls.sandbox.phone`). Everything the consumer sent is kept in `log`, in order.
"""

from __future__ import annotations

import asyncio
import base64
import json

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from twilio.request_validator import RequestValidator

from callcenter.asgi import application
from calls.sandbox import phone as sandbox_phone
from calls.sandbox.phone import FRAME_BYTES, FRAME_S
from calls.telephony import twiml
from calls.telephony.tokens import stream_params
from tests.support.wait import wait_until

PATH = "/ws/twilio/media/"
SID = "MZ" + "a" * 32
CALL_SID = "CA1"  # for a call that has no carrier SID yet


def media_socket(*, signature: str | None = None) -> WebsocketCommunicator:
    """A socket to the media route, its upgrade signed as Twilio signs it (over the stream URL of
    our TwiML, with this test's auth token); `signature` replaces that ("" for none)."""
    if signature is None:
        validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
        signature = validator.compute_signature(twiml.media_stream_url(), {})
    headers = [(b"x-twilio-signature", signature.encode())] if signature else []
    return WebsocketCommunicator(application, PATH, headers=headers)


# --- message by message ---------------------------------------------------------------------------
def start_msg(params: dict, sid: str = SID, *, call_sid: str = CALL_SID) -> dict:
    """Twilio's `start`: our account's SID (from the settings) and the call's SID."""
    phone = sandbox_phone.Phone(stream_sid=sid)
    opening = phone.opening(params, call_sid=call_sid, account_sid=settings.TWILIO_ACCOUNT_SID)
    return json.loads(opening[1])


def media_msgs(audio: bytes, sid: str = SID):
    for i in range(0, len(audio), FRAME_BYTES):
        payload = base64.b64encode(audio[i : i + FRAME_BYTES]).decode()
        yield {
            "event": "media",
            "streamSid": sid,
            "media": {"track": "inbound", "payload": payload},
        }


async def params_for(call) -> dict:
    return await database_sync_to_async(stream_params)(call)


async def carrier_sid(call) -> str:
    """The SID Twilio would put in the stream's `start`: the call's, once it has one."""
    sid = await database_sync_to_async(lambda: type(call).objects.get(pk=call.pk).twilio_sid)()
    return sid or CALL_SID


async def open_stream(call, **kw) -> WebsocketCommunicator:
    ws = media_socket()
    connected, _ = await ws.connect(timeout=10)
    assert connected
    await ws.send_json_to({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    start = start_msg(await params_for(call), call_sid=await carrier_sid(call), **kw)
    await ws.send_json_to(start)
    return ws


async def collect_until_mark(ws, limit=5.0) -> tuple[bytes, str]:
    audio = b""
    while True:
        msg = await ws.receive_json_from(timeout=limit)
        if msg["event"] == "media":
            audio += base64.b64decode(msg["media"]["payload"])
        elif msg["event"] == "mark":
            return audio, msg["mark"]["name"]


async def closed(ws) -> None:
    """Read until the server closes the socket (after `stop`), then end the test connection."""
    while (await ws.receive_output(timeout=10))["type"] != "websocket.close":
        pass
    await ws.disconnect()


def register_carrier_call(twilio_fake, sid: str) -> None:
    """A call created outside the Twilio emulator: make it known so that updates succeed."""
    from calls.sandbox.emulators.twilio_rest import CallState

    twilio_fake.calls[sid] = CallState(
        sid=sid, account_sid=twilio_fake.account_sid, to="+14155550100", from_="+15005550006",
        status="in-progress",
    )  # fmt: skip


# --- the fake phone -------------------------------------------------------------------------------
class Phone(sandbox_phone.Phone):
    """The sandbox's phone on the in-process socket. Caller audio goes out only when the test
    talks (bursts by default), not as a steady stream of silence."""

    def __init__(self, ws: WebsocketCommunicator, *, sid: str = SID) -> None:
        super().__init__(stream_sid=sid, inbound=False)
        self.ws = ws
        self.log: list[tuple[str, object]] = []  # ("media", bytes) / ("mark", name) / ("clear",)
        self.closed: dict | None = None
        self._pacer: asyncio.Task | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def dial(cls, call, *, sid: str = SID) -> Phone:
        ws = media_socket()
        connected, _ = await ws.connect()
        assert connected
        phone = cls(ws, sid=sid)
        params, call_sid = await params_for(call), await carrier_sid(call)
        account_sid = settings.TWILIO_ACCOUNT_SID
        for text in phone.opening(params, call_sid=call_sid, account_sid=account_sid):
            await ws.send_to(text_data=text)
        return phone

    @property
    def echoed(self) -> list[str]:
        return self.stats.marks

    # --- the wire -----------------------------------------------------------------------------
    async def _send(self, text: str) -> bool:
        if self.ws.future.done():
            return False
        await self.ws.send_to(text_data=text)
        return True

    async def _read(self) -> None:
        while True:
            # Never let this time out: a timeout cancels the application under test.
            out = await self.ws.receive_output(timeout=120)
            if out["type"] == "websocket.close":
                self.closed = out
                return
            if self._pacer is None:
                self._pacer = asyncio.get_running_loop().create_task(self.pace())
            await self.receive(out["text"])

    # --- what the consumer sends --------------------------------------------------------------
    async def app_media(self, audio: bytes) -> None:
        self.log.append(("media", audio))
        await super().app_media(audio)

    async def app_mark(self, name: str) -> None:
        self.log.append(("mark", name))
        await super().app_mark(name)

    async def app_clear(self) -> None:
        self.log.append(("clear",))
        await super().app_clear()

    def count(self, kind: str) -> int:
        return sum(1 for entry in self.log if entry[0] == kind)

    def media_between(self, start: int, end: int | None = None) -> bytes:
        """Agent audio received between two positions of the log."""
        return b"".join(e[1] for e in self.log[start:end] if e[0] == "media")

    # --- what the caller does -----------------------------------------------------------------
    async def talk(self, audio: bytes, *, realtime: bool = False) -> None:
        """Caller audio in 20 ms media messages: a burst, or paced like a live line."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for n, i in enumerate(range(0, len(audio), FRAME_BYTES)):
            if realtime:
                await asyncio.sleep(max(0.0, t0 + n * FRAME_S - loop.time()))
            await self.send_audio(audio[i : i + FRAME_BYTES])

    async def until(self, predicate, limit: float = 5.0):
        return await wait_until(
            predicate, limit, interval=0.01, state=lambda: f"log={[e[0] for e in self.log]}"
        )

    async def hang_up(self) -> None:
        """Twilio's `stop`: the consumer finalises the call, then closes the socket."""
        await self._send(
            self.stop_message(call_sid=CALL_SID, account_sid=settings.TWILIO_ACCOUNT_SID)
        )
        await asyncio.wait_for(asyncio.shield(self._reader), 10)
        await self.close()

    async def close(self) -> None:
        """Drop the line (idempotent): what a test does last, even when it failed."""
        tasks = [t for t in (self._reader, self._pacer) if t is not None]
        if all(t.done() for t in tasks) and self.ws.future.done():
            return
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.ws.disconnect(timeout=5)
