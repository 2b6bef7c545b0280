"""The roles, as Django groups, and the permissions each holds: viewer < operator < admin."""

from __future__ import annotations

from django.apps import apps as global_apps

# See calls, transcripts, events and the live views; the personas they use.
VIEWER = (
    "calls.view_call", "calls.view_turn", "calls.view_callevent",
    "agents.view_persona", "agents.view_qaentry",
)  # fmt: skip
# Also place, control and supervise calls, and try personas in the playground (each costs money).
OPERATOR = (*VIEWER, "calls.place_call", "calls.control_call", "agents.chat_persona")
# Also edit personas and users, delete calls, download recordings. Not other people's API tokens
# (seeing one is acting as its owner): each user rotates their own (POST /api/token/).
ADMIN = (
    *OPERATOR,
    "calls.download_recording", "calls.delete_call",
    "agents.add_persona", "agents.change_persona", "agents.delete_persona",
    "agents.add_qaentry", "agents.change_qaentry", "agents.delete_qaentry",
    "auth.view_user", "auth.add_user", "auth.change_user", "auth.delete_user", "auth.view_group",
)  # fmt: skip
ROLES: dict[str, tuple[str, ...]] = {"viewer": VIEWER, "operator": OPERATOR, "admin": ADMIN}


def sync_roles(apps=global_apps) -> None:
    """Create the groups and give each its permissions (idempotent; permissions an admin added to
    a group are kept). `apps`: a migration's historical registry, or the real one."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for name, dotted in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        wanted = []
        for perm in dotted:
            app_label, codename = perm.split(".", 1)
            wanted.append(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.add(*wanted)


def grant(user, role: str) -> None:
    """Put `user` in the group of `role` (creating the groups if a flush removed them)."""
    if role not in ROLES:
        raise ValueError(f"no role {role!r}; choose from {', '.join(ROLES)}")
    group_model = global_apps.get_model("auth", "Group")
    if not group_model.objects.filter(name=role).exists():
        sync_roles()
    user.groups.add(group_model.objects.get(name=role))
