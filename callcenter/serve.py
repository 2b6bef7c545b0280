"""Starts the ASGI server: daphne (the default) or uvicorn on uvloop, the denser one.

    python -m callcenter.serve [--server daphne|uvicorn] [--host 127.0.0.1] [--port 8000]

Both serve the same application and Channels consumers. uvicorn runs its sockets on uvloop's C
transports with httptools and the sans-I/O websockets protocol; daphne's twisted + autobahn parse
each frame in Python. Reading media streams costs uvicorn about half what it costs daphne, which
is what lets one process hold 200 calls (bench/README.md, "load", has the figures).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

APP = "callcenter.asgi:application"
SERVERS = ("daphne", "uvicorn")
# Idle HTTP keep-alive, seconds: longer than the proxies' and clients' in front (60 s is common),
# so it is never the server that closes a connection a client is about to reuse (uvicorn's own
# default is 5 s).
KEEP_ALIVE_S = 75
# The largest WebSocket message uvicorn accepts (it closes with 1009 above it). Twilio's are under
# 1 kB; anything above MAX_MESSAGE_BYTES (16 kB) is refused by the media parser anyway.
WS_MAX_BYTES = 64 * 1024


def command(server: str, host: str, port: int, app: str = APP) -> list[str]:
    """The argv that serves `app` on host:port with `server`."""
    bindir = Path(sys.executable).parent
    if server == "daphne":
        return [str(bindir / "daphne"), "-b", host, "-p", str(port), app]
    if server == "uvicorn":
        return [str(bindir / "uvicorn"), app, "--host", host, "--port", str(port),
                "--loop", "uvloop", "--http", "httptools", "--ws", "websockets-sansio",
                "--ws-per-message-deflate", "false", "--ws-max-size", str(WS_MAX_BYTES),
                "--timeout-keep-alive", str(KEEP_ALIVE_S), "--lifespan", "off"]  # fmt: skip
    raise ValueError(f"unknown server {server!r}; choose from {', '.join(SERVERS)}")


def refuse_insecure_settings() -> None:
    """Exit before serving when the deployment checks of calls/checks.py find an error (the
    sandbox's token, http, no SECRET_KEY or DEBUG, with the real Twilio)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callcenter.settings")
    import django
    from django.core import checks

    django.setup()
    from calls.checks import TAG

    found = checks.run_checks(tags=[TAG], include_deployment_checks=True)
    errors = [message for message in found if message.is_serious()]
    if errors:
        for error in errors:
            print(f"refusing to start: {error}", file=sys.stderr)
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m callcenter.serve", description=__doc__)
    parser.add_argument("--server", choices=SERVERS, default=os.environ.get("SERVER") or "daphne")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--app", default=APP)
    args = parser.parse_args(argv)
    refuse_insecure_settings()
    cmd = command(args.server, args.host, args.port, args.app)
    os.execv(cmd[0], cmd)  # the server takes this process over: signals reach it directly


if __name__ == "__main__":
    main()
