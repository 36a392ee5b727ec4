"""Plain sync resolvers that use the ORM: on the async view and the socket with
``SyncResolvers``, and a clear error without it."""

from __future__ import annotations

import inspect
import json

import pytest
import strawberry
from django.http import HttpResponse
from django.test import AsyncRequestFactory

from strawberry_model_subs import SyncResolvers, subscription_type
from strawberry_model_subs.consumers import GraphQLWSConsumer
from strawberry_model_subs.testing import TypedClient
from strawberry_model_subs.views import SYNC_RESOLVER_HINT, GraphQLView
from tests.testapp.models import Category

pytestmark = pytest.mark.django_db(transaction=True)


@strawberry.type
class Query:
    @strawberry.field
    def category_names(self) -> list[str]:
        return list(Category.objects.order_by("name").values_list("name", flat=True))

    @strawberry.field
    async def answer(self) -> int:
        return 42


@strawberry.type
class Mutation:
    @strawberry.mutation
    def add_category(self, name: str) -> int:
        return Category.objects.create(name=name).pk


def schema(*extensions: type) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=subscription_type(),
        extensions=list(extensions),
    )


async def post(target: strawberry.Schema, query: str) -> tuple[int, dict]:
    request = AsyncRequestFactory().post(
        "/graphql", json.dumps({"query": query}), content_type="application/json"
    )
    # django-stubs types what as_view() makes as returning a response; an async view's returns an
    # awaitable of one.
    answer: object = GraphQLView.as_view(schema=target)(request)
    assert inspect.isawaitable(answer)
    response = await answer
    assert isinstance(response, HttpResponse)
    return response.status_code, json.loads(response.content)


async def test_sync_resolvers_run_on_the_async_view() -> None:
    target = schema(SyncResolvers)
    status, body = await post(target, 'mutation { addCategory(name: "Tea") }')
    assert status == 200, body
    assert isinstance(body["data"]["addCategory"], int)
    status, body = await post(target, "{ categoryNames answer }")
    assert body == {"data": {"categoryNames": ["Tea"], "answer": 42}}


async def test_without_the_extension_the_error_says_what_to_do() -> None:
    status, body = await post(schema(), "{ categoryNames }")
    assert status == 200
    (error,) = body["errors"]
    assert error["message"] == f"{SYNC_RESOLVER_HINT}."
    assert error["path"] == ["categoryNames"]


async def test_sync_resolvers_run_over_the_socket() -> None:
    application = GraphQLWSConsumer.as_asgi(schema=schema(SyncResolvers))
    async with TypedClient(application, "/ws") as client:
        op = await client.subscribe('mutation { addCategory(name: "Coffee") }')
        assert isinstance((await client.receive_next(op))["data"]["addCategory"], int)
        op = await client.subscribe("{ categoryNames }")
        assert (await client.receive_next(op))["data"] == {"categoryNames": ["Coffee"]}


def test_a_sync_execution_is_left_alone() -> None:
    """``execute_sync`` (Strawberry's sync view, scripts) runs the resolvers where it is."""
    result = schema(SyncResolvers).execute_sync("{ categoryNames }")
    assert result.errors is None
    assert result.data == {"categoryNames": []}
