"""Who is on the other end of a socket.

The user comes from the connection's scope (``scope["user"]``, set by Channels'
``AuthMiddlewareStack`` from the session cookie), or from the ``AUTHENTICATE`` hook, which reads
a token from the graphql-transport-ws / graphql-ws ``connection_init`` payload, or from the stream
socket's query string (``ws://host/ws?token=...``)::

    # settings.py
    STRAWBERRY_MODEL_SUBS = {"AUTHENTICATE": "myproject.auth.authenticate"}

    # myproject/auth.py
    from rest_framework.authtoken.models import Token
    from strawberry_model_subs.auth import Rejected

    async def authenticate(scope, params):
        key = params.get("token")
        if key is None:
            return None  # keep the session's user (or anonymous)
        try:
            token = await Token.objects.select_related("user").aget(key=key)
        except Token.DoesNotExist:
            raise Rejected("invalid token")
        return token.user

The hook returns a user, or None to keep the scope's user; raising :class:`Rejected` refuses the
connection with close code 4403. To end a connection when its credential ends (a token's
expiry), return :class:`Authenticated` with ``expires_at``: the connection is closed with 4403
(reason ``expired``) at that time unless its client refreshed it in-band first, with the
``refreshConnection`` mutation (:func:`~strawberry_model_subs.refresh_connection_field`) sent over
the same socket, which runs the hook again with new params::

    async def authenticate(scope, params):
        ...
        return Authenticated(token.user, expires_at=token.expires_at)
"""

from __future__ import annotations

import datetime
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from asgiref.sync import sync_to_async
from django.utils import timezone
from django.utils.module_loading import import_string

from .conf import get_settings
from .exceptions import ConfigurationError
from .exceptions import Rejected as Rejected
from .permissions import anonymous


@dataclass(frozen=True, slots=True)
class Authenticated:
    """What an ``AUTHENTICATE`` hook may return instead of a bare user: the user (None keeps
    the scope's) and when the connection's credential ends (None: never).

    Example::

        return Authenticated(token.user, expires_at=token.expires_at)
    """

    user: Any = None
    expires_at: datetime.datetime | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a connection is (a user, anonymous included) and until when (None: no end)."""

    user: Any
    expires_at: datetime.datetime | None = None

    def seconds_left(self) -> float | None:
        """Seconds until ``expires_at`` (at least 0), or None without an expiry."""
        if self.expires_at is None:
            return None
        return max(0.0, (self.expires_at - timezone.now()).total_seconds())


@runtime_checkable
class Refreshable(Protocol):
    """A connection whose credential its client can refresh in-band (``GraphQLWSConsumer``)."""

    async def refresh_connection(self, params: Mapping[str, Any]) -> Identity:
        """Run the ``AUTHENTICATE`` hook again with ``params``; the connection's new identity.

        Raises :class:`Rejected` when the hook refuses (the connection keeps its old expiry).
        """
        ...


def _hook() -> Any:
    path = get_settings().AUTHENTICATE
    if not path:
        return None
    try:
        return import_string(path)
    except ImportError as exc:
        raise ConfigurationError(f"AUTHENTICATE {path!r} cannot be imported: {exc}") from exc


def _expiry(value: Any, path: str) -> datetime.datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime.datetime):
        raise ConfigurationError(
            f"AUTHENTICATE {path!r} returned expires_at={value!r}: a datetime or None"
        )
    if timezone.is_naive(value):
        return timezone.make_aware(value)
    return value


async def connection_identity(scope: Mapping[str, Any], params: Mapping[str, Any]) -> Identity:
    """Who a connection is: the hook's answer, else the scope's user, else anonymous; with the
    expiry the hook gave (an :class:`Authenticated`), if any.

    Raises :class:`Rejected` when the hook refuses the connection.
    """
    hook = _hook()
    expires_at = None
    if hook is not None:
        result = hook(scope, params)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Authenticated):
            expires_at = _expiry(result.expires_at, get_settings().AUTHENTICATE or "")
            result = result.user
        if result is not None:
            return Identity(result, expires_at)
    user = scope.get("user")
    if user is None:
        return Identity(anonymous(), expires_at)
    # Channels' AuthMiddleware resolves the lazy user before the consumer runs; touching it is
    # then free, but a lazy object that was not resolved would query the database.
    await sync_to_async(lambda: user.is_authenticated)()
    return Identity(user, expires_at)


def refresh_hook_configured() -> bool:
    """Whether an ``AUTHENTICATE`` hook is set (without one, nothing can be refreshed)."""
    return _hook() is not None
