"""The admin, the API docs and the console in a real browser with the network cut off: `make
setup serve` (the product as `make run` starts it, DEBUG off), headless Debian Chromium driven by
Playwright, every request to a host other than 127.0.0.1 refused and recorded.

The operator logs in to the admin and opens a call's page and a persona's page: 200, styled by the
admin's own CSS (served by the product). /api/docs/ renders its operations from the product's own
Swagger UI files. The console's pages load. Nothing asks for anything outside 127.0.0.1.
Skips without Chromium or Playwright, unless REQUIRE_BROWSER=1 (CI), as the console's test does.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OUTPUT, Product

PASSWORD = "browser-test-pw-123"
BUSY = "+14155550104"  # the sandbox's busy number: a call that ends at once, with its events
PERSONA = "Escade Networks recruiting"
CONSOLE_PAGES = {"": "New call", "history": "History", "personas": "Personas",
                 "playground": "Playground"}  # fmt: skip

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


@pytest.fixture(autouse=True)
def _operator_password(monkeypatch):
    """`make setup` (ensure_operator) gives the operator this password."""
    monkeypatch.setenv("OPERATOR_PASSWORD", PASSWORD)


def place_busy_call(product: Product) -> str:
    token = (Path(__file__).resolve().parents[2] / "var" / "operator_token").read_text().strip()
    response = requests.post(
        f"{product.api_url}/api/calls/", timeout=30, headers={"Authorization": f"Token {token}"},
        json={"persona": "myra-recruiting", "to": BUSY,
              "variables": {"applicant_name": "Jordan Lee", "position": "Network Engineer"}},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_admin_api_docs_and_console_work_offline(product: Product):
    from playwright.sync_api import expect, sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "offline-failure.png").unlink(missing_ok=True)
    place_busy_call(product)
    outside: list[str] = []
    statics: dict[str, int] = {}

    def only_this_machine(route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:  # the machine's network is cut off: refused, and counted
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    def record(response) -> None:
        if "/static/" in response.url:
            statics[urlsplit(response.url).path] = response.status

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 1000})
            context.route("**/*", only_this_machine)
            page = context.new_page()
            page.on("response", record)
            page.set_default_timeout(20_000)
            try:
                # The admin: log in, a call's page, a persona's page.
                page.goto(f"{product.api_url}/admin/login/")
                page.fill("#id_username", "operator")
                page.fill("#id_password", PASSWORD)
                page.click("input[type=submit]")
                expect(page.locator("#site-name")).to_be_visible()
                styled = "getComputedStyle(document.querySelector('#header')).backgroundColor"
                assert page.evaluate(styled) not in ("rgba(0, 0, 0, 0)", "transparent")

                page.goto(f"{product.api_url}/admin/calls/call/")
                page.locator("#result_list tbody tr a").first.click()
                expect(page.locator("#content h1")).to_contain_text("call")
                call_page = page.goto(page.url)
                assert call_page.status == 200, call_page.status
                expect(page.locator("text=busy").first).to_be_visible()
                assert page.evaluate(styled) not in ("rgba(0, 0, 0, 0)", "transparent")

                page.goto(f"{product.api_url}/admin/agents/persona/")
                page.get_by_role("link", name=PERSONA).click()
                persona_page = page.goto(page.url)
                assert persona_page.status == 200, persona_page.status
                expect(page.locator("#id_agent_name")).to_have_value("Myra")
                expect(page.get_by_text("Jordan Lee").first).to_be_visible()  # prompt preview

                # The API docs (the admin session authorises the schema): operations rendered.
                docs = page.goto(f"{product.api_url}/api/docs/")
                assert docs.status == 200
                operations = page.locator(".opblock")
                expect(operations.first).to_be_visible()
                assert operations.count() >= 10, operations.count()
                expect(page.locator(".opblock-summary-path", has_text="/api/calls/").first)\
                    .to_be_visible()  # fmt: skip

                # The console, page by page.
                for path, heading in CONSOLE_PAGES.items():
                    page.goto(f"{product.console_url}/{path}")
                    expect(page.get_by_role("heading", name=heading).first).to_be_visible()
                    page.wait_for_timeout(1000)  # what a page asks for once drawn (favicon...)
            except Exception:
                page.screenshot(path=str(OUTPUT / "offline-failure.png"), full_page=True)
                print(product.logs())
                raise
        finally:
            browser.close()

    assert outside == [], f"requests outside 127.0.0.1: {outside}"
    for path in ("/static/admin/css/base.css",
                 "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"):  # fmt: skip
        assert statics.get(path) == 200, (path, statics)
    assert all(status in (200, 304) for status in statics.values()), statics
