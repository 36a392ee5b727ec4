"""``AUTHENTICATE`` hooks of the test site: bearer tokens (``ApiToken``) for websocket clients.

The token comes from the graphql-transport-ws / graphql-ws ``connection_init`` payload
(``{"token": "..."}``) or from the stream socket's query string (``/ws?token=...``).

* :func:`authenticate` (the test settings' hook): no token keeps the session's user (or
  anonymous); a token that is not a known key, or has expired, refuses the connection; a token
  with an expiry makes the connection expire with it.
* :func:`authenticate_required` (selected by the tests that need it): as above, and a connection
  with neither a valid token nor a logged-in session is refused too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from strawberry_model_subs.auth import Authenticated, Rejected

from .models import ApiToken


async def authenticate(scope: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """The user of a valid ``token``; None (the scope's user) without one; else Rejected."""
    key = params.get("token")
    if key is None:
        return None
    # Checked before the query: PostgreSQL refuses a NUL character with an error, not a miss.
    if not isinstance(key, str) or not key or len(key) > 64 or not key.isprintable():
        raise Rejected("malformed token")
    try:
        token = await ApiToken.objects.select_related("user").aget(key=key)
    except ApiToken.DoesNotExist:
        raise Rejected("invalid token") from None
    if not token.user.is_active:
        raise Rejected("the token's user is inactive")
    if token.expires_at is None:
        return token.user
    if token.expires_at <= timezone.now():
        raise Rejected("the token has expired")
    return Authenticated(token.user, expires_at=token.expires_at)


async def authenticate_required(scope: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """:func:`authenticate`, and no anonymous connection: a session or a token is required."""
    answer = await authenticate(scope, params)
    if answer is not None:
        return answer
    session_user = scope.get("user")
    if session_user is None or not await sync_to_async(lambda: session_user.is_authenticated)():
        raise Rejected("authentication required: log in or pass a token")
    return None
