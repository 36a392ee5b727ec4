"""The snippets of docs/security.md, in the docs project: the token hook, the two websocket
routes, the permissions of the orders stream, CSRF and the view's refusals."""

import asyncio
import datetime
import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone
from project.asgi import application
from project.auth import TOKEN_LIFETIME
from rest_framework.authtoken.models import Token
from shop.models import Order
from strawberry_model_subs.testing import StreamClient, TypedClient

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
ORDERS = "subscription { orderChanged { action data { id status owner } } }"


async def user_with_token(name, *, staff=False):
    user = await User.objects.acreate(username=name, is_staff=staff)
    token = await Token.objects.acreate(user=user)
    return user, token.key


def session_cookie(user):
    client = Client()
    client.force_login(user)
    return [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


async def test_a_token_client_sees_its_own_orders_only():
    alice, alice_key = await user_with_token("alice")
    bob, _ = await user_with_token("bob")
    async with TypedClient(application, "/ws/token", connection_params={"token": alice_key}) as c:
        op = await c.subscribe(ORDERS, stream="orders")
        await Order.objects.acreate(owner=bob, status="bob's")
        mine = await Order.objects.acreate(owner=alice, status="mine")
        result = await c.receive_next(op)
        assert result["data"]["orderChanged"]["data"] == {
            "id": mine.pk,
            "status": "mine",
            "owner": str(alice.pk),  # an ID: a string on typed subscriptions
        }
        denied = await c.subscribe("subscription { orderChanged { data { total } } }")
        errors = await c.receive_error(denied)
        assert "permission denied for field(s) total of stream 'orders'" in errors[0]["message"]


async def test_staff_sees_every_order_and_field():
    alice, _ = await user_with_token("alice")
    _, staff_key = await user_with_token("staff", staff=True)
    query = "subscription { orderChanged { data { status total } } }"
    async with TypedClient(application, "/ws/token", connection_params={"token": staff_key}) as c:
        op = await c.subscribe(query, stream="orders")
        await Order.objects.acreate(owner=alice, status="new", total="9.50")
        result = await c.receive_next(op)
        assert result["data"]["orderChanged"]["data"] == {"status": "new", "total": "9.50"}


async def test_anonymous_subscribers_are_refused_by_is_authenticated():
    async with StreamClient(application, "/ws", headers=ORIGIN) as client:
        result = await client.subscribe("orders")
        assert not result["ok"]
        assert result["error"].startswith("permission denied for stream 'orders'")


async def test_the_session_route_takes_the_logged_in_user():
    alice, _ = await user_with_token("alice")
    headers = ORIGIN + await sync_to_async(session_cookie)(alice)
    async with StreamClient(application, "/ws", headers=headers) as client:
        assert (await client.subscribe("orders", fields=["id", "status"]))["ok"]
        order = await Order.objects.acreate(owner=alice)
        frame = await client.receive_event()
        assert frame["payload"]["data"] == {"id": order.pk, "status": "new"}


async def test_the_session_route_refuses_a_handshake_without_origin():
    client = StreamClient(application, "/ws")
    with pytest.raises(AssertionError, match="refused"):
        await client.connect()


async def test_the_token_route_refuses_without_a_token_per_protocol():
    stream = StreamClient(application, "/ws/token")
    with pytest.raises(AssertionError, match="the server closed the socket"):
        await stream.connect()
    assert stream.closed == (4403, "")
    await stream.disconnect()

    typed = TypedClient(application, "/ws/token")
    with pytest.raises(AssertionError, match="the server closed the socket"):
        await typed.connect()
    assert typed.closed == (4403, "Forbidden")
    await typed.disconnect()

    legacy = TypedClient(application, "/ws/token", subprotocol="graphql-ws")
    await legacy.handshake()
    await legacy.send_text(json.dumps({"type": "connection_init", "payload": {"token": "bad"}}))
    answer = await legacy.receive()
    assert answer == {"type": "connection_error", "payload": {"reason": "invalid token"}}
    assert await legacy.receive_close() == (1011, "")
    await legacy.disconnect()


async def test_a_stream_socket_passes_its_token_in_the_query_string():
    alice, key = await user_with_token("alice")
    async with StreamClient(application, f"/ws/token?token={key}") as client:
        assert (await client.subscribe("orders", fields=["status"]))["ok"]
        await Order.objects.acreate(owner=alice, status="paid")
        assert (await client.receive_event())["payload"]["data"] == {"status": "paid"}


def test_csrf_a_script_post_without_the_token_is_refused():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/graphql", {"query": "{ hello }"}, content_type="application/json")
    assert response.status_code == 403  # with DEBUG on, the page says "CSRF cookie not set."


def test_csrf_the_cookie_of_a_get_lets_the_post_through():
    client = Client(enforce_csrf_checks=True)
    client.get("/graphql", {"query": "{ hello }"})
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/graphql",
        {"query": "{ hello }"},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.json() == {"data": {"hello": "world"}}


@override_settings(ROOT_URLCONF="project.urls_csrf_exempt")
def test_csrf_exempt_view_takes_a_plain_post():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/graphql", {"query": "{ hello }"}, content_type="application/json")
    assert response.json() == {"data": {"hello": "world"}}


@override_settings(ROOT_URLCONF="project.urls_csrf_exempt")
def test_the_view_answers_its_refusals_with_a_graphql_error_in_json():
    client = Client()
    response = client.post(
        "/graphql",
        {"query": "subscription { productChanged { action } }"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "run other subscriptions over the websocket" in response.json()["errors"][0]["message"]
    response = client.post("/graphql", "{ hello", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["data"] is None
    assert response.json()["errors"][0]["message"]


@override_settings(ROOT_URLCONF="project.urls_example_client")
def test_the_example_client_page_is_for_staff():
    client = Client()
    assert client.get("/subscriptions/").status_code == 302  # to the admin's login
    client.force_login(User.objects.create(username="staff", is_staff=True))
    page = client.get("/subscriptions/")
    assert page.status_code == 200
    assert b"Shop subscriptions" in page.content
    assert b"renameProduct" in page.content


async def test_a_logout_closes_the_users_sockets_with_4403():
    import shop.signals  # noqa: F401  (the import ShopConfig.ready makes)

    alice = await User.objects.acreate(username="alice")
    client = Client()
    await sync_to_async(client.force_login)(alice)
    cookie = [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    async with StreamClient(application, "/ws", headers=ORIGIN + cookie) as socket:
        await sync_to_async(client.logout)()
        assert await socket.receive_close() == (4403, "revoked")


EXPIRING = {"AUTHENTICATE": "project.auth.authenticate_expiring"}
REFRESH = "mutation($t: String!) { refreshConnection(params: {token: $t}) { ok error expiresAt } }"


async def token_expiring_in(user, seconds):
    """A token of ``user`` made so long ago that it has ``seconds`` left to live."""
    token, _ = await Token.objects.aget_or_create(user=user)
    made = timezone.now() - TOKEN_LIFETIME + datetime.timedelta(seconds=seconds)
    await Token.objects.filter(pk=token.pk).aupdate(created=made)
    return token.key, made + TOKEN_LIFETIME


@override_settings(STRAWBERRY_MODEL_SUBS=EXPIRING)
async def test_a_connection_ends_with_its_token():
    alice = await User.objects.acreate(username="alice")
    key, expires_at = await token_expiring_in(alice, 1.5)
    async with TypedClient(application, "/ws/token", connection_params={"token": key}) as c:
        assert await c.receive_close(timeout=10) == (4403, "expired")
    assert timezone.now() >= expires_at


@override_settings(STRAWBERRY_MODEL_SUBS=EXPIRING)
async def test_a_refresh_over_the_socket_keeps_the_connection():
    alice = await User.objects.acreate(username="alice")
    key, _ = await token_expiring_in(alice, 1.5)
    async with StreamClient(application, f"/ws/token?token={key}") as c:
        await Token.objects.filter(key=key).adelete()
        new = await Token.objects.acreate(user=alice)
        answer = (await c.execute(REFRESH, {"t": new.key}))["data"]["refreshConnection"]
        assert answer["ok"], answer
        assert datetime.datetime.fromisoformat(answer["expiresAt"]) > timezone.now()
        wrong = (await c.execute(REFRESH, {"t": "wrong"}))["data"]["refreshConnection"]
        assert wrong == {"ok": False, "error": "invalid token", "expiresAt": None}
        assert (await c.subscribe("orders", fields=["status"]))["ok"]
        # Still served after the first token's expiry.
        await wait_past(new.created + datetime.timedelta(seconds=1.5))
        await Order.objects.acreate(owner=alice, status="after")
        assert (await c.receive_event())["payload"]["data"] == {"status": "after"}


async def wait_past(moment):
    """Return once the clock has passed ``moment`` (at most 5 s from now)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while timezone.now() <= moment:
        assert loop.time() < deadline, f"the clock did not pass {moment}"
        await asyncio.sleep(0.05)
