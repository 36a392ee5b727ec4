from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application
from django.urls import re_path

if TYPE_CHECKING:
    from channels.routing import _ExtendedURLPattern

django_asgi_app = get_asgi_application()

from strawberry_model_subs.consumers import GraphQLWSConsumer  # noqa: E402

from .schema import schema  # noqa: E402

consumer = GraphQLWSConsumer.as_asgi(schema=schema)


def websocket_route(route: str, app: Any) -> _ExtendedURLPattern:
    """``re_path(route, app)`` for Channels' ``URLRouter``: django-stubs types a route's view as
    an HTTP view and types-channels wants its own route type, where Channels routes ASGI
    applications through ``re_path`` itself (its documented use)."""
    return cast("_ExtendedURLPattern", re_path(route, app))


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The socket's user comes from the session cookie (AuthMiddlewareStack), or from the
        # AUTHENTICATE hook (tests.testapp.auth).
        "websocket": AuthMiddlewareStack(
            URLRouter(
                [
                    # /ws for clients; /graphql too, where GraphiQL looks for subscriptions.
                    websocket_route(r"^ws$", consumer),
                    websocket_route(r"^graphql$", consumer),
                    # The same consumer behind Channels' origin check (ALLOWED_HOSTS).
                    websocket_route(r"^ws-origin-checked$", AllowedHostsOriginValidator(consumer)),
                ]
            )
        ),
    }
)
