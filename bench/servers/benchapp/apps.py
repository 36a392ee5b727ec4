from __future__ import annotations

from django.apps import AppConfig


class BenchAppConfig(AppConfig):
    name = "benchapp"

    def ready(self) -> None:
        import gcstats

        gcstats.install()
