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


SECRET_KEY_FROM_ENV = bool(env("SECRET_KEY"))  # calls/checks.py: required with a real carrier
SECRET_KEY = env("SECRET_KEY") or _local_secret_key()
ALLOWED_HOSTS = [
    h.strip() for h in env("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS").split(",") if o]

# HTTPS in production (README, "Going live"; `manage.py check --deploy` lists what is missing).
# Behind a proxy that ends TLS: SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO (the header it sets
# to "https"); only when the proxy always sets or overwrites that header.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT")
SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE")
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE")
SECURE_PROXY_SSL_HEADER = (
    (env("SECURE_PROXY_SSL_HEADER"), "https") if env("SECURE_PROXY_SSL_HEADER") else None
)

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
    "axes",
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
    "axes.middleware.AxesMiddleware",  # last: answers a locked-out login with a 429
]

# Password guessing at the admin login (django-axes): after AXES_FAILURE_LIMIT failures for one
# username from one address, that pair is refused for AXES_COOLOFF_HOURS, even with the right
# password. `manage.py axes_reset_username <name>` lifts it early.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(env("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(env("AXES_COOLOFF_HOURS", "1"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

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

# The API's request-rate counts (callcenter/throttling.py) live here: in this process by default;
# CACHE_URL (redis://...) shares them between several server processes.
CACHE_URL = env("CACHE_URL")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

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
# Recordings hold callers' voices: readable by the server's user only.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

# API tokens stop being accepted this long after they were issued (0: never); see
# callcenter/authentication.py.
API_TOKEN_TTL_HOURS = int(env("API_TOKEN_TTL_HOURS", str(30 * 24)))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "callcenter.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Roles (calls/roles.py) as Django permissions: reads need `view`, writes and actions more.
    "DEFAULT_PERMISSION_CLASSES": ["callcenter.permissions.RolePermissions"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "callcenter.pagination.Pagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "callcenter.exceptions.api_exception_handler",
    # Per user, and for everyone (`_global`), on the actions that cost money; "" = no limit.
    "DEFAULT_THROTTLE_CLASSES": [
        "callcenter.throttling.UserActionRateThrottle",
        "callcenter.throttling.GlobalActionRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "calls": env("THROTTLE_CALLS", "10/min"),
        "calls_global": env("THROTTLE_CALLS_GLOBAL", "60/min"),
        "control": env("THROTTLE_CONTROL", "60/min"),
        "control_global": env("THROTTLE_CONTROL_GLOBAL", "600/min"),
        "playground": env("THROTTLE_PLAYGROUND", "20/min"),
        "playground_global": env("THROTTLE_PLAYGROUND_GLOBAL", "200/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Call Center API",
    "DESCRIPTION": "AI phone calls: personas, calls, turns, events and live control.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
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
        "axes.apps": {"level": "WARNING"},  # its version banner, in every process
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
# A media socket that has not sent a valid `start` this long after the upgrade is closed; at most
# this many sockets may wait for their `start` at once (more are refused at the upgrade).
STREAM_START_TIMEOUT_SECONDS = float(env("STREAM_START_TIMEOUT_SECONDS", "3"))
MAX_PENDING_STREAMS = int(env("MAX_PENDING_STREAMS", "200"))
# The dialling policy (calls/telephony/policy.py) for every number the product calls: the ISO
# countries allowed, and numbers or prefixes never dialled ("+1900,+4487"). Premium-rate,
# shared-cost, UAN, personal and satellite numbers are always refused.
DIAL_ALLOWED_COUNTRIES = [
    c.strip().upper() for c in env("DIAL_ALLOWED_COUNTRIES", "US,CA").split(",") if c.strip()
]
DIAL_DENY_LIST = [n.strip() for n in env("DIAL_DENY_LIST").split(",") if n.strip()]
# Caps on placing calls (0: none): calls active at once (both directions), and calls to one number
# in 24 hours (none by default with the sandbox: the carrier in this process, or the placeholder
# account a `manage.py call` beside it uses; its test numbers are called over and over).
MAX_ACTIVE_CALLS = int(env("MAX_ACTIVE_CALLS", "50"))
MAX_CALLS_PER_DESTINATION_PER_DAY = int(
    env(
        "MAX_CALLS_PER_DESTINATION_PER_DAY",
        "0" if SANDBOX_CARRIER or TWILIO_ACCOUNT_SID == "AC" + "0" * 32 else "10",
    )
)

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
