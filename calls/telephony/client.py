"""The Twilio REST client, built from settings; its base URL can point at the sandbox carrier."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from twilio.rest import Client

# A carrier this process runs or found itself (the sandbox's), over settings.TWILIO_API_BASE_URL.
_aimed_at = ""


@cache
def _client(account_sid: str, auth_token: str, base_url: str) -> Client:
    client = Client(account_sid, auth_token)
    if base_url:
        # The SDK hard-codes https://api.twilio.com; overriding the domain keeps every path the same.
        client.api.base_url = base_url.rstrip("/")
    return client


def aim_at(base_url: str) -> None:
    """Send this process's REST requests to `base_url` (e.g. the sandbox carrier it started)
    instead of settings.TWILIO_API_BASE_URL; settings stay as they were loaded."""
    global _aimed_at
    _aimed_at = base_url


def base_url() -> str:
    """Where REST requests go: the carrier aimed at, else settings (empty: Twilio itself)."""
    return _aimed_at or settings.TWILIO_API_BASE_URL


def twilio_client() -> Client:
    return _client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, base_url())


def reset() -> None:
    """Forget cached clients and any `aim_at` (settings changed, e.g. in tests)."""
    global _aimed_at
    _aimed_at = ""
    _client.cache_clear()
