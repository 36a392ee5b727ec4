# project/asgi.py
import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application
from django.urls import re_path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_app = get_asgi_application()

from strawberry_model_subs.consumers import GraphQLWSConsumer  # noqa: E402

from .schema import schema  # noqa: E402

consumer = GraphQLWSConsumer.as_asgi(schema=schema)

application = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": URLRouter(
            [
                # Browsers: the session's user, and only from the site's own pages.
                re_path(r"^ws$", AllowedHostsOriginValidator(AuthMiddlewareStack(consumer))),
                # Scripts, apps, other servers: no Origin needed and no cookie read, so a page
                # of another site gains nothing here; project.auth requires a token.
                re_path(r"^ws/token$", consumer),
            ]
        ),
    }
)
