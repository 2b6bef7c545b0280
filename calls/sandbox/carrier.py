"""The sandbox carrier: Twilio's REST Calls API plus what Twilio does with each call, on loopback.

The unchanged twilio SDK places and updates calls on it (`client.api.base_url = carrier.base_url`).
Each call rings, is answered (or busy / no-answer / failed) as its callee scenario says, sends signed
status callbacks, runs its TwiML and opens the Media Streams WebSocket to `<Stream url>`, where the
simulated callee hears the agent and talks back (see sim_call.py, media.py, callee.py). When the
callee is a persona of the server, it answers as a second call into the server, bridged to the
first (bridge.py; `switchboard`: the server's Voice URL and which number reaches which persona,
from its settings by default).

    async with SandboxCarrier(account_sid=..., auth_token=...) as carrier:   # port 0: ephemeral
        client.api.base_url = carrier.base_url
        carrier.plan("+14155550100", "interrupter")    # the next call to that number plays it
        sid = client.calls.create(...).sid
        call = await carrier.wait_ended(sid)           # SimCall: .callbacks .streams .report()

    carrier = start_in_process(port=8099)   # own thread and loop, inside a server; aims the
                                            # process's Twilio client at it unless configure=False
    python manage.py sandbox_carrier --port 8099   # its own process (load tests)

Besides the Twilio paths it serves (Basic auth with the account SID and token):
    POST /sandbox/next                 To=<number>&Scenario=<name>: the next call to To plays it
    GET  /sandbox/scenarios.json       name, number, description of every scenario
    GET  /sandbox/calls/{sid}.json     what happened on a call (callbacks, streams, callee report)
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
from collections.abc import Iterable
from pathlib import Path

import aiohttp
from aiohttp import web

from calls.sandbox.bridge import Switchboard
from calls.sandbox.emulators.base import EmulatorServer
from calls.sandbox.emulators.twilio_rest import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    CallState,
    RecordedRequest,
    TwilioRestEmulator,
)
from calls.sandbox.party import make_party
from calls.sandbox.scenario import SCENARIO_DIR, Scenario, ScenarioBook, ScenarioError
from calls.sandbox.sim_call import SimCall
from calls.sandbox.speech import Voice, make_voice

log = logging.getLogger(__name__)


class SandboxCarrier:
    """Twilio on loopback. `voice` overrides every scenario's voice ("synthetic" for fast tests);
    `record=False` keeps no heard audio (long load tests: 8 kB a second per call otherwise);
    `switchboard`: where incoming calls for agent-to-agent go (default: this process's settings,
    PUBLIC_BASE_URL and INBOUND_PERSONAS, read when a call needs them)."""

    def __init__(
        self,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        scenarios: ScenarioBook | None = None,
        scenario_dirs: Iterable[Path] = (),
        default_scenario: str = "cooperative",
        voice: str | None = None,
        record: bool = True,
        switchboard: Switchboard | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.book = scenarios or ScenarioBook(
            [SCENARIO_DIR, *scenario_dirs], default=default_scenario
        )
        self.voice = voice
        self.record = record
        self._switchboard = switchboard
        self.rest = TwilioRestEmulator(account_sid=account_sid, auth_token=auth_token)
        self.rest.on_create.append(self._on_create)
        self.rest.on_update.append(self._on_update)
        self.calls: dict[str, SimCall] = {}
        self.server = EmulatorServer(self._app(), host=host, port=port)
        self.session: aiohttp.ClientSession | None = None
        self._voices: dict[str, Voice] = {}
        self._tasks: set[asyncio.Task] = set()

    # --- running ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self.server.loop

    async def start(self) -> SandboxCarrier:
        await self.server.start()
        log.info("sandbox carrier listening on %s", self.base_url)
        return self

    async def close(self) -> None:
        await self.server.close()

    async def __aenter__(self) -> SandboxCarrier:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start_in_thread(self) -> SandboxCarrier:
        """Serve from a daemon thread with its own loop (for sync callers and servers)."""
        self.server.start_in_thread()
        log.info("sandbox carrier listening on %s (thread)", self.base_url)
        return self

    def stop(self) -> None:
        self.server.stop()

    # --- choosing what the callee does --------------------------------------------------------
    def plan(self, to: str, scenario: str | Scenario) -> Scenario:
        """The next call to `to` plays `scenario` (a name or a Scenario); thread-safe."""
        return self.book.plan(to, scenario)

    @property
    def switchboard(self) -> Switchboard:
        return self._switchboard or Switchboard.from_settings()

    def voice_for(self, name: str) -> Voice:
        name = self.voice or name
        if name not in self._voices:
            self._voices[name] = make_voice(name)
        return self._voices[name]

    # --- inspecting calls ---------------------------------------------------------------------
    async def wait_ended(self, sid: str, limit: float = 30.0) -> SimCall:
        """The call once it has ended and its last status callback has been delivered."""
        call = self.calls[sid]
        await asyncio.wait_for(call.ended.wait(), limit)
        return call

    def wait_ended_sync(self, sid: str, limit: float = 30.0) -> SimCall:
        """`wait_ended` from another thread (the carrier runs in its own)."""
        assert self.loop is not None
        future = asyncio.run_coroutine_threadsafe(self.wait_ended(sid, limit), self.loop)
        return future.result(limit + 1)

    # --- the REST emulator's hooks ------------------------------------------------------------
    async def _on_create(self, state: CallState, _request: RecordedRequest) -> None:
        scenario = self.book.for_call(state.to)
        call = SimCall(self, state, scenario, make_party=make_party)
        self.calls[state.sid] = call
        log.info("call %s to %s: scenario %s", state.sid, state.to, scenario.name)
        call.start()

    async def _on_update(self, state: CallState, request: RecordedRequest) -> None:
        call = self.calls.get(state.sid)
        if call is not None:
            await call.update(
                request.get("Status"),
                request.get("Twiml") or "",
                request.get("Url") or "",
                request.get("Method") or "POST",
            )

    # --- the HTTP app -------------------------------------------------------------------------
    def _app(self) -> web.Application:
        app = self.rest.app()
        app.router.add_post("/sandbox/next", self._plan_next)
        app.router.add_get("/sandbox/scenarios.json", self._scenarios)
        app.router.add_get("/sandbox/calls/{sid}.json", self._call_report)
        app.on_startup.append(self._open_session)
        app.on_shutdown.insert(0, self._end_calls)
        app.on_cleanup.append(self._close_session)
        return app

    async def _open_session(self, _app: web.Application) -> None:
        # One connection per live stream: no pool limit (200 calls = 200 sockets).
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def _end_calls(self, _app: web.Application) -> None:
        live = [c for c in self.calls.values() if not c.ended.is_set()]
        await asyncio.gather(*(c.close() for c in live), return_exceptions=True)

    async def _close_session(self, _app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.account_sid and hmac.compare_digest(secret, self.auth_token)

    @staticmethod
    def _denied() -> web.Response:
        return web.json_response(
            {"code": 20003, "message": "Authenticate", "status": 401}, status=401
        )

    async def _plan_next(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._denied()
        form = await request.post()
        to, name = str(form.get("To", "")), str(form.get("Scenario", ""))
        if not to or not name:
            return web.json_response({"message": "To and Scenario are required"}, status=400)
        try:
            scenario = self.plan(to, name)
        except ScenarioError as exc:
            return web.json_response({"message": str(exc)}, status=404)
        return web.json_response({"to": to, "scenario": scenario.name})

    async def _scenarios(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._denied()
        return web.json_response(
            [
                {"name": s.name, "number": s.number, "description": s.description}
                for s in sorted(self.book.scenarios.values(), key=lambda s: s.name)
            ]
        )

    async def _call_report(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._denied()
        call = self.calls.get(request.match_info["sid"])
        if call is None:
            return web.json_response({"message": "no such call"}, status=404)
        return web.json_response(call.report())


def start_in_process(
    *,
    host: str = "127.0.0.1",
    port: int = 8099,
    configure: bool = True,
    **options,
) -> SandboxCarrier:
    """Run the carrier in a daemon thread of this process (e.g. the server's) and, with
    `configure`, aim this process's Twilio client at it (`telephony.client.aim_at`; settings are
    not changed). If `port` is taken, a free one is used instead (the server still reaches its
    carrier)."""
    from django.conf import settings

    from calls.telephony import client

    def start(on_port: int) -> SandboxCarrier:
        return SandboxCarrier(
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            host=host,
            port=on_port,
            **options,
        ).start_in_thread()

    try:
        carrier = start(port)
    except OSError as exc:
        log.warning("sandbox carrier: port %s unavailable (%s); using a free port", port, exc)
        carrier = start(0)
    if configure:
        client.aim_at(carrier.base_url)
    return carrier
