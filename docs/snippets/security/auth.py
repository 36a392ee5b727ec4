# project/auth.py
from rest_framework.authtoken.models import Token
from strawberry_model_subs import Rejected

#: The websocket route for clients that are not browsers (project/asgi.py).
TOKEN_ROUTE = "/ws/token"


async def authenticate(scope, params):
    """The user of a connection, from the token its client sends.

    ``params`` is the connection_init payload (graphql-transport-ws, graphql-ws), or the query
    string of a stream socket (``/ws/token?token=...``).
    """
    key = params.get("token")
    if key is None:
        if scope["path"] == TOKEN_ROUTE:
            raise Rejected("this route needs a token")
        return None  # the session's user (AuthMiddlewareStack), or anonymous
    try:
        token = await Token.objects.select_related("user").aget(key=str(key))
    except Token.DoesNotExist:
        raise Rejected("invalid token") from None
    return token.user
