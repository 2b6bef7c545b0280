"""`manage.py grant_role <username> <viewer|operator|admin>`: give a user a role (calls/roles.py)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from calls.roles import ROLES, grant


class Command(BaseCommand):
    help = "Put a user in a role's group (viewer, operator or admin); --staff also opens the admin."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=list(ROLES))
        parser.add_argument("--staff", action="store_true", help="let the user sign in to /admin/")

    def handle(self, *args, username: str, role: str, staff: bool, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(
                f"no user {username!r}; create one with `manage.py createsuperuser` or in the admin"
            )
        grant(user, role)
        if staff and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        self.stdout.write(f"{username}: {role}" + (" (staff)" if user.is_staff else ""))
