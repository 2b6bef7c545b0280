"""One real-browser test: `make run`'s own commands, headless Chromium, a sandbox call watched live.

The product is started by the Makefile itself (`make setup serve` with its ports overridden), on a
fresh SQLite file, so this test follows whatever `make run` does. Debian's Chromium
(/usr/bin/chromium) is driven by Playwright's Python package; no browser is downloaded.
Without Chromium or Playwright the test skips, unless REQUIRE_BROWSER=1 (CI), where it fails.
UPDATE_SCREENSHOT=1 also writes the screenshot to docs/console-live-call.png for the README.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.liveserver import free_port, tail

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

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


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


@pytest.fixture
def product(tmp_path: Path) -> Iterator[Product]:
    """`make setup serve` on free loopback ports and a fresh SQLite file; stopped afterwards."""
    require_browser()
    venv = Path(sys.executable).parent.parent  # this interpreter's venv: the Makefile's VENV
    api_port, console_port, carrier_port = free_port(), free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    # ensure_operator writes var/operator_token: keep its content (a running `make run` reads it)
    token_file = REPO / "var" / "operator_token"
    had_token = token_file.is_file()
    token = token_file.read_text().strip() if had_token else secrets.token_hex(20)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
        and not k.startswith(("CALLCENTER_", "PYTEST_"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",  # absolute path: sqlite:////tmp/...
        MEDIA_ROOT=str(tmp_path / "media"),
        SANDBOX_CARRIER="1",
        SANDBOX_CARRIER_PORT=str(carrier_port),
        PUBLIC_BASE_URL=api_url,  # the media stream URL is derived from it
        OPERATOR_TOKEN=token,
        CALLCENTER_API_TOKEN=token,
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "make-run.log"
    product = Product(api_url, f"http://127.0.0.1:{console_port}", log)
    command = [
        "make", "--no-print-directory", "-o", f"{venv}/.installed", f"VENV={venv}",
        "HOST=127.0.0.1", f"PORT={api_port}", f"CONSOLE_PORT={console_port}", "setup", "serve",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        wait_http(f"{api_url}/api/", proc, product, timeout=90)
        wait_http(f"{product.console_url}/_stcore/health", proc, product, timeout=30)
        yield product
    finally:
        stop(proc)
        if not had_token:
            token_file.unlink(missing_ok=True)


def test_console_starts_a_sandbox_call_and_shows_it_live(product: Product, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "console-live-call.png"
    for stale in (shot, OUTPUT / "failure.png"):
        stale.unlink(missing_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(20_000)
            try:
                page.goto(product.console_url)
                expect(page.get_by_role("heading", name="New call")).to_be_visible()

                # The "New call" form: persona, number, the persona's variables.
                page.locator(".st-key-new_call_persona").get_by_role("combobox").click()
                page.get_by_role("option", name=PERSONA).click()
                page.locator(".st-key-new_call_to input").fill(NUMBER)
                for name, value in VARIABLES.items():
                    page.get_by_role("textbox", name=name).fill(value)
                page.get_by_role("button", name="Start call").click()

                # The live view opens on the new call and its transcript grows.
                expect(page.get_by_role("heading", name=f"Live call · {NUMBER}")).to_be_visible()
                assert "call=" in page.url, page.url
                turns = page.locator(".st-key-live_transcript [data-testid='stChatMessage']")
                expect(turns.nth(1)).to_be_visible(timeout=TURNS_TIMEOUT * 1000)
                expect(turns.nth(0)).to_contain_text("Myra")  # the greeting names the agent
                if os.environ.get("UPDATE_SCREENSHOT") == "1":
                    # For the README: let a few more turns and the latency chart arrive.
                    expect(turns.nth(6)).to_be_visible(timeout=60_000)
                    expect(page.get_by_text("Latency per agent turn (ms)")).to_be_visible()
                    page.mouse.move(
                        1300, 1150
                    )  # hover nothing: no chart toolbar, no sidebar button
                    page.wait_for_timeout(1500)
                page.screenshot(path=str(shot), full_page=True)
            except Exception:
                page.screenshot(path=str(OUTPUT / "failure.png"), full_page=True)
                print(product.logs())
                raise
        finally:
            browser.close()
    print(f"screenshot: {shot}")
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)
