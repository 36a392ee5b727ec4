# project/auth.py: add, and name it in AUTHENTICATE for tokens that last a day
import datetime

from django.utils import timezone
from strawberry_model_subs import Authenticated

TOKEN_LIFETIME = datetime.timedelta(days=1)


async def authenticate_expiring(scope, params):
    """As authenticate, and a connection made with a token ends when the token does."""
    key = params.get("token")
    if key is None:
        return await authenticate(scope, params)
    try:
        token = await Token.objects.select_related("user").aget(key=str(key))
    except Token.DoesNotExist:
        raise Rejected("invalid token") from None
    expires_at = token.created + TOKEN_LIFETIME
    if expires_at <= timezone.now():
        raise Rejected("token expired")
    return Authenticated(token.user, expires_at=expires_at)
