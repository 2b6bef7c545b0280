"""Agent-to-agent: the callee is a persona of the server, answering a second, inbound call.

When a scenario's callee is a persona the server has (`persona: <slug>`), the carrier connects the
call the way Twilio connects one number of an account to another: while the outbound call rings,
it delivers the callee's side to the server as an incoming call (a signed POST to the number's
Voice URL, the server's /twilio/voice/, with CallSid, From = the caller, To = a number the server
maps to the persona, CallStatus=ringing, Direction=inbound), runs the TwiML it answers with, and
once that call's `<Connect><Stream>` is up, the outbound call is answered. From then on the two
media streams are joined: what one call's agent plays on its line (paced by that stream: marks,
`clear`) is the other call's inbound audio, 20 ms at a time on the other stream's own clock.
Either side hanging up ends both (`stop` on both streams); digits one agent presses reach the
other as `dtmf` events. Both calls are ordinary calls of the server, each with its own turns, so
an operator can watch and control either.

The server picks the inbound persona by the dialled number (settings.INBOUND_PERSONAS), so the
carrier needs a number that reaches the slug: the scenario's `persona.to`, else the dialled number
if it maps to the slug, else any number mapped to it (`Switchboard`, read from the settings).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from calls.sandbox.emulators.twilio_rest import CallState
from calls.sandbox.media import MediaStream, StreamError
from calls.sandbox.sim_call import SimCall
from calls.sandbox.twiml import Stream

if TYPE_CHECKING:
    from calls.sandbox.carrier import SandboxCarrier

log = logging.getLogger(__name__)
VOICE_PATH = "/twilio/voice/"
PICK_UP_TIMEOUT_S = 15.0  # the callee's server must answer (its stream up) within this
BACKLOG_FRAMES = 10  # at most 200 ms of one agent's audio waits for the other stream's next tick
NO_ROUTE = 0  # our own error code (Twilio has none for "this number is not ours")


@dataclass(frozen=True)
class Switchboard:
    """The numbers of the account that ring the server: their Voice URL, and the persona the
    server answers each with (INBOUND_PERSONAS; INBOUND_DEFAULT_PERSONA for any other number)."""

    voice_url: str = ""
    personas: Mapping[str, str] = field(default_factory=dict)  # number -> persona slug
    default: str = ""

    @classmethod
    def from_settings(cls) -> Switchboard:
        """The server's own settings (the carrier runs in it, or beside it with the same env)."""
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        try:
            base = str(settings.PUBLIC_BASE_URL).rstrip("/")
        except ImproperlyConfigured:  # no Django settings in this process
            return cls()
        personas = dict(getattr(settings, "INBOUND_PERSONAS", {}) or {})
        default = str(getattr(settings, "INBOUND_DEFAULT_PERSONA", "") or "")
        return cls(voice_url=base + VOICE_PATH, personas=personas, default=default)

    def number_for(self, slug: str, dialled: str) -> str:
        """A number the server answers as `slug`: the dialled one if it does, else any; ""."""
        if self.personas.get(dialled) == slug:
            return dialled
        mapped = next((number for number, s in self.personas.items() if s == slug), "")
        if mapped:
            return mapped
        return dialled if self.default == slug and dialled not in self.personas else ""


class CalleeLeg(SimCall):
    """The callee's side as an incoming call: the carrier asks the Voice URL what to do and runs
    the answer; `<Connect>` answers the call. No status callbacks (none were asked for)."""

    async def _lifecycle(self) -> None:
        self.carrier.rest.set_status(self.sid, "ringing")
        self._answered = True  # an update redirects the call from now on
        self._run_program("", self.state.url, self.state.method)

    async def _stream(self, verb: Stream) -> None:
        if self.state.status == "ringing":
            self.carrier.rest.set_status(self.sid, "in-progress")
        await super()._stream(verb)

    async def finish(self, status: str, ended_by: str, **options) -> None:
        if status == "completed" and self.state.status in ("queued", "ringing"):
            # never answered: <Reject>/<Hangup> is busy, the caller giving up cancels, else failed
            status = {"app": "busy", "peer": "canceled"}.get(ended_by, "failed")
        await super().finish(status, ended_by, **options)


class End:
    """One call's end of the bridge (its `media.Party`): it hears what that call's agent plays
    and says what the other call's agent played."""

    def __init__(self, bridge: Bridge, side: str) -> None:
        self.bridge = bridge
        self.side = side  # "caller": on the outbound call; "callee": on the inbound leg
        self.peer: End = self
        self.call: SimCall | None = None
        self.stream: MediaStream | None = None
        self._inbox: deque[bytes | None] = deque()
        self.frames_heard = 0  # frames of this call's agent, played on its line
        self.frames_said = 0  # frames of the other agent, said into this call
        self.dropped = 0  # frames that waited too long for this stream (a stall)
        self.closed = False

    async def pick_up(self, call: SimCall) -> str:
        """How the outbound call is answered (sim_call): by the bridge placing the other call."""
        return await self.bridge.pick_up(call)

    # --- media.Party ----------------------------------------------------------------------------
    def next_frame(self) -> bytes | None:
        frame = self._inbox.popleft() if self._inbox else None
        if frame is not None:
            self.frames_said += 1
        return frame

    def hear(self, frame: bytes | None) -> None:
        if frame is not None:
            self.frames_heard += 1
        self.peer._relay(frame)

    def on_clear(self) -> None:
        pass  # what played was relayed already; the rest never reaches the line

    def stream_started(self, stream: MediaStream) -> None:
        self.stream = stream
        self._inbox.clear()
        self.bridge.stream_started(self)

    def stream_ended(self, stream: MediaStream) -> None:
        if self.stream is stream:
            self.stream = None

    def on_digits(self, digits: str) -> None:
        """This call's agent pressed keys (<Play digits>): the other call hears them as DTMF."""
        stream = self.peer.stream
        if stream is not None and self.call is not None:
            self.call._spawn(_press(stream, digits))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bridge.hung_up(self)

    def report(self) -> dict:
        peer = self.peer.call
        return {
            "bridge": self.side,
            "persona": self.bridge.slug,
            "peer_sid": peer.sid if peer else "",
            "frames_heard": self.frames_heard,
            "frames_said": self.frames_said,
            "dropped": self.dropped,
        }

    # --- internals ------------------------------------------------------------------------------
    def _relay(self, frame: bytes | None) -> None:
        if self.stream is None:
            return  # this call's line is not connected (yet): the audio is lost, as on a phone
        if len(self._inbox) >= BACKLOG_FRAMES:
            self._inbox.popleft()
            self.dropped += 1
        self._inbox.append(frame)


async def _press(stream: MediaStream, digits: str) -> None:
    for digit in digits:
        if digit in "wW":
            await asyncio.sleep(0.5)
        else:
            await stream.send_dtmf(digit)


class Bridge:
    """The outbound `call` and the inbound leg the carrier places for its callee persona."""

    def __init__(self, carrier: SandboxCarrier, call: SimCall) -> None:
        persona = call.scenario.persona or {}
        board = carrier.switchboard
        self.carrier = carrier
        self.outbound = call
        self.slug = str(persona.get("slug", ""))
        self.voice_url = board.voice_url
        self.number = str(persona.get("to") or board.number_for(self.slug, call.state.to))
        self.caller, self.callee = End(self, "caller"), End(self, "callee")
        self.caller.peer, self.callee.peer = self.callee, self.caller
        self.caller.call = call
        self.leg: CalleeLeg | None = None
        self.connected = False
        self._up = asyncio.Event()

    async def pick_up(self, call: SimCall) -> str:
        """Place the inbound leg; the outbound call is answered once the leg's stream is up.
        Returns the outbound call's outcome: "answer", "busy" (rejected) or "failed"."""
        if not (self.number and self.voice_url):
            why = "no number reaches it (INBOUND_PERSONAS)" if self.voice_url else "no Voice URL"
            call.errors.append(StreamError(NO_ROUTE, f"persona {self.slug!r}: {why}"))
            log.warning("call %s: persona %r cannot answer: %s", call.sid, self.slug, why)
            return "failed"
        leg = self._place()
        up = asyncio.ensure_future(self._up.wait())
        ended = asyncio.ensure_future(leg.ended.wait())
        try:
            await asyncio.wait(
                [up, ended], timeout=PICK_UP_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            up.cancel()
            ended.cancel()
        if self._up.is_set() and not leg.ended.is_set():
            self.connected = True
            return "answer"
        log.warning("call %s: the server did not answer %s as %r (leg %s: %s)",
                    call.sid, self.number, self.slug, leg.sid, leg.ended_by or "timeout")  # fmt: skip
        return "busy" if leg.ended_by == "app" else "failed"

    def stream_started(self, end: End) -> None:
        if end is self.callee:
            self._up.set()

    def hung_up(self, end: End) -> None:
        """One call ended (its party closed): the other ends too, as a bridged line does."""
        other = self.leg if end is self.caller else (self.outbound if self.connected else None)
        if other is not None and not other.ended.is_set():
            other._spawn(other.finish("completed", "peer"))

    def _place(self) -> CalleeLeg:
        out = self.outbound.state
        state = CallState(
            sid="CA" + secrets.token_hex(16), account_sid=out.account_sid, to=self.number,
            from_=out.from_, url=self.voice_url, method="POST",
        )  # fmt: skip
        self.carrier.rest.calls[state.sid] = state  # the server updates it like any call
        leg = CalleeLeg(
            self.carrier, state, self.outbound.scenario, party=self.callee, direction="inbound"
        )
        self.leg, self.callee.call = leg, leg
        self.carrier.calls[state.sid] = leg
        log.info("call %s: the callee %r answers as inbound call %s to %s (%s)",
                 out.sid, self.slug, state.sid, self.number, self.voice_url)  # fmt: skip
        leg.start()
        return leg
