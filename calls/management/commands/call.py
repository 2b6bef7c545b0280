"""`manage.py call <persona> <number>`: place a call and follow its transcript live."""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import NoReturn

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter

from agents.models import Persona
from calls import selectors, services
from calls.management.follow import timeline
from calls.models import Call
from calls.runtime.dial import call_start
from calls.status import TERMINAL, CallStatus
from calls.telephony import carrier, client, control, policy

PLACEHOLDER_SID = "AC" + "0" * 32  # settings' default: no Twilio account configured
FINAL_TURNS_GRACE_S = 0.5
NO_CARRIER = """No carrier: TWILIO_API_BASE_URL is empty, there are no Twilio credentials, and no
sandbox carrier answers on 127.0.0.1:{port}.

Run calls on the sandbox (no account, no internet):
  make run        # the server, with the sandbox carrier inside it on :{port}; then, in another shell:
  python manage.py call {persona} {number} --var NAME=VALUE ... --follow
Or run the carrier as its own process:
  python manage.py sandbox_carrier --port 8099
  and give the server and this command TWILIO_API_BASE_URL=http://127.0.0.1:8099

Sandbox numbers pick what the callee does (fixtures/scenarios/*.yaml), or pass --scenario NAME.
For real calls set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER and a public
PUBLIC_BASE_URL (see the README, "Real calls and hosted providers")."""


# The exit code of `call --follow` for each way a call ends, and the line it ends with.
OUTCOMES: dict[str, tuple[int, str]] = {
    CallStatus.COMPLETED: (0, ""),
    CallStatus.BUSY: (4, "the line was busy, nobody answered"),
    CallStatus.NO_ANSWER: (5, "it rang, nobody answered"),
    CallStatus.FAILED: (6, "the call could not be connected or broke off"),
    CallStatus.CANCELED: (7, "hung up before it was answered"),
}
EXIT_CODES = """exit codes:
  0    placed (without --follow), or completed
  1    not placed: a wrong argument, or the carrier refused the call
  2    no carrier configured (the message says how to start the sandbox)
  3    --follow gave up waiting (--timeout) while the call went on
  4    busy          (--follow)
  5    no answer     (--follow)
  6    failed        (--follow)
  7    canceled      (--follow)
  130  interrupted with Ctrl-C (the call is hung up)"""


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the exit code table kept as written."""


class Command(BaseCommand):
    help = textwrap.fill(
        "Place a call (the same service as POST /api/calls/) and, with --follow, print its "
        "transcript live with per-turn latency and what the agent does (tools, keys pressed, "
        "transfers); the exit code is the outcome (below).",
        78,
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = _HelpFormatter
        parser.epilog = EXIT_CODES
        return parser

    def add_arguments(self, parser):
        parser.add_argument("persona", help="persona slug")
        parser.add_argument("number", help="E.164 number to call")
        parser.add_argument(
            "--var", action="append", default=[], metavar="NAME=VALUE",
            help="a persona variable (repeatable)",
        )  # fmt: skip
        parser.add_argument("--welcome", default="", help="first thing the agent says")
        parser.add_argument("--scenario", help="sandbox: what the callee does (a scenario name)")
        parser.add_argument(
            "--follow", action="store_true",
            help="print the transcript live and wait for the end; exit code = outcome",
        )  # fmt: skip
        parser.add_argument(
            "--timeout", type=float, default=None,
            help="seconds to follow before giving up (default: the persona's limit + 60)",
        )  # fmt: skip
        parser.add_argument("--poll", type=float, default=0.2, help=argparse.SUPPRESS)

    def handle(self, *args, **opts):
        persona = Persona.objects.filter(slug=opts["persona"]).first()
        if persona is None:
            known = ", ".join(Persona.objects.order_by("slug").values_list("slug", flat=True))
            raise CommandError(f"no persona {opts['persona']!r}; known: {known or 'none'}")
        variables = self._variables(opts["var"])
        base_url = settings.TWILIO_API_BASE_URL
        if not base_url and settings.TWILIO_ACCOUNT_SID in ("", PLACEHOLDER_SID):
            base_url = self._local_sandbox()
            if not base_url:
                self.stderr.write(
                    NO_CARRIER.format(
                        persona=persona.slug, number=opts["number"], port=_sandbox_port()
                    )
                )
                raise CommandError("no carrier configured", returncode=2)
        try:
            to = policy.check(services.normalize_number(opts["number"]))
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        if opts["scenario"]:
            if not base_url:
                raise CommandError("--scenario needs the sandbox carrier (TWILIO_API_BASE_URL)")
            self._plan(base_url, to, opts["scenario"])
        try:
            call = call_start(
                persona=persona, to=to, variables=variables, welcome_message=opts["welcome"]
            )
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        except carrier.CarrierError as exc:
            raise CommandError(f"the carrier refused the call: {exc}", returncode=1) from exc
        except policy.LimitReached as exc:
            raise CommandError(f"{exc} (retry in {exc.retry_after} s)", returncode=1) from exc
        where = f"sandbox {base_url}" if base_url else "Twilio"
        scenario = self._scenario(base_url, call.twilio_sid) if base_url else ""
        self.stdout.write(
            f"calling {to} as {persona.slug} via {where}: call {call.uuid} ({call.twilio_sid})"
            + (f", callee scenario: {scenario}" if scenario else "")
        )
        if not opts["follow"]:
            self.stdout.write(
                f"follow it: GET /api/calls/{call.uuid}/turns/ or rerun with --follow"
            )
            return
        timeout = opts["timeout"] or persona.max_duration_seconds + 60
        try:
            call = self._follow(call, timeout, opts["poll"])
        except KeyboardInterrupt:
            call.refresh_from_db()
            if call.is_active:
                control.hang_up(call, reason="hung up from the command line")
            self._exit(130, "interrupted: hung up")
        code, _ = OUTCOMES.get(call.status, (1, ""))
        if code:
            raise SystemExit(code)

    def _exit(self, code: int, message: str) -> NoReturn:
        """End with a plain last line and the exit code (no CommandError: nothing went wrong)."""
        self.stdout.write(message)
        self.stdout.flush()
        raise SystemExit(code)

    # --- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _variables(pairs: list[str]) -> dict[str, str]:
        variables = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep or not name.strip():
                raise CommandError(f"--var takes NAME=VALUE, got {pair!r}")
            variables[name.strip()] = value
        return variables

    @staticmethod
    def _sandbox_request(base_url: str, path: str, form: dict | None = None):
        auth = f"{settings.TWILIO_ACCOUNT_SID}:{settings.TWILIO_AUTH_TOKEN}".encode()
        request = urllib.request.Request(
            base_url.rstrip("/") + path,
            data=urllib.parse.urlencode(form).encode() if form is not None else None,
            headers={"Authorization": "Basic " + base64.b64encode(auth).decode()},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def _local_sandbox(self) -> str:
        """The sandbox carrier `make run` starts inside the server, if it answers; the Twilio
        client of this process is then aimed at it."""
        base_url = f"http://127.0.0.1:{_sandbox_port()}"
        try:
            self._sandbox_request(base_url, "/sandbox/scenarios.json")
        except (OSError, ValueError):
            return ""
        client.aim_at(base_url)
        return base_url

    def _plan(self, base_url: str, to: str, scenario: str) -> None:
        try:
            self._sandbox_request(base_url, "/sandbox/next", {"To": to, "Scenario": scenario})
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("message", detail)
            raise CommandError(f"the sandbox refused --scenario {scenario}: {detail}") from None
        except OSError as exc:
            raise CommandError(f"sandbox carrier at {base_url} unreachable: {exc}") from None

    def _scenario(self, base_url: str, sid: str) -> str:
        try:
            return self._sandbox_request(base_url, f"/sandbox/calls/{sid}.json")["scenario"]
        except (OSError, ValueError, KeyError, TypeError):
            return ""

    def _follow(self, call: Call, timeout: float, poll: float) -> Call:
        started = time.monotonic()
        last_seq, last_event, status = 0, 0, ""
        while True:
            call.refresh_from_db()
            if call.status in TERMINAL:
                # The carrier's last callback can overtake the session's last turns: let the
                # session finish storing them, so the transcript ends before the outcome.
                time.sleep(FINAL_TURNS_GRACE_S)
            turns = list(selectors.turn_list(call=call, after=last_seq))
            events = list(selectors.event_list(call=call, after=last_event))
            for text in timeline(turns, events):
                self.stdout.write(text)
            last_seq = turns[-1].seq if turns else last_seq
            last_event = events[-1].id if events else last_event
            if call.status != status:
                status = call.status
                self.stdout.write(f"{'status':>10}  {status}")
            self.stdout.flush()
            if call.status in TERMINAL:
                break
            if time.monotonic() - started > timeout:
                self._exit(3, f"gave up after {timeout:.0f} s; the call is still {call.status}")
            time.sleep(poll)
        code, why = OUTCOMES.get(call.status, (1, ""))
        reason = "" if call.end_reason == f"carrier: {call.status}" else call.end_reason
        if code == 0 or not why:
            duration = f"{call.duration} s" if call.duration is not None else "no duration"
            self.stdout.write(
                f"call {call.status}, {duration}" + (f" ({reason})" if reason else "")
            )
        else:
            self.stdout.write(f"call {call.status}: {why}" + (f" ({reason})" if reason else ""))
        return call


def _sandbox_port() -> int:
    return int(getattr(settings, "SANDBOX_CARRIER_PORT", 8099))


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)
