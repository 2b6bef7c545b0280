"""The API's default permission: a view's named permission per action, else the model's own."""

from __future__ import annotations

from rest_framework.permissions import DjangoModelPermissions


class RolePermissions(DjangoModelPermissions):
    """Reads need the model's `view` permission, writes its `add`/`change`/`delete`; an action a
    view lists in `action_permissions` (`{"create": ["calls.place_call"]}`) needs those instead.
    The roles (Django groups) that hold them are in `calls/roles.py`."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        named = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if named is not None:
            return request.user.has_perms(named)
        if getattr(view, "queryset", None) is None and not hasattr(view, "get_queryset"):
            return True  # not a model's view (the router's root): signing in is enough
        return super().has_permission(request, view)
