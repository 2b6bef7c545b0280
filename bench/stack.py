"""The processes under test, on loopback: three provider emulators and the server (daphne, uvicorn).

Each runs in its own process with its own log in the work directory. With two or more CPUs the
server is pinned to CPU 0 and everything else (emulators, the bench's caller) to CPU 1, as in the
Pipecat measurement we compare with, so the server does only its own work on its own core.

`carrier=[...]` also starts the sandbox carrier (`manage.py sandbox_carrier --port 0 ...` plus
those arguments) as its own process on CPU 1, before the server, and points the server's Twilio
client at it (TWILIO_API_BASE_URL; both get the same account SID and auth token, so callbacks and
streams are signed and checked as with Twilio). `extra_env` is added to the server's environment.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from callcenter import serve

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"deepgram": "dg-bench", "openai": "sk-bench", "elevenlabs": "el-bench"}
# Settings the bench must not inherit from the shell (they would change what is measured).
_UNSET = ("REDIS_URL", "STT_BACKEND", "LLM_BACKEND", "TTS_BACKEND", "TTS_FALLBACK_BACKEND",
          "VAD_BACKEND", "OPENAI_MODEL", "DJANGO_SETTINGS_MODULE")  # fmt: skip


@dataclass(frozen=True)
class Injected:
    """The fixed provider latencies, in ms."""

    stt_final: float = 300.0  # Deepgram final after the end of speech
    llm_first_token: float = 250.0
    tts_first_byte: float = 100.0

    @property
    def total(self) -> float:
        return self.stt_final + self.llm_first_token + self.tts_first_byte


@dataclass(frozen=True)
class Script:
    """What the scripted caller is heard saying, and what the scripted agent answers."""

    caller_text: str = "Tell me more about the role."
    reply_text: str = "Sure, I can help. What would you like to know?"
    token_delay_ms: float = 0.0
    ms_per_char: float = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}); see {log}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready in {timeout:.0f}s; see {log}:\n{_tail(log)}")
        time.sleep(0.05)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def pinning_available() -> bool:
    return (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None


class Stack:
    def __init__(
        self, workdir: Path, injected: Injected, script: Script, *, pin: bool,
        carrier: list[str] | None = None, extra_env: dict[str, str] | None = None,
        server: str = "daphne",
    ) -> None:  # fmt: skip
        self.workdir = workdir
        self.carrier_args = carrier
        self.extra_env = dict(extra_env or {})
        if server not in serve.SERVERS:
            raise ValueError(f"server must be one of {serve.SERVERS}")
        self.server = server
        self.injected = injected
        self.script = script
        self.pin = pin and pinning_available()
        self.procs: dict[str, subprocess.Popen] = {}
        self.urls: dict[str, str] = {}
        self.port = 0
        self.env: dict[str, str] = {}

    # --- processes ------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], cpu: int | None) -> tuple[subprocess.Popen, Path]:
        log = self.workdir / f"{name}.log"
        if cpu is not None and self.pin:
            argv = ["taskset", "-c", str(cpu), *argv]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=self.env or None, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.procs[name] = proc
        return proc, log

    def _emulator(self, name: str, extra: list[str]) -> str:
        argv = [sys.executable, "-m", "bench.emulators", name, "--api-key", KEYS[name], *extra]
        proc, log = self._spawn(f"emulator-{name}", argv, cpu=1)
        marker = "listening on "
        _wait_for(lambda: marker in _tail(log), 20, f"{name} emulator", proc, log)
        line = next(ln for ln in _tail(log).splitlines() if marker in ln)
        return line.split(marker, 1)[1].strip()

    def start(self) -> None:
        inj, sc = self.injected, self.script
        self.urls["deepgram"] = self._emulator(
            "deepgram", ["--final-latency-ms", str(inj.stt_final), "--text", sc.caller_text]
        )
        self.urls["openai"] = self._emulator(
            "openai",
            ["--first-token-ms", str(inj.llm_first_token), "--reply", sc.reply_text,
             "--token-delay-ms", str(sc.token_delay_ms)],
        )  # fmt: skip
        self.urls["elevenlabs"] = self._emulator(
            "elevenlabs",
            ["--first-byte-ms", str(inj.tts_first_byte), "--ms-per-char", str(sc.ms_per_char)],
        )
        self.port = free_port()
        self.env = self._server_env()
        if self.carrier_args is not None:
            self.urls["carrier"] = self._carrier(self.carrier_args)
            self.env["TWILIO_API_BASE_URL"] = self.urls["carrier"]
        self._manage("migrate", "--noinput", "-v0")
        self._manage("load_personas", "fixtures/personas.yaml")
        argv = serve.command(self.server, "127.0.0.1", self.port, "bench.asgi:application")
        proc, log = self._spawn("server", argv, cpu=0)
        _wait_for(self._server_answers, 60, self.server, proc, log)

    def _carrier(self, extra: list[str]) -> str:
        argv = [sys.executable, "manage.py", "sandbox_carrier", "--port", "0", *extra]
        proc, log = self._spawn("carrier", argv, cpu=1)
        marker = "sandbox carrier listening on "
        _wait_for(lambda: marker in _tail(log, 200), 30, "sandbox carrier", proc, log)
        line = next(ln for ln in _tail(log, 200).splitlines() if marker in ln)
        return line.split(marker, 1)[1].split()[0].strip()

    def _server_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _UNSET}
        (self.workdir / "media").mkdir(exist_ok=True)
        env.update(
            DJANGO_SETTINGS_MODULE="callcenter.settings",
            DATABASE_URL=f"sqlite:///{(self.workdir / 'bench.sqlite3').resolve()}",
            SECRET_KEY=secrets.token_hex(32),
            MEDIA_ROOT=str(self.workdir / "media"),
            DEBUG="0",
            PUBLIC_BASE_URL=f"http://127.0.0.1:{self.port}",
            STREAM_TOKEN_TTL_SECONDS="3600",
            TWILIO_API_BASE_URL="http://127.0.0.1:9",  # never a real carrier from the bench
            # The bench's callers sign their media sockets and start them as this account.
            TWILIO_ACCOUNT_SID="AC" + secrets.token_hex(16),
            TWILIO_AUTH_TOKEN=secrets.token_hex(16),
            DEEPGRAM_API_KEY=KEYS["deepgram"],
            DEEPGRAM_BASE_URL=self.urls["deepgram"],
            OPENAI_API_KEY=KEYS["openai"],
            OPENAI_BASE_URL=self.urls["openai"] + "/v1",
            ELEVENLABS_API_KEY=KEYS["elevenlabs"],
            ELEVENLABS_BASE_URL=self.urls["elevenlabs"],
            PYTHONUNBUFFERED="1",
            # The bench places hundreds of calls a minute as one user: no caps, no rate limits.
            MAX_ACTIVE_CALLS="0",
            MAX_CALLS_PER_DESTINATION_PER_DAY="0",
            THROTTLE_CALLS="",
            THROTTLE_CALLS_GLOBAL="",
            THROTTLE_CONTROL="",
            THROTTLE_CONTROL_GLOBAL="",
        )
        if self.carrier_args is not None:
            env.update(TWILIO_FROM_NUMBER="+15005550006")
        env.update(self.extra_env)
        return env

    def _manage(self, *args: str) -> None:
        out = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
            text=True, check=False,
        )  # fmt: skip
        if out.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{out.stdout}{out.stderr}")

    def _server_answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.2):
                return True
        except OSError:
            return False

    @property
    def server_pid(self) -> int:
        return self.procs["server"].pid

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/twilio/media/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the processes this stack started (each by its own pid), server first."""
        for name in sorted(self.procs, key=lambda n: n != "server"):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
