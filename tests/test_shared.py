"""Typed subscriptions on GraphQLWSConsumer: one execution per event and document, shared."""

from __future__ import annotations

import gc
import json
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import pytest

from strawberry_model_subs import shared
from strawberry_model_subs.hub import get_hub
from strawberry_model_subs.shared import DirectSink, SharedOperation
from tests.conftest import wait_until
from tests.testapp.models import Category

from .test_auth import TransportWS, subs_settings, wait_subscribed

pytestmark = pytest.mark.django_db(transaction=True)

BY_NAME = "subscription ($action: Action!) { categoryChanged(action: $action) { data { name } } }"


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(id of the SharedOperation, id of the event) of every shared execution."""
    calls: list[tuple[int, int]] = []
    execute = SharedOperation._execute

    def counting(self: SharedOperation, event: Any) -> str:
        calls.append((id(self), id(event)))
        return execute(self, event)

    monkeypatch.setattr(SharedOperation, "_execute", counting)
    return calls


@pytest.fixture
async def clients() -> AsyncIterator[list[TransportWS]]:
    opened: list[TransportWS] = []
    yield opened
    for client in opened:
        await client.close()


async def connect(clients: list[TransportWS], protocol: str = "graphql-transport-ws") -> Any:
    client = await TransportWS(protocol=protocol).open_acked()
    clients.append(client)
    return client


def direct_sinks(stream: str) -> list[DirectSink]:
    buckets = get_hub().index.get(stream, {})
    return [sink for bucket in buckets.values() for sink in bucket if isinstance(sink, DirectSink)]


async def test_identical_operations_are_executed_once_per_event(
    clients: list[TransportWS], executions: list[tuple[int, int]]
) -> None:
    subscribers = [await connect(clients) for _ in range(5)]
    for number, client in enumerate(subscribers):
        await client.subscribe(f"op{number}", BY_NAME, {"action": "CREATE"})
    await wait_subscribed("categories", 5)
    await Category.objects.acreate(name="shared")
    for number, client in enumerate(subscribers):
        message = await client.receive()
        assert message == {
            "id": f"op{number}",
            "type": "next",
            "payload": {"data": {"categoryChanged": {"data": {"name": "shared"}}}},
        }
    assert len(executions) == 1, executions
    assert len({sink.operation for sink in direct_sinks("categories")}) == 1


async def test_other_variables_or_documents_are_executed_apart(
    clients: list[TransportWS], executions: list[tuple[int, int]]
) -> None:
    first, second, third = [await connect(clients) for _ in range(3)]
    await first.subscribe("1", BY_NAME, {"action": "CREATE"})
    await second.subscribe("1", BY_NAME, {"action": "ALL_ACTIONS"})
    await third.subscribe("1", "subscription { c: categoryChanged { action data { id } } }")
    await wait_subscribed("categories", 3)
    category = await Category.objects.acreate(name="apart")
    answers = [(await client.receive())["payload"]["data"] for client in (first, second, third)]
    assert answers == [
        {"categoryChanged": {"data": {"name": "apart"}}},
        {"categoryChanged": {"data": {"name": "apart"}}},
        {"c": {"action": "CREATE", "data": {"id": category.pk}}},
    ]
    assert len(executions) == 3
    assert len({operation for operation, _ in executions}) == 3


async def test_graphql_ws_gets_data_messages_from_the_shared_execution(
    clients: list[TransportWS],
) -> None:
    client = await connect(clients, "graphql-ws")
    await client.subscribe("legacy", BY_NAME, {"action": "CREATE"})
    await wait_subscribed("categories")
    await Category.objects.acreate(name="old client")
    assert await client.receive() == {
        "id": "legacy",
        "type": "data",
        "payload": {"data": {"categoryChanged": {"data": {"name": "old client"}}}},
    }
    assert direct_sinks("categories")


async def test_complete_drops_the_sink_and_its_queued_frames(clients: list[TransportWS]) -> None:
    client = await connect(clients)
    await client.subscribe("gone", BY_NAME, {"action": "CREATE"})
    await wait_subscribed("categories")
    (sink,) = direct_sinks("categories")
    outbox, prefix = sink.target.outbox, sink.target.prefix
    outbox.frames = deque([prefix + "{}}"])  # queued, as if the socket were slow
    await client.ws.send_json_to({"id": "gone", "type": "complete"})
    await client.ws.send_json_to({"type": "ping"})
    assert await client.receive() == {"type": "pong"}
    hub = get_hub()
    assert not direct_sinks("categories")
    assert "categories" not in hub.refs
    assert not any(frame.startswith(prefix) for frame in outbox.frames)
    assert not sink.target.active
    sink.push(object(), None)  # type: ignore[arg-type]  # a late dispatch: nothing is queued
    assert not outbox.frames


async def test_a_reused_operation_id_gets_each_event_once(clients: list[TransportWS]) -> None:
    client = await connect(clients)
    await client.subscribe("same", BY_NAME, {"action": "CREATE"})
    await wait_subscribed("categories")
    await client.ws.send_json_to({"id": "same", "type": "complete"})
    await client.subscribe("same", BY_NAME, {"action": "CREATE"})  # before the first has ended
    await client.ws.send_json_to({"type": "ping"})
    assert await client.receive() == {"type": "pong"}
    await wait_until(lambda: len(direct_sinks("categories")) == 1, "one subscription left")
    await Category.objects.acreate(name="once")
    assert (await client.receive())["payload"]["data"] == {
        "categoryChanged": {"data": {"name": "once"}}
    }
    await client.ws.send_json_to({"type": "ping"})
    assert await client.receive() == {"type": "pong"}  # and no second frame before it


@subs_settings(SHARE_TYPED_EXECUTION=False)
async def test_sharing_can_be_turned_off(
    clients: list[TransportWS], executions: list[tuple[int, int]]
) -> None:
    client = await connect(clients)
    await client.subscribe("1", BY_NAME, {"action": "CREATE"})
    await wait_subscribed("categories")
    assert not direct_sinks("categories")
    await Category.objects.acreate(name="per subscriber")
    message = await client.receive()
    assert message["payload"]["data"] == {"categoryChanged": {"data": {"name": "per subscriber"}}}
    assert executions == []


async def test_a_shared_operation_is_forgotten_with_its_last_subscriber(
    clients: list[TransportWS],
) -> None:
    first, second = await connect(clients), await connect(clients)
    for client in (first, second):
        await client.subscribe("1", BY_NAME, {"action": "CREATE"})
    await wait_subscribed("categories", 2)
    key = (BY_NAME, None, json.dumps({"action": "CREATE"}))
    operation = shared._shared[key]
    assert {sink.operation for sink in direct_sinks("categories")} == {operation}
    del operation
    await first.close()
    clients.remove(first)
    await wait_until(lambda: get_hub().refs.get("categories") == 1, "the first to be dropped")
    assert key in shared._shared  # the second still holds it
    await second.close()
    clients.remove(second)
    await wait_until(lambda: "categories" not in get_hub().refs, "the second to be dropped")
    gc.collect()
    assert key not in shared._shared
