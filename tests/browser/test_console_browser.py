"""One real-browser test: `make run`'s own commands, headless Chromium, a sandbox call watched live.

The product is started by the Makefile itself (`make setup serve` with its ports overridden), on a
fresh SQLite file, so this test follows whatever `make run` does. Debian's Chromium
(/usr/bin/chromium) is driven by Playwright's Python package; no browser is downloaded.
Without Chromium or Playwright the test skips, unless REQUIRE_BROWSER=1 (CI), where it fails.
UPDATE_SCREENSHOT=1 also writes the screenshot to docs/console-live-call.png for the README.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DOCS_SCREENSHOT,
    NUMBER,
    OUTPUT,
    PERSONA,
    TURNS_TIMEOUT,
    VARIABLES,
    VIEWPORT,
    Product,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


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
