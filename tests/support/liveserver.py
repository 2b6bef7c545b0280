"""The real server (daphne or uvicorn) as a subprocess on a loopback port, a fresh SQLite file and
the sandbox."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Whatever the shell has, the server uses the embedded defaults: local engines, in-memory layer,
# the in-process sandbox carrier. Empty, not absent: settings read .env without overriding these.
CLEARED = ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "ELEVENLABS_API_KEY", "DEEPGRAM_BASE_URL",
           "OPENAI_BASE_URL", "ELEVENLABS_BASE_URL", "STT_BACKEND", "LLM_BACKEND", "TTS_BACKEND",
           "TTS_FALLBACK_BACKEND", "VAD_BACKEND", "REDIS_URL", "TWILIO_API_BASE_URL",
           "INBOUND_PERSONAS", "INBOUND_DEFAULT_PERSONA")  # fmt: skip
_CARRIER_LINE = re.compile(r"sandbox carrier listening on (http://\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def sandbox_env(work: Path, port: int, *, account_sid: str, auth_token: str, **extra: str) -> dict:
    """The environment of a server on `port` with its database and media under `work`."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(dict.fromkeys(CLEARED, ""))
    (work / "media").mkdir(exist_ok=True)
    env.update(
        DJANGO_SETTINGS_MODULE="callcenter.settings",
        DATABASE_URL=f"sqlite:///{work / 'server.sqlite3'}",
        MEDIA_ROOT=str(work / "media"),
        SECRET_KEY=secrets.token_hex(32),
        DEBUG="0",
        SANDBOX_CARRIER="1",
        SANDBOX_CARRIER_PORT=str(free_port()),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        TWILIO_ACCOUNT_SID=account_sid,
        TWILIO_AUTH_TOKEN=auth_token,
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextmanager
def live_server(
    env: dict, port: int, log: Path, *, server: str = "daphne", ready_s: float = 60.0
) -> Iterator[str]:
    """Run the server until the block ends, started as `python -m callcenter.serve` starts it;
    yields the in-process carrier's base URL once the server accepts connections. Fails the test
    with the log's tail if it exits or is late."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "callcenter.serve", "--server", server,
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield _wait_ready(proc, log, port, ready_s, server)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_ready(proc: subprocess.Popen, log: Path, port: int, limit: float, server: str) -> str:
    deadline = time.monotonic() + limit
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{server} exited ({proc.returncode}):\n{tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{server} not ready in {limit:.0f} s:\n{tail(log)}")
        found = _CARRIER_LINE.search(tail(log, 200))
        if found:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2):
                    return found.group(1)
            except OSError:
                pass
        time.sleep(0.1)
