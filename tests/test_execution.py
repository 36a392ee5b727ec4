"""Telling control operations from other requests, with a bounded cache; running one, its
document parsed and validated once."""

from __future__ import annotations

import pytest
import strawberry
from channels.routing import URLRouter
from django.urls import path
from graphql import ValidationRule
from strawberry.extensions import AddValidationRules

from strawberry_model_subs import execution, subscription_type
from strawberry_model_subs.consumers import GraphQLWSConsumer
from strawberry_model_subs.execution import execute_once, operation_kind
from strawberry_model_subs.testing import TypedClient, control_document
from tests.testapp.schema import Query


@pytest.mark.parametrize(
    ("query", "operation_name", "kind"),
    [
        (control_document("products"), None, "control"),
        ("subscription { productChanged { action } }", None, "subscription"),
        ("{ productCount }", None, "other"),
        ('mutation { createProduct(name: "x") { id } }', None, "other"),
        ("{", None, "other"),  # left to Strawberry, which reports the syntax error
        (
            "query A { productCount } subscription B { productChanged { action } }",
            "B",
            "subscription",
        ),
        ("query A { productCount } subscription B { productChanged { action } }", None, "other"),
    ],
    ids=["control", "typed", "query", "mutation", "syntax-error", "named", "ambiguous"],
)
def test_operation_kind(query: str, operation_name: str | None, kind: str) -> None:
    assert operation_kind(query, operation_name) == kind


def test_long_documents_are_not_cached() -> None:
    """A key holds the whole document: a client could otherwise pin megabytes in the cache."""
    # Test-only seam: the cache is private; its size is what this test is about.
    execution._cached_kind.cache_clear()
    long_query = "{ productCount " + " " * 10_000 + "}"
    assert operation_kind(long_query, None) == "other"
    assert execution._cached_kind.cache_info().currsize == 0
    assert operation_kind(control_document("products"), None) == "control"
    assert execution._cached_kind.cache_info().currsize == 1


class CountingRule(ValidationRule):
    """Counts the documents validated."""

    validated = 0

    def enter_document(self, *_: object) -> None:
        CountingRule.validated += 1


@pytest.fixture
def counting_schema() -> strawberry.Schema:
    CountingRule.validated = 0
    return strawberry.Schema(
        query=Query,
        subscription=subscription_type(),
        extensions=[lambda: AddValidationRules([CountingRule])],
    )


CONTROL_VARIABLES = {"operation": "SUBSCRIBE", "action": "UPDATE", "channelId": "not-one"}


async def test_a_control_document_is_parsed_and_validated_once(
    counting_schema: strawberry.Schema,
) -> None:
    document = control_document("products")
    answers = [
        await execute_once(counting_schema, document, CONTROL_VARIABLES, None, {}) for _ in range(3)
    ]
    assert CountingRule.validated == 1
    for answer in answers:
        assert answer.errors is None
        assert answer.data is not None
        assert answer.data["productSubscription"]["ok"] is False
        assert "channelId 'not-one' is malformed" in answer.data["productSubscription"]["error"]


async def test_an_invalid_control_document_answers_its_errors_every_time(
    counting_schema: strawberry.Schema,
) -> None:
    document = control_document("products").replace("ok error", "ok error nothing")
    for _ in range(2):
        answer = await execute_once(counting_schema, document, CONTROL_VARIABLES, None, {})
        assert answer.errors is not None
        (error,) = answer.errors
        assert error.message.startswith("Cannot query field 'nothing' on type")


async def test_other_documents_are_validated_every_time(
    counting_schema: strawberry.Schema,
) -> None:
    for _ in range(2):
        result = await counting_schema.execute("{ __typename }")
        assert result.errors is None
    assert CountingRule.validated == 2


@pytest.mark.django_db(transaction=True)  # Channels closes old connections as a socket ends
async def test_a_typed_subscription_document_is_validated_once_for_all_sockets(
    counting_schema: strawberry.Schema,
) -> None:
    application = URLRouter([path("ws", GraphQLWSConsumer.as_asgi(schema=counting_schema))])
    document = "subscription { productChanged { action data { name } } }"
    for _ in range(3):
        async with TypedClient(application, "/ws") as client:
            await client.subscribe(document, stream="products")
    assert CountingRule.validated == 1
    async with TypedClient(application, "/ws") as client:
        await client.subscribe("subscription { productChanged { action } }", stream="products")
    assert CountingRule.validated == 2
