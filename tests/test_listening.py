"""A typed socket's layer channel: received from only once something reads its name (Strawberry's
``listen_to_channel``, a consumer's own groups), so that idle typed sockets cost the layer
nothing, and what listens still gets its messages."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest
import strawberry
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from django.urls import path

from strawberry_model_subs.consumers import GraphQLWSConsumer
from strawberry_model_subs.layers import is_process_local
from strawberry_model_subs.testing import TypedClient


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def pings(self, info: strawberry.Info) -> AsyncGenerator[str, None]:
        consumer = info.context["request"]
        async with consumer.listen_to_channel("ping.message", groups=["pings"]) as messages:
            yield "listening"
            async for message in messages:
                yield message["text"]

    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[int, None]:
        yield 1


schema = strawberry.Schema(query=Query, subscription=Subscription)
application = URLRouter([path("ws", GraphQLWSConsumer.as_asgi(schema=schema))])

# Channels closes the thread's old database connections when a socket ends.
pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_subscription_that_listens_to_a_group_gets_its_messages() -> None:
    async with TypedClient(application, "/ws") as client:
        op = await client.subscribe("subscription { pings }")
        assert (await client.receive_next(op))["data"] == {"pings": "listening"}
        layer = get_channel_layer()
        await layer.group_send("pings", {"type": "ping.message", "text": "hello"})
        assert (await client.receive_next(op))["data"] == {"pings": "hello"}
        await layer.group_send("pings", {"type": "ping.message", "text": "again"})
        assert (await client.receive_next(op))["data"] == {"pings": "again"}


async def test_typed_sockets_that_never_listen_leave_the_in_memory_layer_untouched() -> None:
    layer = get_channel_layer()
    if not is_process_local(layer):
        pytest.skip("the in-memory layer's queues: this run uses a Redis layer")
    async with TypedClient(application, "/ws") as first:
        op = await first.subscribe("subscription { ticks }")
        await first.receive_next(op)
        queues = set(layer.channels)
        clients = [TypedClient(application, "/ws") for _ in range(5)]
        for client in clients:
            await client.connect()
            op = await client.subscribe("subscription { ticks }")
            assert (await client.receive_next(op))["data"] == {"ticks": 1}
        # Listening would have made each socket's queue, and scanned every queue on each receive.
        assert set(layer.channels) == queues
        for client in clients:
            await client.disconnect()
