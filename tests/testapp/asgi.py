from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application
from django.urls import re_path

django_asgi_app = get_asgi_application()

from strawberry_model_subs.consumers import GraphQLWSConsumer  # noqa: E402

from .schema import schema  # noqa: E402

consumer = GraphQLWSConsumer.as_asgi(schema=schema)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The socket's user comes from the session cookie (AuthMiddlewareStack), or from the
        # AUTHENTICATE hook (tests.testapp.auth).
        "websocket": AuthMiddlewareStack(
            URLRouter(
                [
                    # /ws for clients; /graphql too, where GraphiQL looks for subscriptions.
                    re_path(r"^ws$", consumer),
                    re_path(r"^graphql$", consumer),
                    # The same consumer behind Channels' origin check (ALLOWED_HOSTS).
                    re_path(r"^ws-origin-checked$", AllowedHostsOriginValidator(consumer)),
                ]
            )
        ),
    }
)
