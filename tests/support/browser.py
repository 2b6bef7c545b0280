"""What the real-browser tests share: Debian's Chromium, and `make setup serve` on free ports."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.liveserver import tail

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]  # Playwright adds --headless and a fresh, temporary --user-data-dir itself
NUMBER = "+14155550100"  # the sandbox carrier's `cooperative` scenario
PERSONA = "Escade Networks recruiting (Myra)"
VARIABLES = {"applicant_name": "Jordan Lee", "position": "Network Engineer"}
VIEWPORT = {"width": 1400, "height": 1200}  # wide, and tall enough for the latency chart
OUTPUT = REPO / "test-output" / "browser"
DOCS_SCREENSHOT = REPO / "docs" / "console-live-call.png"
TURNS_TIMEOUT = 60  # seconds for the first two transcript turns (real local TTS and STT)


def need(what: str) -> None:
    message = f"browser test needs {what}"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"{message} (REQUIRE_BROWSER=1)")
    pytest.skip(message)


def require_browser() -> None:
    """Playwright, Debian's Chromium and make, checked before anything is started."""
    if os.environ.get("SKIP_BROWSER") == "1":
        pytest.skip("SKIP_BROWSER=1 (it already ran in this CI run)")
    if importlib.util.find_spec("playwright") is None:
        need("the `playwright` Python package (requirements-dev.txt)")
    if not CHROMIUM.is_file():
        need(f"Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    if not shutil.which("make"):
        need("make")


@dataclass
class Product:
    api_url: str
    console_url: str
    log: Path

    def logs(self) -> str:
        return f"--- make setup serve (last lines of {self.log}) ---\n{tail(self.log)}"


def wait_http(url: str, proc: subprocess.Popen, product: Product, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`make serve` exited ({proc.returncode}) before {url} answered\n"
                        f"{product.logs()}")  # fmt: skip
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {timeout:.0f} s\n{product.logs()}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the whole process group (make, its shell, daphne, streamlit), then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):  # children that outlived make (group = its pid)
        os.killpg(proc.pid, signal.SIGKILL)
