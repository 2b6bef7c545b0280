"""The small app the sandbox carrier calls, on real sockets: signed status callbacks land on
/status (checked with twilio's RequestValidator) and the Media Streams WebSocket on /ws/media/
records every message; `running_line()` starts it with a carrier and an SDK client aimed at it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from dataclasses import dataclass, field

from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from calls.sandbox.carrier import SandboxCarrier
from calls.sandbox.emulators.base import EmulatorServer

SID = "AC" + "5" * 32
TOKEN = "sandbox-test-token"
FROM = "+14155550199"
TO = "+14155550150"
EVENTS = ["initiated", "ringing", "answered", "completed"]


@dataclass
class Received:
    t: float
    data: dict


@dataclass
class AppStream:
    """One Media Streams WebSocket as the app sees it."""

    ws: web.WebSocketResponse
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    media: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set on each media frame
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    sid: str = ""

    async def recv(self, event: str, limit: float = 3.0) -> Received:
        """The next message of `event` (media frames are kept in `self.media`, not returned)."""
        while True:
            item = await asyncio.wait_for(self.queue.get(), limit)
            if item.data.get("event") == event:
                return item

    async def next_media(self) -> None:
        self.arrived.clear()
        await self.arrived.wait()

    async def frames(self, n: int, limit: float = 5.0) -> list[Received]:
        async def enough() -> None:
            while len(self.media) < n:
                await self.next_media()

        await asyncio.wait_for(enough(), limit)
        return self.media[:n]

    def inbound_audio(self) -> bytes:
        return b"".join(base64.b64decode(m.data["media"]["payload"]) for m in self.media)

    async def send(self, **message) -> None:
        await self.ws.send_str(json.dumps({"streamSid": self.sid, **message}))

    async def send_audio(self, audio: bytes) -> None:
        for i in range(0, len(audio), 160):
            payload = base64.b64encode(audio[i : i + 160]).decode()
            await self.send(event="media", media={"payload": payload})

    async def mark(self, name: str) -> None:
        await self.send(event="mark", mark={"name": name})


class FakeApp:
    """Status callback receiver + Media Streams endpoint on loopback."""

    def __init__(self) -> None:
        self.callbacks: list[tuple[dict, bool]] = []
        self.streams: asyncio.Queue[AppStream] = asyncio.Queue()
        self.server: EmulatorServer | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/status", self._status)
        app.router.add_get("/ws/media/", self._media)
        return app

    @property
    def stream_url(self) -> str:
        return f"{self.server.ws_url}/ws/media/"

    def callback_url(self, call: str = "1") -> str:
        return f"{self.server.base_url}/status?call={call}"

    def statuses(self) -> list[str]:
        return [form["CallStatus"] for form, _ in self.callbacks]

    async def _status(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        ok = RequestValidator(TOKEN).validate(str(request.url), form, signature)
        self.callbacks.append((form, ok))
        return web.Response(status=204)

    async def _media(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        stream = AppStream(ws)
        await self.streams.put(stream)
        loop = asyncio.get_running_loop()
        async for msg in ws:
            item = Received(loop.time(), json.loads(msg.data))
            if item.data["event"] == "start":
                stream.sid = item.data["streamSid"]
            if item.data["event"] == "media":
                stream.media.append(item)
                stream.arrived.set()
            else:
                await stream.queue.put(item)
        stream.closed.set()
        return ws


def stream_twiml(url: str, **params: str) -> str:
    inner = "".join(f'<Parameter name="{k}" value="{v}" />' for k, v in params.items())
    return f'<Response><Connect><Stream url="{url}">{inner}</Stream></Connect></Response>'


@dataclass
class Line:
    """The app, the carrier (synthetic callee voice) and an SDK client aimed at the carrier."""

    app: FakeApp
    carrier: SandboxCarrier
    client: Client


@contextlib.asynccontextmanager
async def running_line():
    fake = FakeApp()
    async with EmulatorServer(fake.app()) as server:
        fake.server = server
        # The carrier stops first: its calls end (and call back) while the app still listens.
        async with SandboxCarrier(account_sid=SID, auth_token=TOKEN, voice="synthetic") as carrier:
            sdk = Client(SID, TOKEN)
            sdk.api.base_url = carrier.base_url
            yield Line(fake, carrier, sdk)


async def place(client: Client, app: FakeApp, *, to: str = TO, twiml: str = "", **kw) -> str:
    call = await asyncio.to_thread(
        client.calls.create, to=to, from_=FROM, twiml=twiml or stream_twiml(app.stream_url),
        status_callback=app.callback_url(), status_callback_event=EVENTS, **kw,
    )  # fmt: skip
    return call.sid
