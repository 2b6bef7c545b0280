"""Create the operator account and its API token (idempotent); print the token for clients."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone
from rest_framework.authtoken.models import Token

NEW_PASSWORD = "python manage.py ensure_operator --new-password"


class Command(BaseCommand):
    help = (
        "Ensure an operator superuser and API token exist; writes the token to var/operator_token. "
        "The password is printed when the account is created; --new-password sets and prints a "
        "new one (OPERATOR_PASSWORD=... chooses it)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=os.environ.get("OPERATOR_USERNAME", "operator"))
        parser.add_argument(
            "--new-password", action="store_true",
            help="set a new password (random, or OPERATOR_PASSWORD) and print it",
        )  # fmt: skip

    def handle(self, *args, username: str, new_password: bool, **options) -> None:
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        password = os.environ.get("OPERATOR_PASSWORD", "")
        if created or password or new_password:
            password = password or secrets.token_urlsafe(12)
            user.set_password(password)
            user.save()
            self.stdout.write(
                f"operator login: {username} / {password}  (shown this once; a new one: "
                f"`{NEW_PASSWORD}`)"
            )
        else:
            self.stdout.write(
                f"operator login: {username} (password printed when it was set; "
                f"a new one: `{NEW_PASSWORD}`)"
            )
        wanted = os.environ.get("OPERATOR_TOKEN", "")
        token = Token.objects.filter(user=user).first()
        ttl = settings.API_TOKEN_TTL_HOURS  # callcenter/authentication.py refuses older tokens
        if token is not None and ttl and token.created <= timezone.now() - timedelta(hours=ttl):
            token.delete()  # expired: a new one (the same key again when OPERATOR_TOKEN names it)
            token = None
        if wanted and (token is None or token.key != wanted):
            Token.objects.filter(user=user).delete()
            token = Token.objects.create(user=user, key=wanted)
        token = token or Token.objects.create(user=user)
        path = settings.BASE_DIR / "var" / "operator_token"
        path.parent.mkdir(exist_ok=True)
        path.write_text(token.key)
        path.chmod(0o600)
        self.stdout.write(f"operator API token: {token.key}")
