"""Django system checks: the setup problems ``manage.py check`` (and every runserver) reports."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from .conf import SETTING_NAME, get_settings
from .exceptions import ConfigurationError


@register()
def check_setup(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The setup problems of the library's settings and its channel layer: invalid settings
    (E001), no layer under ``CHANNEL_LAYER`` (E002), a backend it is not tested with (W001), a
    channels_redis host without ``max_connections`` (W002) or with a ``socket_timeout`` of 5 s
    or less (W003)."""
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
        messages += _check_redis_hosts(hosts)
    return messages


@register(deploy=True)
def check_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """What ``manage.py check --deploy`` adds: the in-memory layer (W004), which carries events
    only within one process."""
    try:
        options = get_settings()
    except ConfigurationError:
        return []  # check_setup reports it
    config = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get(options.CHANNEL_LAYER) or {}
    if config.get("BACKEND") != "channels.layers.InMemoryChannelLayer":
        return []
    return [
        Warning(
            "the channel layer is InMemoryChannelLayer, which carries events within one "
            "process: with several server workers (uvicorn --workers, gunicorn, several "
            "hosts), or saves in another process (a Celery worker, a management command, a "
            "script), subscribers of one process never see the changes committed in another.",
            hint="Use channels_redis (RedisChannelLayer or RedisPubSubChannelLayer) in "
            "production; see the documentation's Deployment page (docs/deployment.md). Silence "
            "this with "
            "SILENCED_SYSTEM_CHECKS = ['strawberry_model_subs.W004'] if one process serves "
            "and writes everything.",
            id="strawberry_model_subs.W004",
        )
    ]


def _check_redis_hosts(hosts: list[Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if any(not isinstance(h, dict) or "max_connections" not in h for h in hosts):
        messages.append(
            Warning(
                "a channels_redis host has no max_connections: redis-py caps each pool at "
                "100 connections, which many workers and publishers can exhaust.",
                hint="Write the host as {'address': 'redis://...', 'max_connections': 1000, "
                "'socket_timeout': 30}.",
                id="strawberry_model_subs.W002",
            )
        )
    if any(not isinstance(h, dict) or _too_short(h.get("socket_timeout", 5)) for h in hosts):
        messages.append(
            Warning(
                "a channels_redis host has a socket_timeout of 5 s or less (redis-py's default "
                "is 5 s), no longer than the 5 s channels_redis blocks in BZPOPMIN: the library "
                "shortens that read to 2 s for it, one idle round trip every 2 s per process.",
                hint="Write the host as {'address': 'redis://...', 'max_connections': 1000, "
                "'socket_timeout': 30}.",
                id="strawberry_model_subs.W003",
            )
        )
    return messages


def _too_short(timeout: object) -> bool:
    return isinstance(timeout, (int, float)) and timeout <= 5


SUPPORTED_BACKENDS = frozenset(
    {
        "channels.layers.InMemoryChannelLayer",
        "channels_redis.core.RedisChannelLayer",
        "channels_redis.pubsub.RedisPubSubChannelLayer",
    }
)
