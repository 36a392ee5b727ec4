"""The per-process fan-out engine: index, union of fields, reference-counted membership."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.layers import get_channel_layer

from strawberry_model_subs.events import Action, Event
from strawberry_model_subs.hub import Fields, Hub, get_hub
from strawberry_model_subs.shared import DIRECT
from tests.conftest import NO_LAYER, group_members, wait_until
from tests.testapp.models import Product


class RecordingSink:
    #: The hub's ``Sink`` protocol asks for the subscriber's user; these sinks belong to no one.
    user: Any = None

    def __init__(self) -> None:
        self.received: list[tuple[str, Fields]] = []

    def push(self, event: Event, fields: Fields) -> None:
        self.received.append((event.pk, fields))


def event(action: Action = Action.UPDATE, pk: str = "5") -> Event:
    data = {"id": int(pk), "name": "x"}
    return Event("products", action, "shop.product", pk, data, json.dumps(data))


def test_dispatch_reaches_each_sink_once_with_the_union_of_its_fields() -> None:
    hub = Hub(layer=NO_LAYER)
    both, by_id, other = RecordingSink(), RecordingSink(), RecordingSink()
    hub.add(both, "products", Action.UPDATE, "5", frozenset({"name"}))
    hub.add(both, "products", Action.ALL_ACTIONS, None, frozenset({"id"}))
    hub.add(by_id, "products", Action.UPDATE, "5", None)
    hub.add(other, "products", Action.DELETE, None, None)

    assert hub.dispatch(event()) == 2
    assert both.received == [("5", frozenset({"id", "name"}))]
    assert by_id.received == [("5", None)]
    assert other.received == []


def test_dispatch_filters_by_action_and_pk() -> None:
    hub = Hub(layer=NO_LAYER)
    sink = RecordingSink()
    hub.add(sink, "products", Action.UPDATE, "5", None)
    assert hub.dispatch(event(pk="6")) == 0
    assert hub.dispatch(event(action=Action.CREATE, pk="5")) == 0
    assert hub.dispatch(event(pk="5")) == 1


def test_a_failing_sink_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        user: Any = None

        def push(self, event: Event, fields: Fields) -> None:
            raise RuntimeError("broken sink")

    hub = Hub(layer=NO_LAYER)
    good = RecordingSink()
    hub.add(Broken(), "products", Action.UPDATE, None, None)
    hub.add(good, "products", Action.UPDATE, None, None)
    hub.dispatch(event())
    assert good.received == [("5", None)]
    assert "a subscriber failed to take an event" in caplog.text


def test_discard_prunes_empty_buckets_and_reports_absence() -> None:
    hub = Hub(layer=NO_LAYER)
    sink = RecordingSink()
    assert hub.add(sink, "products", Action.UPDATE, "5", None) is True
    assert hub.add(sink, "products", Action.UPDATE, "5", frozenset({"id"})) is False
    assert hub.discard(sink, "products", Action.UPDATE, "5") is True
    assert hub.discard(sink, "products", Action.UPDATE, "5") is False
    assert hub.state().subscriptions == {}


async def test_membership_is_reference_counted_per_stream() -> None:
    hub = get_hub()
    await hub.join("products")
    await hub.join("products")
    assert hub.state().references == {"products": 2}
    assert hub.state().channel in await group_members("sms.products")
    await hub.leave("products")
    assert hub.state().channel in await group_members("sms.products")
    assert hub.state().receiving
    channel = hub.state().channel
    await hub.leave("products")
    assert channel is not None
    assert channel not in await group_members("sms.products")
    await wait_until(lambda: not hub.state().receiving, "the hub's receive loop to stop")


async def test_received_events_are_dispatched() -> None:
    hub = get_hub()
    sink = RecordingSink()
    await hub.join("products")
    try:
        hub.add(sink, "products", Action.CREATE, None, None)
        layer = get_channel_layer()
        assert layer is not None
        await layer.group_send(
            "sms.products",
            {
                "type": "sms.event",
                "stream": "products",
                "action": "create",
                "model": "shop.product",
                "pk": "1",
                "data": '{"id": 1}',
            },
        )
        await wait_until(lambda: sink.received == [("1", None)], "the event to be dispatched")
    finally:
        hub.discard(sink, "products", Action.CREATE, None)
        await hub.leave("products")


@pytest.mark.django_db(transaction=True)
async def test_the_hubs_tasks_do_not_keep_the_first_subscribers_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first join starts the receive loop: made in that caller's context, the loop would
    hold the caller's DIRECT target (its connection) for as long as it runs."""
    hub = get_hub()
    seen: list[object] = []
    receive = hub.receive_message

    def recording(message: dict[str, object]) -> None:
        seen.append(DIRECT.get())
        receive(message)

    monkeypatch.setattr(hub, "receive_message", recording)
    sink = RecordingSink()
    sink.user = None
    token = DIRECT.set(object())  # type: ignore[arg-type]
    try:
        await hub.join("products", sink, (Action.ALL_ACTIONS, None, None))
    finally:
        DIRECT.reset(token)
    try:
        await Product.objects.acreate(name="probe")
        await wait_until(lambda: bool(sink.received), "the event to reach the sink")
        assert seen
        assert all(target is None for target in seen)
    finally:
        hub.discard(sink, "products", Action.ALL_ACTIONS, None)
        await hub.leave("products")


def completes_at_once(coroutine: Any) -> bool:
    """Whether ``coroutine`` runs to its end without waiting for anything (it is closed if
    not)."""
    try:
        coroutine.send(None)
    except StopIteration:
        return True
    coroutine.close()
    return False


async def test_a_join_or_leave_that_changes_no_membership_does_not_wait() -> None:
    """A subscribe to a stream the process is already a member of takes the reference at once
    (no task, nothing awaited); so does a leave that is not the last."""
    hub = get_hub()
    await hub.join("products")
    sink = RecordingSink()
    assert completes_at_once(hub.join("products", sink)), "the second join waited"
    assert hub.state().references == {"products": 2}
    assert hub.state().subscriptions == {"products": 1}
    assert completes_at_once(hub.leave("products")), "a leave that is not the last waited"
    hub.discard(sink, "products", Action.ALL_ACTIONS, None)
    assert hub.state().references == {"products": 1}
    await hub.leave("products")
    assert "products" not in hub.state().references
