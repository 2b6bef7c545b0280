"""API tokens that expire: DRF's token, refused API_TOKEN_TTL_HOURS after it was issued.

DRF's own token with an expiry check, not a package such as django-rest-knox: knox stores only a
digest of each key, so it cannot honour OPERATOR_TOKEN (a key chosen in advance) and would change
what the console, the bench and `ensure_operator` use; this keeps DRF's token and adds the expiry.
Rotation and revocation: callcenter/tokens.py (an admin revokes anyone's in the admin, Tokens)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


def expires_at(token: Token) -> datetime | None:
    """When `token` stops being accepted; None when tokens do not expire (a TTL of 0)."""
    hours = settings.API_TOKEN_TTL_HOURS
    return token.created + timedelta(hours=hours) if hours else None


class ExpiringTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`, refused once the key is older than API_TOKEN_TTL_HOURS."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        ends = expires_at(token)
        if ends is not None and ends <= timezone.now():
            raise exceptions.AuthenticationFailed(
                "token expired: sign in to the admin and rotate it, or ask an admin for a new one"
            )
        return user, token
