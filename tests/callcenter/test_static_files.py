"""Both servers serve the static files `collectstatic` gathered (admin, DRF, Swagger UI) with DEBUG
off, as `make run` does, and the API docs page asks only for files the server itself has."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.support.liveserver import ROOT, free_port, live_server, sandbox_env

pytestmark = pytest.mark.slow  # real servers in subprocesses

FILES = {
    "/static/admin/css/base.css": "text/css",
    "/static/rest_framework/css/bootstrap.min.css": "text/css",
    "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js": "text/javascript",
    "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css": "text/css",
}


def get(url: str, opener: urllib.request.OpenerDirector | None = None) -> tuple[int, str, bytes]:
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def signed_in(base: str, username: str, password: str) -> urllib.request.OpenerDirector:
    """A browser-like client signed in through the admin's login form (the docs need a login)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    form = get(f"{base}/admin/login/", opener)[2].decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf, "username": username,
                                   "password": password, "next": "/admin/"}).encode()  # fmt: skip
    request = urllib.request.Request(f"{base}/admin/login/", data, headers={"Referer": base})
    opener.open(request, timeout=10).read()
    return opener


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("static")
    env = sandbox_env(root.parent, 0, account_sid="AC" + "5" * 32, auth_token="t")
    env["STATIC_ROOT"] = str(root)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT, env=env, check=True, timeout=120,
    )  # fmt: skip
    return root


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_static_files_and_the_api_docs_are_served(server, static_root, tmp_path):
    port = free_port()
    env = sandbox_env(tmp_path, port, account_sid="AC" + "5" * 32, auth_token="t")
    env.update(STATIC_ROOT=str(static_root), DEBUG="0")
    _user(env, "docs", "docs-pass-123")
    with live_server(env, port, tmp_path / f"{server}.log", server=server):
        base = f"http://127.0.0.1:{port}"
        for path, content_type in FILES.items():
            status, got_type, body = get(base + path)
            assert status == 200 and got_type.startswith(content_type), (path, status, got_type)
            assert body == (static_root / path.removeprefix("/static/")).read_bytes()
        assert get(f"{base}/static/admin/css/no-such-file.css")[0] == 404

        assert b"csrfmiddlewaretoken" in get(f"{base}/api/docs/")[2]  # a login first
        status, _, page = get(f"{base}/api/docs/", signed_in(base, "docs", "docs-pass-123"))
        assert status == 200 and b"swagger" in page.lower()
        html = page.decode()
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert any("swagger-ui-bundle.js" in a for a in assets), assets
        for asset in assets:  # every file the page loads comes from this server, and is there
            assert asset.startswith("/"), f"/api/docs/ loads {asset} from elsewhere"
            assert get(base + asset)[0] == 200, asset
        assert "cdn" not in html.lower()


def _user(env: dict, username: str, password: str) -> None:
    """A user in the server's database (migrated here)."""
    for args, extra in (
        (["migrate", "--noinput", "-v0"], {}),
        (["createsuperuser", "--noinput", "--username", username, "--email", "u@example.com"],
         {"DJANGO_SUPERUSER_PASSWORD": password}),
    ):  # fmt: skip
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**env, **extra},
                       check=True, timeout=120, capture_output=True)  # fmt: skip


def test_without_collectstatic_the_server_says_what_to_run(tmp_path):
    port = free_port()
    env = sandbox_env(tmp_path, port, account_sid="AC" + "5" * 32, auth_token="t")
    env["STATIC_ROOT"] = str(tmp_path / "never-collected")
    log = tmp_path / "daphne.log"
    with live_server(env, port, log):
        assert get(f"http://127.0.0.1:{port}/static/admin/css/base.css")[0] == 404
    assert "collectstatic --noinput" in log.read_text()
