"""`manage.py sandbox_carrier`: the sandbox carrier in its own process (e.g. for load tests)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from calls.core.heap import freeze_startup_heap
from calls.sandbox.carrier import SandboxCarrier
from calls.sandbox.scenario import ScenarioError


class Command(BaseCommand):
    help = (
        "Run the sandbox carrier: Twilio's Calls API, status callbacks and Media Streams, with "
        "simulated callees playing fixtures/scenarios. Point the server's TWILIO_API_BASE_URL at it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8099, help="0 picks a free port")
        parser.add_argument(
            "--scenario-dir", action="append", default=[], type=Path,
            help="more scenario files (*.yaml); repeatable, later folders win",
        )  # fmt: skip
        parser.add_argument(
            "--default-scenario", default="cooperative",
            help="what a number with no scenario of its own plays",
        )  # fmt: skip
        parser.add_argument(
            "--voice", default=None,
            help='the callee voice for every scenario ("synthetic": no TTS, cheapest)',
        )  # fmt: skip
        parser.add_argument(
            "--no-record", action="store_true",
            help="keep nothing of what callees hear (long load tests; no `expect` steps)",
        )  # fmt: skip

    def handle(self, *args, **options):
        try:
            carrier = SandboxCarrier(
                account_sid=settings.TWILIO_ACCOUNT_SID,
                auth_token=settings.TWILIO_AUTH_TOKEN,
                scenario_dirs=options["scenario_dir"],
                default_scenario=options["default_scenario"],
                voice=options["voice"],
                record=not options["no_record"],
                host=options["host"],
                port=options["port"],
            )
        except ScenarioError as exc:
            raise CommandError(str(exc)) from exc
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._serve(carrier))

    async def _serve(self, carrier: SandboxCarrier) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        async with carrier:
            # A load generator's own collections would pace its streams late (it holds hundreds).
            freeze_startup_heap()
            self.stdout.write(f"sandbox carrier listening on {carrier.base_url}")
            self.stdout.write(
                f"  the server needs TWILIO_API_BASE_URL={carrier.base_url} and the same "
                f"TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN; callbacks and streams go to the URLs "
                f"it sends (its PUBLIC_BASE_URL, here {settings.PUBLIC_BASE_URL})"
            )
            numbers = carrier.book.by_number()
            for number, name in sorted(numbers.items()):
                self.stdout.write(f"  {number}  {name}")
            self.stdout.write(f"  any other number: {carrier.book.default}")
            self.stdout.flush()
            await stop.wait()
