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
connection with close code 4403.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.utils.module_loading import import_string

from .conf import get_settings
from .exceptions import ConfigurationError
from .exceptions import Rejected as Rejected
from .permissions import anonymous


async def connection_user(scope: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """The user of a connection: the hook's answer, else the scope's user, else anonymous.

    Raises :class:`Rejected` when the hook refuses the connection.
    """
    path = get_settings().AUTHENTICATE
    if path:
        try:
            hook = import_string(path)
        except ImportError as exc:
            raise ConfigurationError(f"AUTHENTICATE {path!r} cannot be imported: {exc}") from exc
        result = hook(scope, params)
        if inspect.isawaitable(result):
            result = await result
        if result is not None:
            return result
    user = scope.get("user")
    if user is None:
        return anonymous()
    # Channels' AuthMiddleware resolves the lazy user before the consumer runs; touching it is
    # then free, but a lazy object that was not resolved would query the database.
    await sync_to_async(lambda: user.is_authenticated)()
    return user
