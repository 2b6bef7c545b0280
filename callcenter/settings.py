"""Django settings, read from the environment (and `.env` when present); embedded defaults need nothing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import dj_database_url
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    return env(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG", False)


def _local_secret_key() -> str:
    """A key kept in var/ so every local process (server, carrier, console) shares it."""
    path = BASE_DIR / "var" / "secret_key"
    path.parent.mkdir(exist_ok=True)
    if not path.exists():
        path.write_text(os.urandom(32).hex())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env("SECRET_KEY") or _local_secret_key()
ALLOWED_HOSTS = [
    h.strip() for h in env("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS").split(",") if o]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here: the docs work offline
    "phonenumber_field",
    "channels",
    "agents",
    "calls",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "callcenter.urls"
ASGI_APPLICATION = "callcenter.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite by default; DATABASE_URL (postgres://...) switches to PostgreSQL.
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout: the API and the call consumers write concurrently.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so a second server process in the cross-process tests shares it.
    # Per process: test runs side by side must not share one file.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"callcenter-test-{os.getpid()}.sqlite3")
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# In-memory channel layer by default; REDIS_URL switches to channels_redis (needed with several processes).
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "capacity": 1000,
                "expiry": 30,
                "prefix": env("CHANNEL_PREFIX", "asgi"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# `manage.py collectstatic` (in `make setup`) gathers the admin's, DRF's and Swagger UI's files
# here; the ASGI application serves them (ServeStatic, callcenter/asgi.py) under any server.
STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT") or BASE_DIR / "var" / "static")
MEDIA_ROOT = Path(env("MEDIA_ROOT") or BASE_DIR / "var" / "media")
MEDIA_URL = "media/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "callcenter.pagination.Pagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "callcenter.exceptions.api_exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Call Center API",
    "DESCRIPTION": "AI phone calls: personas, calls, turns, events and live control.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from drf-spectacular-sidecar's files (no CDN), and no call to its online validator.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

PHONENUMBER_DEFAULT_REGION = env("PHONENUMBER_DEFAULT_REGION") or None
PHONENUMBER_DEFAULT_FORMAT = "E164"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "twilio.http_client": {"level": "WARNING"},
        "aiohttp.access": {"level": "WARNING"},
        # One INFO line per provider request (the TTS and LLM SDKs' HTTP clients): noise, and a
        # formatted write to stderr on the event loop for every sentence spoken.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
    },
}

# --- Telephony -------------------------------------------------------------------------------
# The public https base URL Twilio reaches us at (webhooks are signed against it; the media
# stream URL is derived from it). The sandbox carrier uses the local server.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", "sandbox-auth-token")
# Empty: the real api.twilio.com. The sandbox carrier sets its own URL here.
TWILIO_API_BASE_URL = env("TWILIO_API_BASE_URL")
TWILIO_FROM_NUMBER = env("TWILIO_FROM_NUMBER", "+15005550006")
# Run the sandbox carrier (Twilio's REST API and media streams, with simulated callees) inside
# this server; `make run` sets it. The Twilio client is then aimed at it.
SANDBOX_CARRIER = env_bool("SANDBOX_CARRIER", False)
SANDBOX_CARRIER_PORT = int(env("SANDBOX_CARRIER_PORT", "8099"))
# Dialled number -> persona slug for inbound calls, "NUMBER=slug,NUMBER=slug"; else the default.
INBOUND_PERSONAS = dict(
    pair.split("=", 1) for pair in env("INBOUND_PERSONAS").split(",") if "=" in pair
)
INBOUND_DEFAULT_PERSONA = env("INBOUND_DEFAULT_PERSONA")
STREAM_TOKEN_TTL_SECONDS = int(env("STREAM_TOKEN_TTL_SECONDS", "120"))

# --- Providers (dotted paths; each hosted one has an offline twin) ----------------------------
DEEPGRAM_API_KEY = env("DEEPGRAM_API_KEY")
DEEPGRAM_BASE_URL = env("DEEPGRAM_BASE_URL")
OPENAI_API_KEY = env("OPENAI_API_KEY")
OPENAI_BASE_URL = env("OPENAI_BASE_URL")
OPENAI_MODEL = env("OPENAI_MODEL", "gpt-4o-mini")
ELEVENLABS_API_KEY = env("ELEVENLABS_API_KEY")
ELEVENLABS_BASE_URL = env("ELEVENLABS_BASE_URL")

# Each backend is a dotted path plus keyword options, like CHANNEL_LAYERS. A hosted provider is
# chosen when its key is set; the local twin otherwise. Override any with *_BACKEND.
_HOSTED = {
    "stt": ("calls.providers.stt.deepgram.DeepgramSTT", DEEPGRAM_API_KEY,
            {"api_key": DEEPGRAM_API_KEY, "base_url": DEEPGRAM_BASE_URL}),
    "llm": ("calls.providers.llm.openai.OpenAILLM", OPENAI_API_KEY,
            {"api_key": OPENAI_API_KEY, "base_url": OPENAI_BASE_URL, "model": OPENAI_MODEL}),
    "tts": ("calls.providers.tts.elevenlabs.ElevenLabsTTS", ELEVENLABS_API_KEY,
            {"api_key": ELEVENLABS_API_KEY, "base_url": ELEVENLABS_BASE_URL}),
    "tts_fallback": ("calls.providers.tts.deepgram.DeepgramTTS", DEEPGRAM_API_KEY,
                     {"api_key": DEEPGRAM_API_KEY, "base_url": DEEPGRAM_BASE_URL}),
}  # fmt: skip
_LOCAL = {
    "stt": "calls.providers.stt.local.LocalSTT",
    "llm": "calls.providers.llm.scripted.ScriptedLLM",
    "tts": "calls.providers.tts.local.LocalTTS",
    "tts_fallback": "calls.providers.tts.local.LocalTTS",
    "vad": "calls.providers.vad.webrtc.WebRTCVAD",
}


def _provider(kind: str) -> dict:
    path, key, options = _HOSTED.get(kind, ("", "", {}))
    chosen = env(f"{kind.upper()}_BACKEND") or (path if key else _LOCAL[kind])
    return {"BACKEND": chosen, "OPTIONS": options if chosen == path else {}}


PROVIDERS = {kind: _provider(kind) for kind in ("stt", "llm", "tts", "tts_fallback", "vad")}
