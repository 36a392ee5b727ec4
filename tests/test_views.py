"""GraphQLView: GraphiQL's subscription endpoint and plain-HTTP rules."""

from __future__ import annotations

import pytest
from django.test import AsyncClient


@pytest.mark.django_db
async def test_graphiql_subscribes_at_the_views_own_path_by_default(
    async_client: AsyncClient,
) -> None:
    response = await async_client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert b"const subscriptionUrl = httpUrlToWebSockeUrl(fetchURL);" in response.content


@pytest.mark.django_db
async def test_subscriptions_path_points_graphiql_at_the_consumer_route(
    async_client: AsyncClient,
) -> None:
    response = await async_client.get("/graphiql-ws", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert (
        b'const subscriptionUrl = httpUrlToWebSockeUrl(new URL("/ws", fetchURL).href);'
        in response.content
    )


@pytest.mark.django_db
async def test_control_operation_over_get_is_refused(async_client: AsyncClient) -> None:
    query = (
        "subscription { productSubscription(operation: SUBSCRIBE, action: CREATE, "
        'channelId: "specific.x!y") { ok } }'
    )
    response = await async_client.get("/graphql", {"query": query})
    assert response.status_code == 400
    assert b"plain HTTP POST runs only the control operations" in response.content


@pytest.mark.django_db
async def test_a_typed_subscription_over_http_is_a_graphql_error_in_json(
    async_client: AsyncClient,
) -> None:
    """GraphiQL may POST a subscription; it shows the answer only when it is GraphQL JSON."""
    response = await async_client.post(
        "/graphql",
        {"query": "subscription { productChanged { action } }"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response["content-type"] == "application/json"
    (error,) = response.json()["errors"]
    assert "run other subscriptions over the websocket" in error["message"]
    assert response.json()["data"] is None


async def test_a_body_that_is_not_json_is_a_graphql_error_in_json(
    async_client: AsyncClient,
) -> None:
    response = await async_client.post("/graphql", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "data": None,
        "errors": [{"message": "Unable to parse request body as JSON"}],
    }
