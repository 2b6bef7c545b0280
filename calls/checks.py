"""Deployment checks: pointed at the real Twilio, the server refuses the sandbox's secrets and insecure settings."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

# `manage.py check --deploy` runs these; `python -m callcenter.serve` runs them (alone) at start-up.
TAG = "live_carrier"
SANDBOX_AUTH_TOKEN = "sandbox-auth-token"  # settings' default, known to anyone who reads the code
PLACEHOLDER_ACCOUNT_SID = "AC" + "0" * 32


def real_carrier() -> bool:
    """Calls go to Twilio itself: no sandbox carrier in this server, no other API base URL."""
    base = settings.TWILIO_API_BASE_URL
    return not settings.SANDBOX_CARRIER and (
        not base or (urlsplit(base).hostname or "").endswith(".twilio.com")
    )


@checks.register(TAG, checks.Tags.security, deploy=True)
def live_carrier_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if not real_carrier():
        return []
    hint = 'see "Going live" in README.md'
    errors = []
    if settings.TWILIO_AUTH_TOKEN in ("", SANDBOX_AUTH_TOKEN):
        errors.append(
            checks.Error(
                "TWILIO_AUTH_TOKEN is the sandbox's built-in token, with the sandbox carrier off: "
                "anyone could sign webhooks for this server.",
                hint=f"set TWILIO_AUTH_TOKEN to your account's auth token ({hint})",
                id="calls.E001",
            )
        )
    if settings.TWILIO_ACCOUNT_SID in ("", PLACEHOLDER_ACCOUNT_SID):
        errors.append(
            checks.Error(
                "TWILIO_ACCOUNT_SID is the built-in placeholder, with the sandbox carrier off.",
                hint=f"set TWILIO_ACCOUNT_SID to your account's SID ({hint})",
                id="calls.E002",
            )
        )
    if urlsplit(settings.PUBLIC_BASE_URL).scheme != "https":
        errors.append(
            checks.Error(
                f"PUBLIC_BASE_URL ({settings.PUBLIC_BASE_URL}) is not https: webhooks and the "
                "media stream's token would cross the internet in clear.",
                hint=f"set PUBLIC_BASE_URL=https://your.host ({hint})",
                id="calls.E003",
            )
        )
    if not settings.SECRET_KEY_FROM_ENV:
        errors.append(
            checks.Error(
                "SECRET_KEY is not set: the server would sign sessions and stream tokens with a "
                "key generated on this machine.",
                hint=f"set SECRET_KEY to a long random value kept secret ({hint})",
                id="calls.E004",
            )
        )
    if settings.DEBUG:
        errors.append(
            checks.Error(
                "DEBUG is on, with the sandbox carrier off: error pages would show settings "
                "and code to anyone.",
                hint=f"set DEBUG=0 ({hint})",
                id="calls.E005",
            )
        )
    return errors
