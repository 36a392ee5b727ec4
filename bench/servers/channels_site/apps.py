from __future__ import annotations

from django.apps import AppConfig


class ChannelsSiteConfig(AppConfig):
    name = "channels_site"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the receiver)
