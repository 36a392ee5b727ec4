from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sms_site.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import re_path

django_app = get_asgi_application()

from strawberry_model_subs.consumers import GraphQLWSConsumer  # noqa: E402

from .schema import schema  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": URLRouter([re_path(r"^ws$", GraphQLWSConsumer.as_asgi(schema=schema))]),
    }
)
