"""Django system checks: the setup problems ``manage.py check`` (and every runserver) reports."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from .conf import SETTING_NAME, get_settings
from .exceptions import ConfigurationError


@register()
def check_setup(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        options = get_settings()
    except ConfigurationError as exc:
        return [Error(str(exc), id="strawberry_model_subs.E001")]
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    config = layers.get(options.CHANNEL_LAYER)
    if config is None:
        return [
            Error(
                f"no channel layer {options.CHANNEL_LAYER!r} in CHANNEL_LAYERS.",
                hint="Add CHANNEL_LAYERS = {'default': {'BACKEND': "
                "'channels.layers.InMemoryChannelLayer'}} for one process, or a channels_redis "
                f"layer for several; or name another alias in {SETTING_NAME}['CHANNEL_LAYER'].",
                id="strawberry_model_subs.E002",
            )
        ]
    backend = str(config.get("BACKEND", ""))
    messages: list[CheckMessage] = []
    if backend not in SUPPORTED_BACKENDS:
        messages.append(
            Warning(
                f"channel layer backend {backend!r} is not one strawberry-model-subs is tested "
                "with; it needs the groups extension and process-specific channels.",
                hint=f"Use one of {', '.join(sorted(SUPPORTED_BACKENDS))}.",
                id="strawberry_model_subs.W001",
            )
        )
    if backend.startswith("channels_redis"):
        hosts = (config.get("CONFIG") or {}).get("hosts") or []
        if any(not isinstance(h, dict) or "max_connections" not in h for h in hosts):
            messages.append(
                Warning(
                    "a channels_redis host has no max_connections: redis-py caps each pool at "
                    "100 connections, which many workers and publishers can exhaust.",
                    hint="Write the host as {'address': 'redis://...', 'max_connections': 1000}.",
                    id="strawberry_model_subs.W002",
                )
            )
    return messages


SUPPORTED_BACKENDS = frozenset(
    {
        "channels.layers.InMemoryChannelLayer",
        "channels_redis.core.RedisChannelLayer",
        "channels_redis.pubsub.RedisPubSubChannelLayer",
    }
)
