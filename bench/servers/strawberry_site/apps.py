from __future__ import annotations

from django.apps import AppConfig


class StrawberrySiteConfig(AppConfig):
    name = "strawberry_site"

    def ready(self) -> None:
        from channels_site import signals  # noqa: F401  (the same receiver and message)
