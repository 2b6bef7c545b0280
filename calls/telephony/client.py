"""The Twilio REST client, built from settings; its base URL can point at the sandbox carrier."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from twilio.rest import Client


@cache
def _client(account_sid: str, auth_token: str, base_url: str) -> Client:
    client = Client(account_sid, auth_token)
    if base_url:
        # The SDK hard-codes https://api.twilio.com; overriding the domain keeps every path the same.
        client.api.base_url = base_url.rstrip("/")
    return client


def twilio_client() -> Client:
    return _client(
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_API_BASE_URL
    )


def reset() -> None:
    """Forget cached clients (settings changed, e.g. in tests)."""
    _client.cache_clear()
