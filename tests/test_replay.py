"""Typed subscriptions resumed from a cursor: what was missed, in order, then the live events,
with no gap and no duplicate; the permission rules apply to what is replayed; a cursor the
history cannot resume is the protocol's error, with its code."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
import strawberry
from asgiref.sync import sync_to_async
from django.test import override_settings

from strawberry_model_subs import (
    NotRegisteredError,
    SyncOnlyError,
    acurrent_cursor,
    current_cursor,
    cursor_field,
    replay,
)
from strawberry_model_subs.cursors import Cursor, parse_cursor
from strawberry_model_subs.publisher import flush_events
from strawberry_model_subs.shared import SharedOperation, shared_operations
from strawberry_model_subs.testing import StreamClient, TypedClient
from tests.conftest import make_user, wait_until
from tests.testapp.asgi import application
from tests.testapp.models import ApiToken, Category, Note

pytestmark = pytest.mark.django_db(transaction=True)

CATEGORIES = """
subscription ($after: String) {
  categoryChanged(after: $after) { action cursor data { name } }
}
"""


async def next_change(client: TypedClient, op: str) -> dict[str, Any]:
    payload = await client.receive_next(op)
    assert not payload.get("errors"), payload
    change: dict[str, Any] = payload["data"]["categoryChanged"]
    return change


@pytest.fixture(params=[True, False], ids=["shared-execution", "per-subscriber"])
def sharing(request: pytest.FixtureRequest) -> Any:
    with override_settings(STRAWBERRY_MODEL_SUBS={"SHARE_TYPED_EXECUTION": request.param}):
        yield request.param


async def test_a_resumed_subscription_gets_what_it_missed_then_live_events(sharing: bool) -> None:
    async with TypedClient(application) as client:
        op = await client.subscribe(CATEGORIES, stream="categories")
        await Category.objects.acreate(name="seen")
        seen = await next_change(client, op)
    assert seen["data"]["name"] == "seen"
    missed = [f"missed-{i}" for i in range(5)]
    for name in missed:
        await Category.objects.acreate(name=name)
    assert await sync_to_async(flush_events)(5.0)
    async with TypedClient(application) as client:
        op = await client.subscribe(CATEGORIES, {"after": seen["cursor"]}, stream="categories")
        replayed = [await next_change(client, op) for _ in missed]
        await Category.objects.acreate(name="live")
        live = await next_change(client, op)
        await client.assert_no_message()
    assert [c["data"]["name"] for c in replayed] == missed
    assert live["data"]["name"] == "live"
    offsets = [parse_cursor(c["cursor"]).offset for c in [seen, *replayed, live]]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == len(offsets)


async def test_the_cursor_of_the_newest_event_resumes_with_no_replay() -> None:
    async with TypedClient(application) as client:
        op = await client.subscribe(CATEGORIES, stream="categories")
        await Category.objects.acreate(name="last")
        last = await next_change(client, op)
    async with TypedClient(application) as client:
        op = await client.subscribe(CATEGORIES, {"after": last["cursor"]}, stream="categories")
        await client.assert_no_message()
        await Category.objects.acreate(name="next")
        assert (await next_change(client, op))["data"]["name"] == "next"


async def test_an_empty_cursor_means_from_now_on() -> None:
    await Category.objects.acreate(name="before")
    assert await sync_to_async(flush_events)(5.0)
    async with TypedClient(application) as client:
        op = await client.subscribe(CATEGORIES, {"after": ""}, stream="categories")
        await Category.objects.acreate(name="after")
        change = await next_change(client, op)
    assert change["data"]["name"] == "after"
    assert parse_cursor(change["cursor"])


@pytest.mark.parametrize(
    ("after", "code"),
    [
        ("not a cursor", "CURSOR_INVALID"),
        (Cursor("1000000000000-00000000", (1, 0)).encode(), "CURSOR_EXPIRED"),
    ],
)
async def test_a_cursor_it_cannot_resume_is_the_protocols_error(after: str, code: str) -> None:
    async with TypedClient(application) as client:
        op = await client.subscribe(CATEGORIES, {"after": after})
        (error,) = await client.receive_error(op)
        await Category.objects.acreate(name="not sent")
        await client.assert_no_message()
    assert error["extensions"] == {"code": code}
    assert error["message"].startswith(f"{code}: ")


@override_settings(STRAWBERRY_MODEL_SUBS={"HISTORY_SIZE": 2})
async def test_a_cursor_older_than_the_history_is_expired() -> None:
    async with TypedClient(application) as client:
        op = await client.subscribe(CATEGORIES, stream="categories")
        await Category.objects.acreate(name="old")
        old = await next_change(client, op)
        for name in ("a", "b", "c"):
            await Category.objects.acreate(name=name)
            await next_change(client, op)
    async with TypedClient(application) as client:
        op = await client.subscribe(CATEGORIES, {"after": old["cursor"]})
        (error,) = await client.receive_error(op)
    assert error["extensions"] == {"code": "CURSOR_EXPIRED"}


NOTES = """
subscription ($after: String) { noteFeedChanged(after: $after) { cursor data { text } } }
"""


async def test_a_replay_gives_each_user_only_what_they_may_see() -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    token = await ApiToken.objects.acreate(key="bob-token", user=bob)
    async with TypedClient(application) as client:
        op = await client.subscribe(NOTES, stream="note-feed")
        await Note.objects.acreate(owner=alice, text="start", shared=True)
        start = (await client.receive_next(op))["data"]["noteFeedChanged"]["cursor"]
    await Note.objects.acreate(owner=alice, text="alice's own", shared=False)
    await Note.objects.acreate(owner=bob, text="bob's own", shared=False)
    await Note.objects.acreate(owner=bob, text="for everyone", shared=True)
    assert await sync_to_async(flush_events)(5.0)

    async def replayed(live: str, **client_options: Any) -> list[str]:
        async with TypedClient(application, **client_options) as client:
            op = await client.subscribe(NOTES, {"after": start}, stream="note-feed")
            await Note.objects.acreate(owner=alice, text=live, shared=True)
            texts: list[str] = []
            while not texts or texts[-1] != live:
                payload = await client.receive_next(op)
                texts.append(payload["data"]["noteFeedChanged"]["data"]["text"])
            return texts

    # The event filter (shared notes, and one's own) holds for replayed events as for live ones.
    assert await replayed("live-1") == ["for everyone", "live-1"]
    assert await replayed("live-2", connection_params={"token": token.key}) == [
        "bob's own",
        "for everyone",
        "live-1",
        "live-2",
    ]


async def test_a_cursor_read_before_a_query_misses_nothing_committed_after_it() -> None:
    cursor = await acurrent_cursor("categories")
    assert await sync_to_async(current_cursor)("categories") == cursor
    await Category.objects.acreate(name="committed between the query and the subscription")
    assert await sync_to_async(flush_events)(5.0)
    async with TypedClient(application) as client:
        op = await client.subscribe(CATEGORIES, {"after": cursor}, stream="categories")
        change = await next_change(client, op)
    assert change["data"]["name"] == "committed between the query and the subscription"


async def test_cursor_field_gives_a_query_the_cursor() -> None:
    @strawberry.type
    class Query:
        categories_cursor: str = cursor_field("categories")

    result = await strawberry.Schema(query=Query).execute("{ categoriesCursor }")
    assert result.errors is None
    assert result.data is not None
    assert parse_cursor(result.data["categoriesCursor"]) == parse_cursor(
        await acurrent_cursor("categories")
    )


async def test_the_cursor_functions_say_what_is_wrong() -> None:
    with pytest.raises(NotRegisteredError, match="no serializer is registered for the stream"):
        await acurrent_cursor("nothing")
    with pytest.raises(SyncOnlyError, match="await acurrent_cursor"):
        current_cursor("categories")


# -- the stream protocol ----------------------------------------------------------------------

RESUME = (
    "subscription ($channelId: String!, $action: Action!, $after: String) { "
    "categorySubscription(operation: SUBSCRIBE, action: $action, channelId: $channelId, "
    "after: $after) { ok error } }"
)


async def subscribe_from(client: StreamClient, after: str | None, action: str = "ALL_ACTIONS"):
    response = await client.execute(
        RESUME, {"channelId": client.channel_id, "action": action, "after": after}
    )
    return response["data"]["categorySubscription"]


async def test_a_stream_socket_resumes_on_a_new_socket_from_its_last_cursor() -> None:
    async with StreamClient(application) as client:
        assert (await subscribe_from(client, ""))["ok"]
        await client.receive_matching(lambda f: f.get("operation") == "subscribe")
        await Category.objects.acreate(name="seen")
        frame = await client.receive_event()
    assert list(frame) == ["stream", "payload", "cursor"]
    missed = [f"missed-{i}" for i in range(5)]
    for name in missed:
        await Category.objects.acreate(name=name)
    assert await sync_to_async(flush_events)(5.0)
    async with StreamClient(application) as client:
        assert (await subscribe_from(client, frame["cursor"]))["ok"]
        ack = await client.receive_matching(lambda f: "operation" in f or "stream" in f)
        assert ack["operation"] == "subscribe", "the ack comes before the missed events"
        replayed = [await client.receive_event() for _ in missed]
        await Category.objects.acreate(name="live")
        live = await client.receive_event()
        await client.assert_no_frame()
    assert [f["payload"]["data"]["name"] for f in replayed] == missed
    assert live["payload"]["data"]["name"] == "live"
    offsets = [parse_cursor(f["cursor"]).offset for f in [frame, *replayed, live]]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == len(offsets)


async def test_frames_of_a_subscription_without_after_carry_no_cursor() -> None:
    async with StreamClient(application) as client:
        assert (await client.subscribe("categories", "CREATE"))["ok"]
        await Category.objects.acreate(name="plain")
        frame = await client.receive_event()
    assert list(frame) == ["stream", "payload"]


async def test_overlapping_subscriptions_resumed_send_each_event_once_in_order() -> None:
    async with StreamClient(application) as client:
        assert (await subscribe_from(client, ""))["ok"]
        await client.receive_matching(lambda f: f.get("operation") == "subscribe")
        await Category.objects.acreate(name="seen")
        seen = await client.receive_event()
    for name in ("one", "two"):
        await Category.objects.acreate(name=name)
    assert await sync_to_async(flush_events)(5.0)
    async with StreamClient(application) as client:
        assert (await client.subscribe("categories", "CREATE"))["ok"]
        assert (await subscribe_from(client, seen["cursor"]))["ok"]
        await client.receive_matching(lambda f: f.get("action") == "all_actions")  # its ack
        await Category.objects.acreate(name="three")
        names = [(await client.receive_event())["payload"]["data"]["name"] for _ in range(3)]
        await client.assert_no_frame()
    assert names == ["one", "two", "three"]


@pytest.mark.parametrize(
    ("after", "code"),
    [
        ("garbage", "CURSOR_INVALID"),
        (Cursor("1000000000000-00000000", (1, 0)).encode(), "CURSOR_EXPIRED"),
    ],
)
async def test_a_stream_cursor_it_cannot_resume_is_ok_false(after: str, code: str) -> None:
    async with StreamClient(application) as client:
        result = await subscribe_from(client, after)
        await Category.objects.acreate(name="not sent")
        await client.assert_no_frame()
    assert result["ok"] is False
    assert result["error"].startswith(f"{code}: ")


async def test_subscribers_resumed_from_different_cursors_share_one_execution() -> None:
    """The resume cursor says where a subscription starts, not what its events hold."""
    async with (
        TypedClient(application) as first,
        TypedClient(application) as second,
        TypedClient(application) as third,
    ):
        base = shared_operations()
        op = await first.subscribe(CATEGORIES, {"after": ""}, stream="categories")
        await Category.objects.acreate(name="a")
        cursor_a = (await next_change(first, op))["cursor"]
        await Category.objects.acreate(name="b")
        cursor_b = (await next_change(first, op))["cursor"]
        op_2 = await second.subscribe(CATEGORIES, {"after": cursor_a}, stream="categories")
        op_3 = await third.subscribe(CATEGORIES, {"after": cursor_b}, stream="categories")
        assert (await next_change(second, op_2))["data"]["name"] == "b"
        await Category.objects.acreate(name="c")
        assert (await next_change(second, op_2))["data"]["name"] == "c"
        assert (await next_change(third, op_3))["data"]["name"] == "c"
        assert (await next_change(first, op))["data"]["name"] == "c"
        # One document, its cursors aside: one shared execution for the three.
        assert shared_operations() <= base + 1


# -- a storm of resumes -------------------------------------------------------------------------


async def test_a_storm_of_resumes_decodes_and_executes_each_missed_event_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every client of a restarted server resumes at once: each gets exactly what it missed,
    and the history is decoded, and each event's typed payload executed, once for all."""
    decoded: list[object] = []
    decode = replay.decode_event
    monkeypatch.setattr(replay, "decode_event", lambda m: decoded.append(m) or decode(m))
    executed: list[object] = []
    execute = SharedOperation._execute
    monkeypatch.setattr(
        SharedOperation, "_execute", lambda self, e: executed.append(e) or execute(self, e)
    )
    async with TypedClient(application) as client:
        op = await client.subscribe(CATEGORIES, stream="categories")
        await Category.objects.acreate(name="seen")
        seen = (await next_change(client, op))["cursor"]
    missed = [f"missed-{i}" for i in range(10)]
    for name in missed:
        await Category.objects.acreate(name=name)
    assert await sync_to_async(flush_events)(5.0)
    decoded.clear()
    executed.clear()
    async with contextlib.AsyncExitStack() as stack:
        typed = [await stack.enter_async_context(TypedClient(application)) for _ in range(20)]
        streams = [await stack.enter_async_context(StreamClient(application)) for _ in range(20)]
        ops = [await c.subscribe(CATEGORIES, {"after": seen}, stream="categories") for c in typed]
        for stream in streams:
            assert (await stream.subscribe("categories", "ALL_ACTIONS", after=seen))["ok"]
        for client, op in zip(typed, ops, strict=True):
            names = [(await next_change(client, op))["data"]["name"] for _ in missed]
            assert names == missed
        for stream in streams:
            frames = [await stream.receive_event() for _ in missed]
            assert [f["payload"]["data"]["name"] for f in frames] == missed
        await Category.objects.acreate(name="live")
        for client, op in zip(typed, ops, strict=True):
            assert (await next_change(client, op))["data"]["name"] == "live"
        for stream in streams:
            assert (await stream.receive_event())["payload"]["data"]["name"] == "live"
    assert len(decoded) == len(missed)
    assert executed.count(executed[0]) == 1
    assert len(executed) == len(missed) + 1  # and the live one


@pytest.mark.parametrize("window_size", [1000, 3])
async def test_resumes_from_cursors_older_and_newer_than_a_hubs_window_get_exactly_theirs(
    window_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its window keeps the newest WINDOW_SIZE events: older cursors are read from the history."""
    monkeypatch.setattr(replay, "WINDOW_SIZE", window_size)
    async with TypedClient(application) as client:
        op = await client.subscribe(CATEGORIES, stream="categories")
        cursors, names = [], []
        for i in range(8):
            await Category.objects.acreate(name=f"c{i}")
            change = await next_change(client, op)
            cursors.append(change["cursor"])
            names.append(change["data"]["name"])
    # The first resume reads from c3; then one inside its window, one older, one at the newest.
    for start in (3, 5, 0, 7, 3):
        async with TypedClient(application) as client:
            op = await client.subscribe(CATEGORIES, {"after": cursors[start]}, stream="categories")
            got = [(await next_change(client, op))["data"]["name"] for _ in names[start + 1 :]]
            await client.assert_no_message()
        assert got == names[start + 1 :], start


@override_settings(STRAWBERRY_MODEL_SUBS={"HISTORY_TTL": 0.5})
async def test_a_cursor_the_history_let_go_is_expired_though_a_window_still_holds_it() -> None:
    async with TypedClient(application) as client:
        op = await client.subscribe(CATEGORIES, stream="categories")
        await Category.objects.acreate(name="old")
        old = await next_change(client, op)
        await Category.objects.acreate(name="newer")
        await next_change(client, op)
    async with TypedClient(application) as client:  # the hub now holds a window from "old"
        op = await client.subscribe(CATEGORIES, {"after": old["cursor"]}, stream="categories")
        assert (await next_change(client, op))["data"]["name"] == "newer"
    written = time.monotonic()
    await wait_until(lambda: time.monotonic() > written + 0.6, "the history's age to pass")
    async with TypedClient(application) as client:
        op = await client.subscribe(CATEGORIES, {"after": old["cursor"]})
        (error,) = await client.receive_error(op)
    assert error["extensions"] == {"code": "CURSOR_EXPIRED"}
