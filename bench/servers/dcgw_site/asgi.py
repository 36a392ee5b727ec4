from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dcgw_site.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import re_path

django_app = get_asgi_application()

from .consumers import GraphqlWsConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {"http": django_app, "websocket": URLRouter([re_path(r"^ws$", GraphqlWsConsumer.as_asgi())])}
)
