"""Typed subscriptions on GraphQLWSConsumer: one execution per event and document, shared."""

from __future__ import annotations

import asyncio
import gc
import json
from collections import deque
from typing import Any

import pytest

from strawberry_model_subs.hub import get_hub
from strawberry_model_subs.shared import DirectSink, SharedOperation, shared_operations
from strawberry_model_subs.testing import Subprotocol, TypedClient
from tests.conftest import AnyClient, subs_settings, typed_client, wait_subscribed, wait_until
from tests.testapp.models import Category

pytestmark = pytest.mark.django_db(transaction=True)

BY_NAME = "subscription ($action: Action!) { categoryChanged(action: $action) { data { name } } }"


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(id of the SharedOperation, id of the event) of every shared execution."""
    calls: list[tuple[int, int]] = []
    # Test-only seam: the one place an execution happens, counted to prove it is shared.
    execute = SharedOperation._execute

    def counting(self: SharedOperation, event: Any) -> str:
        calls.append((id(self), id(event)))
        return execute(self, event)

    monkeypatch.setattr(SharedOperation, "_execute", counting)
    return calls


async def connect(
    clients: list[AnyClient], protocol: Subprotocol = "graphql-transport-ws"
) -> TypedClient:
    return await typed_client(clients, subprotocol=protocol)


async def ping(client: TypedClient) -> None:
    """Send a ping and check that the pong is the next message: everything sent before it was
    handled, and answered with nothing."""
    await client.send_text(json.dumps({"type": "ping"}))
    assert await client.receive() == {"type": "pong"}


def direct_sinks(stream: str) -> list[DirectSink]:
    # Test-only seam: the sinks themselves (their operation, outbox and target) are what these
    # tests examine; Hub.state() counts subscriptions but does not hand out the sinks.
    buckets = get_hub().index.get(stream, {})
    return [sink for bucket in buckets.values() for sink in bucket if isinstance(sink, DirectSink)]


async def test_identical_operations_are_executed_once_per_event(
    clients: list[AnyClient], executions: list[tuple[int, int]]
) -> None:
    subscribers = [await connect(clients) for _ in range(5)]
    for number, client in enumerate(subscribers):
        await client.subscribe(BY_NAME, {"action": "CREATE"}, operation_id=f"op{number}")
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
    clients: list[AnyClient], executions: list[tuple[int, int]]
) -> None:
    first, second, third = [await connect(clients) for _ in range(3)]
    await first.subscribe(BY_NAME, {"action": "CREATE"}, operation_id="1")
    await second.subscribe(BY_NAME, {"action": "ALL_ACTIONS"}, operation_id="1")
    await third.subscribe(
        "subscription { c: categoryChanged { action data { id } } }", operation_id="1"
    )
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
    clients: list[AnyClient],
) -> None:
    client = await connect(clients, "graphql-ws")
    await client.subscribe(BY_NAME, {"action": "CREATE"}, operation_id="legacy")
    await wait_subscribed("categories")
    await Category.objects.acreate(name="old client")
    assert await client.receive() == {
        "id": "legacy",
        "type": "data",
        "payload": {"data": {"categoryChanged": {"data": {"name": "old client"}}}},
    }
    assert direct_sinks("categories")


async def test_complete_drops_the_sink_and_its_queued_frames(clients: list[AnyClient]) -> None:
    client = await connect(clients)
    await client.subscribe(BY_NAME, {"action": "CREATE"}, operation_id="gone")
    await wait_subscribed("categories")
    (sink,) = direct_sinks("categories")
    outbox, prefix = sink.target.outbox, sink.target.prefix
    outbox.frames = deque([prefix + "{}}"])  # queued, as if the socket were slow
    await client.complete("gone")
    await ping(client)
    assert not direct_sinks("categories")
    assert "categories" not in get_hub().state().references
    assert not any(frame.startswith(prefix) for frame in outbox.frames)
    assert not sink.target.active
    sink.push(object(), None)  # type: ignore[arg-type]  # a late dispatch: nothing is queued
    assert not outbox.frames


async def test_a_reused_operation_id_gets_each_event_once(clients: list[AnyClient]) -> None:
    client = await connect(clients)
    await client.subscribe(BY_NAME, {"action": "CREATE"}, operation_id="same")
    await wait_subscribed("categories")
    await client.complete("same")
    # Before the first has ended:
    await client.subscribe(BY_NAME, {"action": "CREATE"}, operation_id="same")
    await ping(client)
    await wait_until(lambda: len(direct_sinks("categories")) == 1, "one subscription left")
    await Category.objects.acreate(name="once")
    assert (await client.receive())["payload"]["data"] == {
        "categoryChanged": {"data": {"name": "once"}}
    }
    await ping(client)  # and no second frame before it


@subs_settings(SHARE_TYPED_EXECUTION=False)
async def test_sharing_can_be_turned_off(
    clients: list[AnyClient], executions: list[tuple[int, int]]
) -> None:
    client = await connect(clients)
    await client.subscribe(BY_NAME, {"action": "CREATE"}, operation_id="1")
    await wait_subscribed("categories")
    assert not direct_sinks("categories")
    await Category.objects.acreate(name="per subscriber")
    message = await client.receive()
    assert message["payload"]["data"] == {"categoryChanged": {"data": {"name": "per subscriber"}}}
    assert executions == []


async def test_a_shared_operation_is_forgotten_with_its_last_subscriber(
    clients: list[AnyClient],
) -> None:
    gc.collect()  # operations of earlier tests that nothing holds any more are forgotten
    before = shared_operations()
    first, second = await connect(clients), await connect(clients)
    for client in (first, second):
        await client.subscribe(BY_NAME, {"action": "CREATE"}, operation_id="1")
    await wait_subscribed("categories", 2)
    assert shared_operations() == before + 1
    assert len({sink.operation for sink in direct_sinks("categories")}) == 1
    await first.disconnect()
    clients.remove(first)
    hub = get_hub()
    await wait_until(lambda: hub.state().references.get("categories") == 1, "the first to go")
    gc.collect()
    assert shared_operations() == before + 1  # the second still holds it
    await second.disconnect()
    clients.remove(second)
    await wait_until(lambda: "categories" not in hub.state().references, "the second to go")
    gc.collect()
    assert shared_operations() == before


async def test_a_long_lived_shared_operation_keeps_nothing_per_event(
    clients: list[AnyClient],
) -> None:
    """An operation subscribed for hours executes millions of events: its executor must not
    keep anything of each (graphql-core's per-event executors share a memo of collected fields,
    keyed by lists each execution makes)."""
    client = await connect(clients)
    await client.subscribe(BY_NAME, {"action": "CREATE"}, operation_id="op")
    await wait_subscribed("categories", 1)
    for number in range(30):
        await Category.objects.acreate(name=f"c{number}")
        assert (await client.receive())["payload"]["data"]["categoryChanged"]["data"] == {
            "name": f"c{number}"
        }
    (sink,) = direct_sinks("categories")
    # Test-only seam: the executor's memo is where graphql-core kept every event's fields.
    assert len(sink.operation.executor._relevant_sub_fields) == 0


def operation_tasks() -> list[asyncio.Task[Any]]:
    """The tasks running a graphql-transport-ws operation (Strawberry's ``run_operation``)."""
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "").endswith("run_operation")
    ]


async def test_a_held_subscription_keeps_no_task_and_ends_with_its_connection(
    clients: list[AnyClient],
) -> None:
    """graphql-transport-ws: once the hub holds a shared subscription, its operation's task
    ends (no task, coroutine or executor per subscription) and no ``complete`` is sent; the
    subscription still gets its events, and goes with the connection."""
    client = await connect(clients)
    for number in range(20):
        await client.subscribe(BY_NAME, {"action": "CREATE"}, operation_id=f"op{number}")
    await wait_subscribed("categories", 20)
    await ping(client)  # nothing (no complete) was sent for the 20 operations
    await wait_until(lambda: not operation_tasks(), "the operations' tasks to end")
    await Category.objects.acreate(name="held")
    received = {(await client.receive())["id"] for _ in range(20)}
    assert received == {f"op{number}" for number in range(20)}
    await client.disconnect()
    await wait_until(
        lambda: "categories" not in get_hub().state().references,
        "the held subscriptions to go with the connection",
    )
    assert not direct_sinks("categories")


async def test_a_held_operations_id_is_in_use_until_it_is_completed(
    clients: list[AnyClient],
) -> None:
    """A held operation is still the connection's: its id cannot be reused before the client
    completes it (4409), as for any running operation."""
    client = await connect(clients)
    await client.subscribe(BY_NAME, {"action": "CREATE"}, operation_id="one")
    await wait_subscribed("categories")
    await client.subscribe(BY_NAME, {"action": "CREATE"}, operation_id="one")
    code, reason = await client.receive_close()
    assert (code, reason) == (4409, "Subscriber for one already exists")
