"""``strawberry_model_subs.testing``'s typed-subscription client, as a project's tests use it
(the stream client is used throughout the suite)."""

from __future__ import annotations

import pytest

from strawberry_model_subs.hub import get_hub
from strawberry_model_subs.testing import TypedClient
from tests.conftest import wait_until
from tests.testapp.asgi import application
from tests.testapp.models import Category

pytestmark = pytest.mark.django_db(transaction=True)

CATEGORIES = "subscription { categoryChanged { action data { id name } } }"


async def test_typed_client_receives_each_operations_events_and_completes() -> None:
    async with TypedClient(application, "/ws") as client:
        first = await client.subscribe(CATEGORIES, stream="categories")
        second = await client.subscribe(
            "subscription Only($id: ID) { categoryChanged(id: $id) { action } }",
            {"id": "999999"},
            stream="categories",
        )
        assert first != second
        category = await Category.objects.acreate(name="tea")
        result = await client.receive_next(first)
        assert result["data"]["categoryChanged"] == {
            "action": "CREATE",
            "data": {"id": category.pk, "name": "tea"},
        }
        await client.complete(first)
        await client.complete(second)
        await wait_until(lambda: get_hub().refs.get("categories", 0) == 0, "no subscription")
        await Category.objects.acreate(name="after")
        await client.assert_no_message()


async def test_typed_client_reports_a_refused_operation() -> None:
    async with TypedClient(application, "/ws") as client:
        op = await client.subscribe('subscription { categoryChanged(id: "abc") { action } }')
        errors = await client.receive_error(op)
        assert "not a valid primary key" in errors[0]["message"]
        other = await client.subscribe('subscription { categoryChanged(id: "abc") { action } }')
        with pytest.raises(AssertionError, match="failed"):
            await client.receive_next(other)


async def test_subscribe_with_a_stream_fails_clearly_when_nothing_subscribes() -> None:
    async with TypedClient(application, "/ws", timeout=0.5) as client:
        with pytest.raises(AssertionError, match="did not subscribe to 'categories'"):
            await client.subscribe(
                "subscription { productChanged { action } }", stream="categories"
            )
