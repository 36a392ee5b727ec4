# project/asgi.py
import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application
from django.urls import re_path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_app = get_asgi_application()  # sets Django up: import the schema after it

from strawberry_model_subs.consumers import GraphQLWSConsumer  # noqa: E402

from .schema import schema  # noqa: E402

consumer = GraphQLWSConsumer.as_asgi(schema=schema)

application = ProtocolTypeRouter(
    {
        "http": django_app,
        # AllowedHostsOriginValidator: a handshake whose Origin is not in ALLOWED_HOSTS, or that
        # has no Origin, is refused (403). AuthMiddlewareStack: the session's user is the socket's.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([re_path(r"^ws$", consumer)]))
        ),
    }
)
