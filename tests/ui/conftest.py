"""Console fixtures: a live API server, an operator token, and AppTest aimed at them."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token
from streamlit.testing.v1 import AppTest

from calls import services
from calls.models import Call

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
MYRA_VARS = {"applicant_name": "Ann", "position": "SRE"}


@pytest.fixture
def api_env(live_server, transactional_db, operator, monkeypatch) -> str:
    """Points the console at the live server with a fresh operator token; returns the token."""
    # Django's test server writes headers and body separately; without TCP_NODELAY every
    # keep-alive request waits ~40 ms on Nagle + delayed ACK. Accepted sockets inherit it.
    live_server.thread.httpd.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    token = Token.objects.create(user=operator).key
    monkeypatch.setenv("CALLCENTER_API_URL", live_server.url)
    monkeypatch.setenv("CALLCENTER_API_TOKEN", token)
    return token


@pytest.fixture
def console(api_env, personas) -> Callable[..., AppTest]:
    """`console("views/history.py", call=<id>)`: the app run once, then switched to that page."""

    def open_page(page: str | None = None, **query: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=20).run()
        assert not at.exception, at.exception
        if page:
            at.query_params.update(query)
            at.switch_page(page).run()
        return at

    return open_page


@pytest.fixture
def make_call(personas) -> Callable[..., Call]:
    def make(persona: str = "myra-recruiting", to: str = "+14155550100", **kw) -> Call:
        p = personas[persona]
        variables = kw.pop("variables", None) or (
            MYRA_VARS if persona == "myra-recruiting" else {k: "x" for k in p.required_variables}
        )
        return services.call_create(persona=p, to=to, variables=variables, **kw)

    return make
