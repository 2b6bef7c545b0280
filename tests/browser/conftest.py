"""The `product` fixture: `make setup serve` on free loopback ports and a fresh SQLite file."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import REPO, Product, require_browser, stop, wait_http
from tests.support.liveserver import free_port


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
