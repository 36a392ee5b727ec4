from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_site.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import re_path

django_asgi_app = get_asgi_application()

from strawberry_model_subs.consumers import GraphQLWSConsumer  # noqa: E402

from .schema import schema  # noqa: E402

consumer = GraphQLWSConsumer.as_asgi(schema=schema)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # /ws for the example page and other clients, /graphql for GraphiQL's subscriptions.
        "websocket": URLRouter([re_path(r"^ws$", consumer), re_path(r"^graphql$", consumer)]),
    }
)
