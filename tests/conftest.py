"""Shared fixtures: API clients, fixture personas, service requirements (PostgreSQL, Redis); the
slow tier (markers in pyproject.toml). Shared helpers are in tests/support."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core import serializers
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection
from django.test.utils import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SLOW_KINDS = ("e2e", "browser", "bench", "console")  # markers registered in pyproject.toml


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """An e2e, browser, bench or console test is slow too: `make check` (-m "not slow") leaves it
    out."""
    for item in items:
        if not item.get_closest_marker("slow") and any(
            item.get_closest_marker(kind) for kind in SLOW_KINDS
        ):
            item.add_marker(pytest.mark.slow)


def require_service(url: str, default_port: int) -> str:
    """Return `url` if its server answers; else skip, or fail when REQUIRE_SERVICES=1 (CI)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return url
    except OSError as exc:
        message = f"{url} unreachable: {exc}"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def _writer_connection_closed(django_db_setup, django_db_blocker):
    """The live calls' writer thread keeps its connection open: close it before the test
    database is dropped (PostgreSQL refuses to drop a database in use)."""
    yield
    from calls.live.persister import close_connection

    with django_db_blocker.unblock():
        close_connection()


@pytest.fixture(autouse=True)
def _request_rates_reset():
    """The API's request-rate counts are kept in this process's cache: none carry over."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    if isinstance(caches["default"], LocMemCache):  # never flush a shared Redis (CACHE_URL)
        caches["default"].clear()


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """Operators get a password in many tests: the deployment's PBKDF2 costs ~0.6 s of CPU each
    (the server processes of the e2e tests keep it)."""
    hashers = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    hashers.enable()
    yield
    hashers.disable()


@pytest.fixture
def redis_url() -> str:
    return require_service(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0", 6379)


_loaded_personas: list = []  # the rows `load_personas` wrote, once per process


@pytest.fixture
def personas(db):
    """fixtures/personas.yaml, by slug. `load_personas` loads it once per process; later tests get
    the same rows back as `loaddata` would (validating the file again costs ~80 ms a test)."""
    from agents.models import Persona, QAEntry

    if not _loaded_personas or Persona.objects.exists():
        call_command("load_personas", str(FIXTURES / "personas.yaml"), stdout=io.StringIO())
        rows = [*Persona.objects.order_by("pk"), *QAEntry.objects.order_by("pk")]
        _loaded_personas[:] = serializers.serialize("python", rows)
    else:
        for row in serializers.deserialize("python", _loaded_personas):
            row.save()
        reset = connection.ops.sequence_reset_sql(no_style(), [Persona, QAEntry])
        with connection.cursor() as cursor:
            for sql in reset:
                cursor.execute(sql)
    return {p.slug: p for p in Persona.objects.all()}


@pytest.fixture
def myra(personas):
    return personas["myra-recruiting"]


@pytest.fixture
def operator(db, django_user_model):
    """A staff user with the admin role (every permission the API checks; calls/roles.py)."""
    from calls.roles import grant

    user = django_user_model.objects.create_user("op", password="pw-123456", is_staff=True)
    grant(user, "admin")
    return user


@pytest.fixture
def api(operator) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=operator).key}")
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def twilio_fake(settings):
    """The Twilio REST emulator on a loopback port, with the SDK client aimed at it."""
    from calls.sandbox.emulators.base import EmulatorServer
    from calls.sandbox.emulators.twilio_rest import TwilioRestEmulator
    from calls.telephony import client

    emulator = TwilioRestEmulator(account_sid="AC" + "1" * 32, auth_token="secret-token")
    server = EmulatorServer(emulator.app()).start_in_thread()
    settings.TWILIO_ACCOUNT_SID = emulator.account_sid
    settings.TWILIO_AUTH_TOKEN = emulator.auth_token
    settings.TWILIO_API_BASE_URL = server.base_url
    settings.PUBLIC_BASE_URL = "https://calls.example.com"
    client.reset()
    yield emulator
    server.stop()
    client.reset()


@pytest.fixture
def in_memory_channel_layer(settings):
    """The in-memory channel layer even when REDIS_URL is set, for in-process consumer tests (the
    Redis layer is exercised across real processes in tests/calls/telephony/test_cross_process.py)."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


class HostedFakes:
    """Deepgram, OpenAI and ElevenLabs emulators, with the settings aimed at them."""

    def __init__(self, deepgram, openai, elevenlabs) -> None:
        self.deepgram, self.openai, self.elevenlabs = deepgram, openai, elevenlabs


@pytest.fixture
def hosted_fakes(settings):
    """The hosted providers' real SDK adapters, pointed at wire-level emulators on loopback."""
    from calls.live import providers as registry
    from calls.sandbox.emulators.base import EmulatorServer
    from calls.sandbox.emulators.deepgram import DeepgramEmulator
    from calls.sandbox.emulators.elevenlabs import ElevenLabsEmulator
    from calls.sandbox.emulators.openai import OpenAIEmulator

    fakes = HostedFakes(
        DeepgramEmulator(api_key="dg-key", final_latency_ms=50),
        OpenAIEmulator(api_key="sk-test"),
        ElevenLabsEmulator(api_key="el-key", ms_per_char=20),
    )
    servers = [
        EmulatorServer(fakes.deepgram.app()).start_in_thread(),
        EmulatorServer(fakes.openai.app()).start_in_thread(),
        EmulatorServer(fakes.elevenlabs.app()).start_in_thread(),
    ]
    dg, oa, el = (s.base_url for s in servers)
    settings.PROVIDERS = {
        "stt": {"BACKEND": "calls.providers.stt.deepgram.DeepgramSTT",
                "OPTIONS": {"api_key": "dg-key", "base_url": dg}},
        "llm": {"BACKEND": "calls.providers.llm.openai.OpenAILLM",
                "OPTIONS": {"api_key": "sk-test", "base_url": f"{oa}/v1"}},
        "tts": {"BACKEND": "calls.providers.tts.elevenlabs.ElevenLabsTTS",
                "OPTIONS": {"api_key": "el-key", "base_url": el}},
        "tts_fallback": {"BACKEND": "calls.providers.tts.deepgram.DeepgramTTS",
                         "OPTIONS": {"api_key": "dg-key", "base_url": dg}},
        "vad": {"BACKEND": "calls.providers.vad.webrtc.WebRTCVAD", "OPTIONS": {}},
    }  # fmt: skip
    registry.reset()
    yield fakes
    registry.reset()
    for server in servers:
        server.stop()
