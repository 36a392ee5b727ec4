"""``revoke(user)``: every connection of the user, on both protocols, is closed with 4403; the
other users' connections and subscriptions go on."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from strawberry_model_subs import SyncOnlyError, UsageError, arevoke, revoke
from strawberry_model_subs.hub import get_hub
from strawberry_model_subs.permissions import anonymous
from strawberry_model_subs.testing import StreamClient, TypedClient
from tests.conftest import make_user, wait_until
from tests.testapp.asgi import application
from tests.testapp.models import ApiToken, Category

pytestmark = pytest.mark.django_db(transaction=True)

CATEGORIES = "subscription { categoryChanged { data { name } } }"


@pytest.mark.parametrize("how", ["arevoke", "revoke"])
async def test_revoke_closes_every_connection_of_the_user_and_no_other(how: str) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    alice_token = await ApiToken.objects.acreate(key="alice-token", user=alice)
    bob_token = await ApiToken.objects.acreate(key="bob-token", user=bob)
    async with (
        StreamClient(application, f"/ws?token={alice_token.key}") as alice_stream,
        TypedClient(application, connection_params={"token": alice_token.key}) as alice_typed,
        TypedClient(application, connection_params={"token": bob_token.key}) as bob_typed,
    ):
        assert (await alice_stream.subscribe("categories", "CREATE"))["ok"]
        await alice_typed.subscribe(CATEGORIES, stream="categories")
        op = await bob_typed.subscribe(CATEGORIES, stream="categories")
        assert get_hub().connections.keys() == {str(alice.pk), str(bob.pk)}
        if how == "arevoke":
            await arevoke(alice)
        else:
            await sync_to_async(revoke)(alice)
        assert await alice_stream.receive_close() == (4403, "revoked")
        assert await alice_typed.receive_close() == (4403, "revoked")
        await wait_until(
            lambda: get_hub().connections.keys() == {str(bob.pk)}, "alice's connections to go"
        )
        await Category.objects.acreate(name="after the revocation")
        payload = await bob_typed.receive_next(op)
    assert payload["data"]["categoryChanged"]["data"]["name"] == "after the revocation"
    await wait_until(lambda: not get_hub().state().busy, "the hub to hold nothing")


async def test_revoke_says_what_is_wrong() -> None:
    with pytest.raises(UsageError, match="signed-in user"):
        await arevoke(anonymous())
    alice = await make_user("alice")
    with pytest.raises(SyncOnlyError, match="await arevoke"):
        revoke(alice)
