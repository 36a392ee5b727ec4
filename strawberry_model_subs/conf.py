"""The ``STRAWBERRY_MODEL_SUBS`` setting, read through one accessor.

Example::

    # settings.py
    STRAWBERRY_MODEL_SUBS = {"SEND_QUEUE_SIZE": 500}

    from strawberry_model_subs.conf import get_settings
    get_settings().SEND_QUEUE_SIZE  # 500

Unknown keys are an error, so a misspelt setting is never silently ignored. The value is re-read
when Django's ``setting_changed`` signal fires (``override_settings`` in tests).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .exceptions import ConfigurationError

SETTING_NAME = "STRAWBERRY_MODEL_SUBS"


@dataclass(frozen=True)
class Settings:
    """The library's settings and their defaults (documented in docs/settings.md)."""

    #: Alias in ``CHANNEL_LAYERS`` of the layer that carries events and control messages.
    CHANNEL_LAYER: str = "default"
    #: Prefix of every group name the library uses (``<prefix>.<stream>``).
    GROUP_PREFIX: str = "sms"
    #: Seconds a control operation waits for a socket held by another process to answer.
    CONTROL_TIMEOUT: float = 5.0
    #: Frames waiting to be written to one socket before it is closed as too slow (code 1013).
    SEND_QUEUE_SIZE: int = 1000
    #: Stream-protocol subscriptions one socket may hold at once.
    MAX_SUBSCRIPTIONS_PER_CONNECTION: int = 100
    #: Dotted path of ``async def authenticate(scope, params) -> user | None`` (see ``auth``).
    AUTHENTICATE: str | None = None
    #: Largest text frame a client may send, in characters (stream socket: an error frame;
    #: graphql-transport-ws / graphql-ws: close code 1009).
    MAX_FRAME_SIZE: int = 65536
    #: Control operations one stream socket may take per second (a burst of twice as many).
    CONTROL_RATE: float = 20.0
    #: Typed subscriptions on GraphQLWSConsumer: execute each distinct document (with its
    #: variables) once per event and share the payload (False: Strawberry runs every subscriber's
    #: selection set, with the schema extensions' per-result hooks).
    SHARE_TYPED_EXECUTION: bool = True
    #: Modules imported from every installed app when Django starts, so that the serializers
    #: decorated in them are registered in every process (web, shell, Celery, commands); dotted
    #: module paths are imported as they are. Empty: import nothing.
    AUTODISCOVER: tuple[str, ...] = ("serializers",)
    #: Events kept while the channel layer or the database cannot be reached (then the oldest
    #: are dropped and counted).
    PUBLISH_BUFFER_SIZE: int = 10000
    #: Seconds a process that exits waits for its pending events to be published.
    PUBLISH_EXIT_TIMEOUT: float = 5.0
    #: Events kept per stream for subscribers that resume from a cursor (``after``); 0 keeps
    #: none (events then carry no cursor).
    HISTORY_SIZE: int = 10000
    #: Seconds an event is kept in its stream's history.
    HISTORY_TTL: float = 300.0
    #: Seconds between two closings, as websocket messages arrive, of the database connections
    #: too old (``CONN_MAX_AGE``) or broken (0: before every message, as Channels' consumers).
    OLD_CONNECTIONS_INTERVAL: float = 1.0


_cached: Settings | None = None


def get_settings() -> Settings:
    """Return the current settings, merged over the defaults."""
    global _cached
    if _cached is None:
        _cached = _load(getattr(django_settings, SETTING_NAME, {}))
    return _cached


def _load(user: Any) -> Settings:
    if not isinstance(user, dict):
        raise ConfigurationError(f"{SETTING_NAME} must be a dict, not {type(user).__name__}.")
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(user) - known)
    if unknown:
        raise ConfigurationError(
            f"{SETTING_NAME} has unknown key(s) {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(known))}."
        )
    values = dict(user)
    discover = values.get("AUTODISCOVER")
    if isinstance(discover, str):
        values["AUTODISCOVER"] = (discover,)
    elif discover is not None:
        values["AUTODISCOVER"] = tuple(discover)
    return Settings(**values)


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs: Any) -> None:
    global _cached
    if setting in (SETTING_NAME, "CHANNEL_LAYERS"):
        _cached = None
