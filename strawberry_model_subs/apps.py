from __future__ import annotations

from django.apps import AppConfig


class StrawberryModelSubsConfig(AppConfig):
    name = "strawberry_model_subs"
    verbose_name = "Strawberry model subscriptions"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .bridge import connect_model
        from .registry import registrations

        # Serializers decorated before ready() (rare) get their receivers now.
        for registration in registrations():
            connect_model(registration.model)
