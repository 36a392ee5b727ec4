from __future__ import annotations

from django.apps import AppConfig


class DcgwSiteConfig(AppConfig):
    name = "dcgw_site"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (connects the receiver)
