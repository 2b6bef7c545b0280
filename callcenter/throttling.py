"""Request rates for the actions that cost money (placing calls, live control, the playground):
per user and for everyone, from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]; over one: a 429."""

from __future__ import annotations

import math

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class _ActionRateThrottle(SimpleRateThrottle):
    """Limits the actions a view lists in `throttle_scopes` (`{"create": "calls"}`) at that
    scope's rate; other actions, and a scope without a rate (empty), are not limited. The counts
    are kept in the default cache: per process unless CACHE_URL names a shared one."""

    suffix = ""

    def __init__(self) -> None:  # the scope, hence the rate, is known only per request
        self.rate = None

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, "throttle_scopes", {}).get(getattr(view, "action", None))
        if scope is None:
            return True
        self.scope = scope + self.suffix
        self.rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope) or None
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def wait(self) -> float:
        """Seconds until the request that frees a place leaves the window (the Retry-After)."""
        freeing = self.history[min(self.num_requests, len(self.history)) - 1]
        return max(1.0, math.ceil(self.duration - (self.now - freeing)))


class UserActionRateThrottle(_ActionRateThrottle):
    """Each user's own rate (`<scope>`). Listed before the global one: a request it refuses is
    not counted there (one user over their rate must not use up everyone's)."""

    def allow_request(self, request, view) -> bool:
        allowed = super().allow_request(request, view)
        if not allowed:
            request.refused_by_user_rate = True
        return allowed

    def get_cache_key(self, request, view) -> str:
        ident = request.user.pk if request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class GlobalActionRateThrottle(_ActionRateThrottle):
    """Everyone's requests together (`<scope>_global`)."""

    suffix = "_global"

    def allow_request(self, request, view) -> bool:
        if getattr(request, "refused_by_user_rate", False):
            return True  # refused already, by the user's own rate: not one of everyone's
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": "all"}
