"""One call on the sandbox carrier, as Twilio runs it: ring, answer (or not), run the TwiML, end.

Status callbacks are signed form POSTs, sent in order by one worker per call (the call never waits
on the app's webhook). An `update` with new TwiML stops what runs now (`stop` on the stream) and
runs the new document; `Status=completed` hangs up. The callee (a `Party`) hears and talks on
whichever media stream is open; a party with `async pick_up(call) -> outcome` decides how the call
is answered (bridge.py: another call into the server answers it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

from calls.sandbox import twiml
from calls.sandbox.emulators.twilio_rest import API_VERSION, ENDED, CallState
from calls.sandbox.media import MediaStream, StreamError
from calls.sandbox.scenario import Scenario

if TYPE_CHECKING:
    from calls.sandbox.carrier import SandboxCarrier

log = logging.getLogger(__name__)
INITIATE_DELAY_S = 0.05  # queued -> initiated -> ringing
DIGIT_S = 0.15  # one DTMF tone and its gap, as <Play digits> plays them
CALLBACK_TIMEOUT_S = 10.0
DOCUMENT_ERROR = 12100  # Twilio: document parse failure
FETCH_ERROR = 11200  # Twilio: HTTP retrieval failure
# A status callback belongs to one of the four events the request can subscribe to.
EVENT_OF = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}


class SimCall:
    """`party`: who is on the far end, or `make_party(call)` builds it (party.py: what the
    scenario says);
    `direction`: Twilio's Direction parameter ("inbound" for a bridged callee leg, bridge.py)."""

    def __init__(
        self,
        carrier: SandboxCarrier,
        state: CallState,
        scenario: Scenario,
        *,
        party: Any = None,
        make_party: Callable[[SimCall], Any] | None = None,
        direction: str = "outbound-api",
    ) -> None:
        self.carrier = carrier
        self.state = state
        self.scenario = scenario
        self.direction = direction
        if party is None:
            if make_party is None:
                raise TypeError("SimCall needs a party or a make_party")
            party = make_party(self)
        self.party = party
        self.streams: list[MediaStream] = []
        self.stream: MediaStream | None = None
        self.callbacks: list[dict] = []  # {"params": ..., "status": http status or error}
        self.errors: list[StreamError] = []
        self.transfer: dict | None = None
        self.digits_played: list[str] = []
        self.ended_by = ""
        self.ended = asyncio.Event()
        self._seq = 0
        self._queue: asyncio.Queue[dict | None] = asyncio.Queue()
        self._sender: asyncio.Task | None = None
        self._life: asyncio.Task | None = None
        self._program: asyncio.Task | None = None
        self._after: asyncio.Task | None = None  # transfer talk
        self._tasks: set[asyncio.Task] = set()
        self._swap = asyncio.Lock()
        self._finishing = False
        self._answered = False
        self._time_limit: asyncio.TimerHandle | None = None

    @property
    def sid(self) -> str:
        return self.state.sid

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._sender = loop.create_task(self._send_callbacks())
        self._life = loop.create_task(self._lifecycle())

    async def _lifecycle(self) -> None:
        self._callback("initiated")
        await asyncio.sleep(INITIATE_DELAY_S)
        self._set("ringing")
        outcome = self.scenario.answer
        ring = self.scenario.ring
        if outcome == "no-answer" and self.state.timeout:
            ring = min(ring, float(self.state.timeout))
        await asyncio.sleep(ring)
        if outcome == "answer" and hasattr(self.party, "pick_up"):
            outcome = await self.party.pick_up(self)  # another call answers for the callee
        if outcome != "answer":
            self._spawn(self.finish(outcome, "callee"))
            return
        answered_by = self.scenario.answered_by if self.state.machine_detection else None
        self._set("in-progress", answered_by=answered_by)
        self._answered = True
        if self.state.time_limit:
            loop = asyncio.get_running_loop()
            self._time_limit = loop.call_later(
                self.state.time_limit, lambda: self._spawn(self.finish("completed", "time-limit"))
            )
        self._run_program(self.state.twiml, self.state.url, self.state.method)

    async def finish(
        self, status: str, ended_by: str, *, callback_wait: float = CALLBACK_TIMEOUT_S
    ) -> None:
        """End the call (idempotent): stop the stream, set the status, send the last callback."""
        if self._finishing:
            await self.ended.wait()
            return
        self._finishing = True
        self.ended_by = ended_by
        if self._time_limit is not None:
            self._time_limit.cancel()
        current = asyncio.current_task()
        running = [t for t in (self._life, self._program, self._after) if t and t is not current]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)
        self.party.close()
        if not self.state.ended:
            self.carrier.rest.set_status(self.sid, status)
        self._callback("completed")
        self._queue.put_nowait(None)
        if self._sender is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._sender), callback_wait)
        log.info(
            "call %s to %s ended: %s (%s, scenario %s)",
            self.sid, self.state.to, self.state.status, ended_by, self.scenario.name,
        )  # fmt: skip
        self.ended.set()

    async def close(self) -> None:
        """Carrier shutdown: end the call now and stop every task."""
        status = "completed" if self._answered else "canceled"
        await self.finish(status, "carrier-shutdown", callback_wait=1.0)
        for task in [self._sender, *self._tasks]:
            if task and not task.done() and task is not asyncio.current_task():
                task.cancel()

    # --- what the app does through the REST API -----------------------------------------------
    async def update(self, status: str | None, twiml_doc: str, url: str, method: str) -> None:
        if status in ("completed", "canceled"):
            await self.finish(self.state.status, "app")
        elif twiml_doc or url:
            await self.redirect(twiml_doc, url, method)

    async def redirect(self, twiml_doc: str, url: str, method: str = "POST") -> None:
        """New TwiML for a live call: what runs now stops (`stop` on its stream), this runs."""
        if self._finishing or not self._answered:
            return  # before the answer, the emulator's stored TwiML is what will run
        async with self._swap:
            for task in (self._program, self._after):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.wait([task])
            if not self._finishing:
                self._run_program(twiml_doc, url, method)

    def _callee_hung_up(self) -> None:
        self._spawn(self.finish("completed", "callee"))

    # --- TwiML --------------------------------------------------------------------------------
    def _run_program(self, document: str, url: str, method: str) -> None:
        task = asyncio.get_running_loop().create_task(self._execute(document, url, method))
        self._program = task
        task.add_done_callback(self._program_done)

    def _program_done(self, task: asyncio.Task) -> None:
        if task.cancelled() or task is not self._program or self._finishing:
            return
        exc = task.exception()
        if exc is not None:
            log.error("call %s: TwiML execution failed", self.sid, exc_info=exc)
            self._spawn(self.finish("failed", "carrier-error"))
            return
        outcome, arg = task.result()
        if outcome == "dial":
            self._after = asyncio.get_running_loop().create_task(self._transferred(arg))
        else:
            self._spawn(self.finish("completed", outcome))

    async def _execute(self, document: str, url: str, method: str) -> tuple[str, str]:
        """Run a document; returns ("dial", number), ("app", "") for <Hangup>, or ("twiml-end", "")."""
        for _ in range(10):  # <Redirect> hops
            if url:
                document = await self._fetch(url, method)
                if document is None:
                    return "twiml-end", ""
            try:
                verbs = twiml.parse(document)
            except twiml.TwimlError as exc:
                self._error(DOCUMENT_ERROR, str(exc))
                return "twiml-end", ""
            url = ""
            for verb in verbs:
                if isinstance(verb, twiml.Stream):
                    await self._stream(verb)
                elif isinstance(verb, twiml.PlayDigits):
                    await self._play_digits(verb.digits)
                elif isinstance(verb, twiml.Play):
                    await asyncio.sleep(1.0 * max(verb.loop, 1))
                elif isinstance(verb, twiml.Pause):
                    await asyncio.sleep(verb.length)
                elif isinstance(verb, twiml.Say):
                    await asyncio.sleep(0.06 * len(verb.text))
                elif isinstance(verb, twiml.Dial):
                    return "dial", verb.number
                elif isinstance(verb, twiml.Hangup | twiml.Reject):
                    return "app", ""
                elif isinstance(verb, twiml.Redirect):
                    url, method = verb.url, verb.method
                    break
                else:
                    self._error(DOCUMENT_ERROR, f"<{verb.verb}> is not supported by the sandbox")
            if not url:
                return "twiml-end", ""
        self._error(DOCUMENT_ERROR, "too many <Redirect> hops")
        return "twiml-end", ""

    async def _stream(self, verb: twiml.Stream) -> None:
        stream = MediaStream(
            url=verb.url, params=verb.params, call_sid=self.sid,
            account_sid=self.state.account_sid, auth_token=self.carrier.auth_token,
            party=self.party, session=self.carrier.session,
        )  # fmt: skip
        self.streams.append(stream)
        self.stream = stream
        try:
            await stream.run()
        finally:
            await asyncio.shield(stream.stop())
            self.stream = None
            self.errors.extend(stream.errors)

    async def _play_digits(self, digits: str) -> None:
        self.digits_played.append(digits)
        for digit in digits:
            await asyncio.sleep(0.5 if digit in "wW" else DIGIT_S)
        self.party.on_digits(digits)

    async def _transferred(self, number: str) -> None:
        """<Dial>: our stream is over; the callee talks to `number` for a while, then hangs up."""
        self.transfer = {"to": number, "at": datetime.now(UTC).isoformat()}
        self.party.close()
        await asyncio.sleep(self.scenario.transfer_talk)
        self._spawn(self.finish("completed", "transfer"))

    async def _fetch(self, url: str, method: str) -> str | None:
        params = self._params(self.state.status)
        try:
            async with self._request(url, method, params) as response:
                body = await response.text()
                if response.status >= 400:
                    raise aiohttp.ClientResponseError(
                        response.request_info, (), status=response.status
                    )
                return body
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._error(FETCH_ERROR, f"fetching TwiML from {url} failed: {exc}")
            return None

    # --- status callbacks ---------------------------------------------------------------------
    def _set(self, status: str, *, answered_by: str | None = None) -> None:
        self.carrier.rest.set_status(self.sid, status, answered_by=answered_by)
        self._callback(EVENT_OF[status])

    def _params(self, status: str) -> dict[str, str]:
        s = self.state
        params = {
            "AccountSid": s.account_sid, "ApiVersion": API_VERSION, "CallSid": s.sid,
            "CallStatus": status, "Called": s.to, "Caller": s.from_, "Direction": self.direction,
            "From": s.from_, "To": s.to,
        }  # fmt: skip
        if s.machine_detection and s.answered_by:
            params["AnsweredBy"] = s.answered_by
        return params

    def _callback(self, event: str) -> None:
        """Queue the callback for `event` if the call subscribed to it (default: completed)."""
        state = self.state
        if not state.status_callback:
            return
        if event not in (state.status_callback_event or ["completed"]):
            return
        status = "initiated" if event == "initiated" else state.status
        params = self._params(status)
        params.update(
            CallbackSource="call-progress-events",
            SequenceNumber=str(self._seq),
            Timestamp=format_datetime(datetime.now(UTC)),
        )
        if status in ENDED:
            params["CallDuration"] = str(state.duration or 0)
        self._seq += 1
        self._queue.put_nowait(params)

    def _request(self, url: str, method: str, params: dict[str, str]):
        validator = RequestValidator(self.carrier.auth_token)
        timeout = aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_S)
        if method.upper() == "GET":
            full = url + ("&" if "?" in url else "?") + urlencode(params)
            headers = {"X-Twilio-Signature": validator.compute_signature(full, {})}
            return self.carrier.session.get(full, headers=headers, timeout=timeout)
        headers = {"X-Twilio-Signature": validator.compute_signature(url, params)}
        return self.carrier.session.post(url, data=params, headers=headers, timeout=timeout)

    async def _send_callbacks(self) -> None:
        state = self.state
        while (params := await self._queue.get()) is not None:
            record: dict[str, Any] = {"params": params, "status": None}
            self.callbacks.append(record)
            try:
                async with self._request(
                    state.status_callback, state.status_callback_method, params
                ) as response:
                    await response.read()
                    record["status"] = response.status
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                record["error"] = str(exc)
                log.warning("status callback to %s failed: %s", state.status_callback, exc)

    # --- helpers ------------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _error(self, code: int, message: str) -> None:
        self.errors.append(StreamError(code, message))
        log.warning("call %s: error %s: %s", self.sid, code, message)

    def report(self) -> dict:
        party = self.party.report() if hasattr(self.party, "report") else {}
        return {
            "sid": self.sid,
            "direction": self.direction,
            "from": self.state.from_,
            "to": self.state.to,
            "scenario": self.scenario.name,
            "status": self.state.status,
            "ended_by": self.ended_by,
            "transfer": self.transfer,
            "digits_played": list(self.digits_played),
            "callbacks": [
                {"status": c["params"]["CallStatus"], "http": c.get("status")}
                for c in self.callbacks
            ],
            "streams": [
                {
                    "stream_sid": s.stream_sid,
                    "params": s.params,
                    "ended_by": s.ended_by,
                    **{k: v for k, v in vars(s.stats).items() if k != "marks"},
                }
                for s in self.streams
            ],
            "errors": [{"code": e.code, "message": e.message} for e in self.errors],
            "callee": party,
        }
