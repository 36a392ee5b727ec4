"""A connection whose credential expires (``Authenticated(user, expires_at=...)`` from the
``AUTHENTICATE`` hook) is closed with 4403, reason ``expired``, on every protocol, unless its
client refreshed it in-band with ``refreshConnection`` over the same socket first.

Real tokens (``ApiToken.expires_at``, read by the test site's hook), in-process through
``WebsocketCommunicator``.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient, override_settings
from django.utils import timezone

from strawberry_model_subs import Authenticated, ConfigurationError
from strawberry_model_subs.auth import connection_identity
from strawberry_model_subs.hub import get_hub
from strawberry_model_subs.testing import StreamClient, TypedClient
from tests.conftest import make_user, wait_until
from tests.testapp.asgi import application
from tests.testapp.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)

#: Seconds a short-lived token lives: long enough for a refresh sent at once to arrive first.
LIFETIME = 2.0
REFRESH = (
    "mutation Refresh($token: String!) {"
    " refreshConnection(params: {token: $token}) { ok error expiresAt } }"
)
PROTOCOLS = ["stream", "graphql-transport-ws", "graphql-ws"]


async def token_of(user: User, key: str, seconds: float | None) -> ApiToken:
    expires_at = None if seconds is None else timezone.now() + datetime.timedelta(seconds=seconds)
    return await ApiToken.objects.acreate(key=key, user=user, expires_at=expires_at)


def client_for(protocol: str, token: str) -> StreamClient | TypedClient:
    if protocol == "stream":
        return StreamClient(application, f"/ws?token={token}", timeout=10)
    return TypedClient(
        application, connection_params={"token": token}, subprotocol=protocol, timeout=10
    )


async def refresh(client: StreamClient | TypedClient, token: str) -> dict[str, Any]:
    """The ``refreshConnection`` answer to a refresh sent over ``client``'s socket."""
    result = await client.execute(REFRESH, {"token": token})
    assert "errors" not in result, result
    answer: dict[str, Any] = result["data"]["refreshConnection"]
    return answer


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_connection_is_closed_with_4403_when_its_token_expires(protocol: str) -> None:
    alice = await make_user("alice")
    token = await token_of(alice, "short", LIFETIME)
    async with client_for(protocol, token.key) as client:
        assert await client.receive_close() == (4403, "expired")
        closed_at = timezone.now()
    assert closed_at >= token.expires_at
    await wait_until(lambda: not get_hub().connections, "the expired connection to be let go")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_refresh_in_band_moves_the_expiry_to_the_new_tokens(protocol: str) -> None:
    alice = await make_user("alice")
    short = await token_of(alice, "short", LIFETIME)
    longer = await token_of(alice, "longer", 2 * LIFETIME)
    async with client_for(protocol, short.key) as client:
        answer = await refresh(client, longer.key)
        assert answer["ok"], answer
        assert answer["error"] is None
        assert datetime.datetime.fromisoformat(answer["expiresAt"]) == longer.expires_at
        assert await client.receive_close() == (4403, "expired")
        closed_at = timezone.now()
    # Closed at the new expiry, not at the old one: the refresh replaced the timer.
    assert closed_at >= longer.expires_at


@pytest.mark.parametrize("protocol", ["stream", "graphql-transport-ws"])
async def test_a_refused_refresh_keeps_the_old_expiry_and_says_why(protocol: str) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    short = await token_of(alice, "short", LIFETIME)
    bobs = await token_of(bob, "bobs", None)
    async with client_for(protocol, short.key) as client:
        started = time.monotonic()
        assert await refresh(client, "no such token") == {
            "ok": False,
            "error": "invalid token",
            "expiresAt": None,
        }
        assert await refresh(client, bobs.key) == {
            "ok": False,
            "error": "a refresh cannot change the connection's user",
            "expiresAt": None,
        }
        assert time.monotonic() - started < LIFETIME, "the refreshes came too late to tell"
        assert await client.receive_close() == (4403, "expired")
    assert timezone.now() >= short.expires_at


async def test_a_refresh_with_a_token_that_never_expires_ends_the_expiry() -> None:
    alice = await make_user("alice")
    short = await token_of(alice, "short", LIFETIME)
    forever = await token_of(alice, "forever", None)
    async with client_for("graphql-transport-ws", short.key) as client:
        assert await refresh(client, forever.key) == {"ok": True, "error": None, "expiresAt": None}
        # The socket is still served past the old expiry.
        await wait_until(lambda: timezone.now() > short.expires_at, "the old expiry to pass")
        result = await client.execute("{ productCount }")
        assert result == {"data": {"productCount": 0}}


async def test_an_expired_token_is_refused_at_connect() -> None:
    alice = await make_user("alice")
    token = await token_of(alice, "gone", -1)
    client = TypedClient(application, connection_params={"token": token.key})
    with pytest.raises(AssertionError, match="the server closed the socket"):
        await client.connect()
    assert client.closed is not None
    assert client.closed[0] == 4403
    await client.disconnect()


async def test_refresh_over_http_says_it_is_for_sockets() -> None:
    response = await AsyncClient().post(
        "/graphql",
        {"query": 'mutation { refreshConnection(params: {token: "x"}) { ok error } }'},
        content_type="application/json",
    )
    assert response.json()["data"]["refreshConnection"] == {
        "ok": False,
        "error": "refreshConnection refreshes a websocket connection: send it over the socket",
    }


def _returns(value: Any) -> Any:
    async def hook(scope: Any, params: Any) -> Any:
        return value

    return hook


async def test_a_hook_that_returns_a_bad_expiry_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        "tests.testapp.auth.bad_expiry", _returns(Authenticated(expires_at="soon")), raising=False
    )
    with (
        override_settings(STRAWBERRY_MODEL_SUBS={"AUTHENTICATE": "tests.testapp.auth.bad_expiry"}),
        pytest.raises(ConfigurationError, match="expires_at='soon': a datetime or None"),
    ):
        await connection_identity({}, {})


async def test_a_naive_expiry_is_read_in_the_current_time_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    naive = datetime.datetime(2030, 1, 2, 3, 4, 5)
    monkeypatch.setattr(
        "tests.testapp.auth.naive", _returns(Authenticated(expires_at=naive)), raising=False
    )
    with override_settings(STRAWBERRY_MODEL_SUBS={"AUTHENTICATE": "tests.testapp.auth.naive"}):
        identity = await connection_identity({}, {})
    assert identity.expires_at == timezone.make_aware(naive)
    assert not identity.user.is_authenticated
