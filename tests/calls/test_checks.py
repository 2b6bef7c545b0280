"""With the real Twilio (the sandbox carrier off), insecure settings are system check errors:
`manage.py check --deploy` fails and `python -m callcenter.serve` refuses to start; the production
settings of the README pass `check --deploy` without a warning."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from calls.checks import live_carrier_settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {  # README.md, "Going live"
    "SANDBOX_CARRIER": "0",
    "TWILIO_API_BASE_URL": "",
    "DEBUG": "0",
    "PUBLIC_BASE_URL": "https://calls.example.com",
    "ALLOWED_HOSTS": "calls.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://calls.example.com",
    "TWILIO_ACCOUNT_SID": "AC" + "5" * 32,
    "TWILIO_AUTH_TOKEN": "f" * 32,
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "SESSION_COOKIE_SECURE": "1",
    "CSRF_COOKIE_SECURE": "1",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO",
}


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env={**base, **env}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.slow  # a subprocess
def test_check_deploy_fails_with_the_built_in_token_and_the_sandbox_carrier_off():
    out = run(
        ["manage.py", "check", "--deploy"],
        **{**PRODUCTION, "TWILIO_AUTH_TOKEN": "sandbox-auth-token", "SECRET_KEY": "k" * 60},
    )
    assert out.returncode != 0
    assert "calls.E001" in out.stderr and "TWILIO_AUTH_TOKEN" in out.stderr
    assert "calls.E003" not in out.stderr


@pytest.mark.slow  # a subprocess
def test_check_deploy_passes_without_a_warning_with_the_production_settings():
    out = run(
        ["manage.py", "check", "--deploy"], SECRET_KEY=secrets.token_urlsafe(50), **PRODUCTION
    )
    assert out.returncode == 0, out.stderr
    assert "System check identified no issues" in out.stdout
    assert "WARNINGS" not in out.stderr + out.stdout


@pytest.mark.slow  # a subprocess
def test_the_server_refuses_to_start_with_insecure_settings():
    insecure = {**PRODUCTION, "PUBLIC_BASE_URL": "http://calls.example.com", "DEBUG": "1",
                "SECRET_KEY": ""}  # fmt: skip
    out = run(["-m", "callcenter.serve", "--port", "1"], **insecure)
    assert out.returncode == 1
    for found in ("calls.E003", "calls.E004", "calls.E005"):
        assert f"refusing to start: ?: ({found})" in out.stderr


def ids() -> list[str]:
    return [message.id for message in live_carrier_settings()]


@pytest.fixture
def live(settings):
    settings.SANDBOX_CARRIER = False
    settings.TWILIO_API_BASE_URL = ""
    settings.DEBUG = False
    settings.SECRET_KEY_FROM_ENV = True
    settings.PUBLIC_BASE_URL = "https://calls.example.com"
    settings.TWILIO_ACCOUNT_SID = "AC" + "5" * 32
    settings.TWILIO_AUTH_TOKEN = "f" * 32
    return settings


def test_each_insecure_setting_is_its_own_error(live):
    assert ids() == []
    live.TWILIO_AUTH_TOKEN = "sandbox-auth-token"
    live.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    live.PUBLIC_BASE_URL = "http://calls.example.com"
    live.SECRET_KEY_FROM_ENV = False
    live.DEBUG = True
    assert ids() == ["calls.E001", "calls.E002", "calls.E003", "calls.E004", "calls.E005"]
    live.TWILIO_API_BASE_URL = "https://api.dublin.ie1.twilio.com"  # still Twilio itself
    assert len(ids()) == 5


@pytest.mark.parametrize(
    ("sandbox", "base_url"), [(True, ""), (False, "http://127.0.0.1:8099")]
)  # fmt: skip
def test_the_sandbox_carrier_needs_none_of_it(live, sandbox, base_url):
    live.SANDBOX_CARRIER, live.TWILIO_API_BASE_URL = sandbox, base_url
    live.TWILIO_AUTH_TOKEN, live.DEBUG, live.PUBLIC_BASE_URL = (
        "sandbox-auth-token",
        True,
        "http://x",
    )
    assert ids() == []
