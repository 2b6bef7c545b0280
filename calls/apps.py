"""App config for calls."""

from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls"

    def ready(self) -> None:
        from calls import checks  # noqa: F401  (registers the deployment checks)
