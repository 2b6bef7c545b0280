"""Wire-level emulator of the Twilio REST Calls API (create, fetch, update) for the real SDK."""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from calls.sandbox.emulators.base import EmulatorServer, Faults, abort, run_cli

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "test-auth-token"

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
CALL_STATUSES = (
    "queued",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "failed",
    "no-answer",
    "canceled",
)
ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass
class RecordedRequest:
    method: str
    path: str
    form: dict[str, list[str]]
    username: str = ""
    status: int = 0

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.form.get(name)
        return values[-1] if values else default


@dataclass
class CallState:
    """One emulated call. `json()` is what the REST API returns for it."""

    sid: str
    account_sid: str
    to: str
    from_: str
    status: str = "queued"
    twiml: str = ""
    url: str = ""
    method: str = "POST"
    status_callback: str = ""
    status_callback_method: str = "POST"
    status_callback_event: list[str] = field(default_factory=list)
    machine_detection: str = ""
    time_limit: int | None = None
    timeout: int | None = None
    answered_by: str | None = None
    form: dict[str, list[str]] = field(default_factory=dict)
    updates: list[dict[str, list[str]]] = field(default_factory=list)
    date_created: datetime = field(default_factory=lambda: datetime.now(UTC))
    date_updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    start_time: datetime | None = None
    end_time: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def duration(self) -> int | None:
        if self.start_time and self.end_time:
            return int((self.end_time - self.start_time).total_seconds())
        return 0 if self.ended else None

    def json(self) -> dict:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        fmt = _rfc2822
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "parent_call_sid": None,
            "to": self.to,
            "to_formatted": self.to,
            "from": self.from_,
            "from_formatted": self.from_,
            "phone_number_sid": None,
            "status": self.status,
            "direction": "outbound-api",
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "date_created": fmt(self.date_created),
            "date_updated": fmt(self.date_updated),
            "start_time": fmt(self.start_time),
            "end_time": fmt(self.end_time),
            "duration": None if self.duration is None else str(self.duration),
            "price": None,
            "price_unit": "USD",
            "uri": f"{uri}.json",
            "subresource_uris": {
                "notifications": f"{uri}/Notifications.json",
                "recordings": f"{uri}/Recordings.json",
                "events": f"{uri}/Events.json",
            },
        }


Hook = Callable[[CallState, RecordedRequest], Awaitable[None]]


@dataclass
class QueuedError:
    status: int = 500
    code: int = 20500
    message: str = "Internal Server Error"
    method: str = ""  # "" matches any method
    path_contains: str = ""


def _rfc2822(value: datetime | None) -> str | None:
    return None if value is None else format_datetime(value)


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


def _valid_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _valid_endpoint(value: str) -> bool:
    return bool(E164.match(value)) or value.startswith(("client:", "sip:"))


class TwilioRestEmulator:
    """In-memory Twilio Calls API.

    `owned_numbers=None` accepts any E.164 `From`; a collection restricts it (error 21210).
    `faults` (base.Faults: latency_ms, status, hang, drop_after_messages, times) applies to
    every request; `fail_next()` queues specific Twilio errors (status + code).
    `on_create` / `on_update` hold async callbacks `(call, request)`, run as tasks after the
    call state has changed; a sandbox carrier uses them and `set_status()` to drive the call.
    """

    def __init__(
        self,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        api_keys: dict[str, str] | None = None,
        owned_numbers: Iterable[str] | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.api_keys = dict(api_keys or {})
        self.owned_numbers = None if owned_numbers is None else set(owned_numbers)
        self.faults = faults or Faults()
        self.requests: list[RecordedRequest] = []
        self.calls: dict[str, CallState] = {}
        self.on_create: list[Hook] = []
        self.on_update: list[Hook] = []
        self.queued_errors: list[QueuedError] = []
        self.hook_errors: list[BaseException] = []
        self._sids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()

    # knobs -----------------------------------------------------------------
    def fail_next(
        self,
        status: int = 500,
        code: int = 20500,
        message: str = "Internal Server Error",
        *,
        count: int = 1,
        method: str = "",
        path_contains: str = "",
    ) -> None:
        """Answer the next `count` matching requests with a Twilio error instead."""
        for _ in range(count):
            self.queued_errors.append(
                QueuedError(status, code, message, method.upper(), path_contains)
            )

    def set_status(self, sid: str, status: str, *, answered_by: str | None = None) -> CallState:
        """Move a call to `status` (carrier use), stamping start/end times like Twilio."""
        if status not in CALL_STATUSES:
            raise ValueError(f"unknown call status {status!r}")
        call = self.calls[sid]
        now = datetime.now(UTC)
        if status == "in-progress" and call.start_time is None:
            call.start_time = now
        if status in ENDED and call.end_time is None:
            call.end_time = now
            call.start_time = call.start_time or (now if status == "completed" else None)
        if answered_by is not None:
            call.answered_by = answered_by
        call.status = status
        call.date_updated = now
        return call

    def requests_to(self, method: str, suffix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    def server(self, *, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
        """`async with emu.server() as srv:` then `client.api.base_url = srv.base_url`."""
        return EmulatorServer(self.app(), host=host, port=port)

    async def drain(self) -> None:
        """Wait until every hook task started so far has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # app -------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        base = f"/{API_VERSION}/Accounts/{{account}}"
        app.router.add_post(f"{base}/Calls.json", self._create)
        app.router.add_get(f"{base}/Calls.json", self._list)
        app.router.add_get(f"{base}/Calls/{{sid}}.json", self._fetch)
        app.router.add_post(f"{base}/Calls/{{sid}}.json", self._update)
        app.on_shutdown.append(self._cancel_tasks)
        return app

    async def _cancel_tasks(self, _app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _run_hooks(self, hooks: list[Hook], call: CallState, rec: RecordedRequest) -> None:
        for hook in list(hooks):
            task = asyncio.get_running_loop().create_task(self._guard(hook(call, rec)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _guard(self, coro: Awaitable[None]) -> None:
        try:
            await coro
        except Exception as exc:  # a broken hook must not take the emulator down
            self.hook_errors.append(exc)

    def _authenticate(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        if user == self.account_sid and secret == self.auth_token:
            return user
        if user in self.api_keys and self.api_keys[user] == secret:
            return user
        return None

    async def _begin(self, request: web.Request) -> tuple[RecordedRequest, web.Response | None]:
        """Record the request, then apply latency, faults and auth; a response means stop."""
        body = await request.text() if request.can_read_body else ""
        form: dict[str, list[str]] = {}
        for key, value in parse_qsl(body, keep_blank_values=True):
            form.setdefault(key, []).append(value)
        for key, value in request.query.items():
            form.setdefault(key, []).append(value)
        rec = RecordedRequest(request.method, request.path, form)
        self.requests.append(rec)
        faults = self.faults.take()
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.hang:
            await _hang(request)
        if faults.hang or faults.drop_after_messages is not None or faults.drop_after_s is not None:
            abort(request)
            return rec, self._reply(rec, web.Response(status=499))
        if faults.status is not None:
            code = 20000 + faults.status if faults.status in (429, 500, 503) else faults.status
            return rec, self._reply(rec, _error(faults.status, code, f"Injected {faults.status}"))
        for fault in self.queued_errors:
            if fault.method in ("", request.method) and fault.path_contains in request.path:
                self.queued_errors.remove(fault)
                return rec, self._reply(rec, _error(fault.status, fault.code, fault.message))
        user = self._authenticate(request)
        if user is None or request.match_info["account"] != self.account_sid:
            return rec, self._reply(rec, _error(401, 20003, "Authenticate"))
        rec.username = user
        return rec, None

    @staticmethod
    def _reply(rec: RecordedRequest, response: web.Response) -> web.Response:
        rec.status = response.status
        return response

    def _lookup(self, rec: RecordedRequest, sid: str) -> CallState | web.Response:
        call = self.calls.get(sid)
        if call is None:
            return self._reply(
                rec,
                _error(
                    404,
                    20404,
                    f"The requested resource {rec.path} was not found",
                ),
            )
        return call

    async def _create(self, request: web.Request) -> web.Response:
        rec, stop = await self._begin(request)
        if stop is not None:
            return stop
        invalid = self._validate_create(rec)
        if invalid is not None:
            return self._reply(rec, invalid)
        sid = f"CA{next(self._sids):032x}"
        call = CallState(
            sid=sid,
            account_sid=self.account_sid,
            to=rec.get("To", ""),
            from_=rec.get("From", ""),
            url=rec.get("Url", ""),
            # Twilio ignores Twiml when Url is also given.
            twiml="" if rec.get("Url") else rec.get("Twiml", ""),
            method=rec.get("Method") or "POST",
            status_callback=rec.get("StatusCallback", ""),
            status_callback_method=rec.get("StatusCallbackMethod") or "POST",
            status_callback_event=list(rec.form.get("StatusCallbackEvent", [])),
            machine_detection=rec.get("MachineDetection", ""),
            time_limit=_int(rec.get("TimeLimit")),
            timeout=_int(rec.get("Timeout")),
            form=rec.form,
        )
        self.calls[sid] = call
        self._run_hooks(self.on_create, call, rec)
        return self._reply(rec, web.json_response(call.json(), status=201))

    def _validate_create(self, rec: RecordedRequest) -> web.Response | None:
        to, from_ = rec.get("To"), rec.get("From")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not _valid_endpoint(to):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not from_:
            return _error(400, 21213, "No 'From' number is specified")
        if not _valid_endpoint(from_):
            return _error(400, 21212, f"Invalid 'From' Phone Number: {from_}")
        if self.owned_numbers is not None and from_ not in self.owned_numbers:
            return _error(
                400,
                21210,
                f"The source phone number provided, {from_}, is not yet verified for your account."
                " You may only make calls from phone numbers that you've verified or purchased"
                " from Twilio.",
            )
        url, twiml, app_sid = rec.get("Url"), rec.get("Twiml"), rec.get("ApplicationSid")
        if not (url or twiml or app_sid):
            return _error(400, 21205, "Url, Twiml or ApplicationSid is required")
        for name in ("Url", "StatusCallback", "FallbackUrl"):
            value = rec.get(name)
            if value and not _valid_url(value):
                return _error(400, 21205, f"{name} is not a valid URL: {value}")
        for name in ("TimeLimit", "Timeout"):
            value = rec.get(name)
            if value is not None and _int(value) is None:
                return _error(400, 20001, f"{name} must be an integer")
        return None

    async def _list(self, request: web.Request) -> web.Response:
        rec, stop = await self._begin(request)
        if stop is not None:
            return stop
        calls = [c.json() for c in reversed(self.calls.values())]
        for key, attr in (("To", "to"), ("From", "from"), ("Status", "status")):
            if rec.get(key):
                calls = [c for c in calls if c[attr] == rec.get(key)]
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls.json"
        return self._reply(
            rec,
            web.json_response(
                {
                    "calls": calls,
                    "first_page_uri": uri,
                    "next_page_uri": None,
                    "previous_page_uri": None,
                    "page": 0,
                    "page_size": len(calls) or 50,
                    "start": 0,
                    "end": max(len(calls) - 1, 0),
                    "uri": uri,
                }
            ),
        )

    async def _fetch(self, request: web.Request) -> web.Response:
        rec, stop = await self._begin(request)
        if stop is not None:
            return stop
        call = self._lookup(rec, request.match_info["sid"])
        if isinstance(call, web.Response):
            return call
        return self._reply(rec, web.json_response(call.json()))

    async def _update(self, request: web.Request) -> web.Response:
        rec, stop = await self._begin(request)
        if stop is not None:
            return stop
        call = self._lookup(rec, request.match_info["sid"])
        if isinstance(call, web.Response):
            return call
        status, url, twiml = rec.get("Status"), rec.get("Url"), rec.get("Twiml")
        if status is not None and status not in ("completed", "canceled"):
            return self._reply(
                rec,
                _error(
                    400,
                    20001,
                    f"Status must be 'completed' or 'canceled', not {status!r}",
                ),
            )
        if call.ended:
            return self._reply(rec, _error(400, 21220, "Call is not in-progress. Cannot redirect."))
        for name in ("Url", "StatusCallback", "FallbackUrl"):
            value = rec.get(name)
            if value and not _valid_url(value):
                return self._reply(rec, _error(400, 21205, f"{name} is not a valid URL: {value}"))
        call.updates.append(rec.form)
        if status == "completed":
            # Hanging up a call that has not been answered cancels it.
            self.set_status(call.sid, "completed" if call.status == "in-progress" else "canceled")
        elif status == "canceled" and call.status in ("queued", "ringing"):
            self.set_status(call.sid, "canceled")
        elif url or twiml:
            call.url, call.twiml = (url, "") if url else ("", twiml or "")
            call.method = rec.get("Method") or call.method
        if rec.get("StatusCallback"):
            call.status_callback = rec.get("StatusCallback") or ""
        if rec.get("TimeLimit") is not None:
            call.time_limit = _int(rec.get("TimeLimit"))
        call.date_updated = datetime.now(UTC)
        self._run_hooks(self.on_update, call, rec)
        return self._reply(rec, web.json_response(call.json()))


def _int(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


async def _hang(request: web.Request) -> None:
    """Stall until the client disconnects (the server's shutdown cancels it otherwise)."""
    # aiohttp exposes no awaitable disconnect event, so poll the transport.
    while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(0.02)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    parser.add_argument("--owned-number", action="append", help="restrict From (repeatable)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    emu = TwilioRestEmulator(
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        owned_numbers=args.owned_number,
        faults=Faults(latency_ms=args.latency_ms),
    )
    run_cli(emu.app(), host=args.host, port=args.port, name="twilio rest emulator")


if __name__ == "__main__":
    main()
