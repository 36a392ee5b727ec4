"""Each stream's history: offsets in publish order, bounded by count and age, with the trim mark
that tells a resumable cursor from an expired one; in the process (in-memory layer) and in a
Redis Stream (the Redis layers, run by the services configuration)."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol

import pytest
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async

from strawberry_model_subs import Action, Event
from strawberry_model_subs.cursors import Cursor, parse_cursor, parse_offset
from strawberry_model_subs.events import EventMessage, event_message
from strawberry_model_subs.exceptions import CursorExpired, CursorInvalid
from strawberry_model_subs.history import (
    APPEND_SCRIPT,
    READ_SCRIPT,
    LocalHistory,
    decode_read,
    entry_fields,
    history_key,
    mark_key,
    newest_key,
    read_range,
    read_top,
)
from strawberry_model_subs.hub import get_hub
from strawberry_model_subs.layers import get_layer
from strawberry_model_subs.publisher import flush_events
from tests.testapp.models import Category

BIG = 3600.0


_objects = itertools.count(1)


def messages(*names: str) -> list[EventMessage]:
    """One update of a new object per name, versions 1, 3, 5... in order."""
    out = []
    for i, name in enumerate(names):
        pk = next(_objects)
        message = event_message("things", Action.UPDATE, "app.thing", pk, {"name": name})
        message["version"] = 2 * i + 1
        out.append(message)
    return out


def names(events: list[EventMessage]) -> list[str]:
    return [event["data"] for event in events]


class History(Protocol):
    """The two histories behind one face, for the tests that hold for both."""

    epoch: str

    async def append(self, batch: list[EventMessage], size: int, ttl: float) -> list[str]: ...

    async def read(self, cursor: Cursor, size: int, ttl: float) -> list[EventMessage]: ...


class Local:
    def __init__(self) -> None:
        self.history = LocalHistory("1764672000000-0a0b0c0d")
        self.epoch = self.history.epoch
        self.prevs: list[str] = []

    async def append(self, batch: list[EventMessage], size: int, ttl: float) -> list[str]:
        before, offsets = self.history.append("things", batch, size, ttl)
        self.prevs.append(before)
        return offsets

    async def read(self, cursor: Cursor, size: int, ttl: float) -> list[EventMessage]:
        return self.history.read_after(cursor, "things", size, ttl)


class InRedis:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.prefix = f"test-{uuid.uuid4().hex[:8]}"
        self.epoch = "1764672000000-0a0b0c0d"
        self.prevs: list[str] = []
        self.newest: set[str] = set()

    async def start(self) -> None:
        await self.client.set(f"{self.prefix}.epoch", self.epoch)

    def keys(self) -> list[str]:
        return [
            f"{self.prefix}.epoch",
            history_key(self.prefix, "things"),
            mark_key(self.prefix, "things"),
        ]

    async def append(self, batch: list[EventMessage], size: int, ttl: float) -> list[str]:
        args: list[Any] = [self.epoch, size, int(ttl * 1000), 60, 1, len(batch)]
        for message in batch:
            args += entry_fields(message)
        newest = [newest_key(self.prefix, "things", m["pk"]) for m in batch]
        self.newest.update(newest)
        keys = [*self.keys(), *newest]
        reply = await self.client.eval(APPEND_SCRIPT, len(keys), *keys, *args)
        texts = [r.decode() for r in reply]
        self.prevs.append(texts[0])
        return texts[1:]

    async def read(self, cursor: Cursor, size: int, ttl: float) -> list[EventMessage]:
        offset = f"{cursor.offset[0]}-{cursor.offset[1]}"
        reply = await self.client.eval(READ_SCRIPT, 3, *self.keys(), offset, size, int(ttl * 1000))
        return decode_read("things", cursor, reply)


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.services)])
async def history(request: pytest.FixtureRequest) -> AsyncIterator[History]:
    if request.param == "local":
        yield Local()
        return
    client = aioredis.from_url(os.environ.get("SMS_REDIS_URL", "redis://127.0.0.1:6379/0"))
    store = InRedis(client)
    await store.start()
    try:
        yield store
    finally:
        await client.delete(*store.keys(), *store.newest)
        await client.aclose()


def at(history: History, offset: str) -> Cursor:
    return Cursor(history.epoch, parse_offset(offset))


async def test_offsets_increase_and_each_event_knows_the_one_before(history: History) -> None:
    first = await history.append(messages("a", "b"), 100, BIG)
    second = await history.append(messages("c"), 100, BIG)
    offsets = [parse_offset(o) for o in first + second]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == 3
    assert history.prevs == ["0-0", first[-1]]  # type: ignore[attr-defined]


async def test_a_cursor_gets_exactly_the_events_after_it_in_order(history: History) -> None:
    offsets = await history.append(messages("a", "b", "c", "d"), 100, BIG)
    replay = await history.read(at(history, offsets[1]), 100, BIG)
    assert names(replay) == ['{"name":"c"}', '{"name":"d"}']
    assert [parse_cursor(m["cursor"]) for m in replay] == [at(history, o) for o in offsets[2:]]
    assert [m["version"] for m in replay] == [5, 7]
    assert all(m["action"] == "update" and m["model"] == "app.thing" for m in replay)
    assert await history.read(at(history, offsets[-1]), 100, BIG) == []


async def test_the_start_of_the_stream_replays_everything_kept(history: History) -> None:
    await history.append(messages("a", "b"), 100, BIG)
    assert len(await history.read(at(history, "0-0"), 100, BIG)) == 2


async def test_a_cursor_before_what_the_size_kept_is_expired(history: History) -> None:
    offsets = await history.append(messages("a", "b", "c", "d", "e"), 3, BIG)
    # The newest dropped event is the trim mark: from it on, nothing is missing.
    assert names(await history.read(at(history, offsets[1]), 3, BIG)) == [
        '{"name":"c"}',
        '{"name":"d"}',
        '{"name":"e"}',
    ]
    with pytest.raises(CursorExpired) as raised:
        await history.read(at(history, offsets[0]), 3, BIG)
    assert str(raised.value).startswith("CURSOR_EXPIRED: ")


async def test_a_cursor_before_what_the_age_kept_is_expired(history: History) -> None:
    offsets = await history.append(messages("a", "b"), 100, BIG)
    # Let the clock pass the entries by 5 ms (on Redis, entry ids are its clock's ms).
    after = max(time.time() * 1000, parse_offset(offsets[-1])[0]) + 5
    await asyncio.sleep((after - time.time() * 1000) / 1000)  # the age under test
    # A 1 ms history keeps neither: a cursor at the last is still whole, one before it is not.
    assert await history.read(at(history, offsets[1]), 100, 0.001) == []
    with pytest.raises(CursorExpired):
        await history.read(at(history, offsets[0]), 100, 0.001)


async def test_a_cursor_of_another_epoch_is_expired(history: History) -> None:
    offsets = await history.append(messages("a"), 100, BIG)
    with pytest.raises(CursorExpired, match="earlier history"):
        await history.read(Cursor("1764672000000-ffffffff", parse_offset(offsets[0])), 100, BIG)


async def test_a_cursor_past_the_newest_event_is_invalid(history: History) -> None:
    offsets = await history.append(messages("a"), 100, BIG)
    ms, seq = parse_offset(offsets[0])
    with pytest.raises(CursorInvalid):
        await history.read(Cursor(history.epoch, (ms + 10_000, seq)), 100, BIG)


class Inbox:
    user = None

    def __init__(self) -> None:
        self.events: asyncio.Queue[Event] = asyncio.Queue()

    def push(self, event: Event, fields: object) -> None:
        self.events.put_nowait(event)

    async def next(self) -> Event:
        return await asyncio.wait_for(self.events.get(), 5)


@pytest.mark.django_db(transaction=True)
async def test_published_events_carry_their_cursor_and_the_offset_before_them() -> None:
    hub, inbox = get_hub(), Inbox()
    async with hub.subscribed("categories", inbox, (Action.ALL_ACTIONS, None, None)):
        for name in ("one", "two", "three"):
            await Category.objects.acreate(name=name)
        events = [await inbox.next() for _ in range(3)]
    assert [e.data["name"] for e in events] == ["one", "two", "three"]
    cursors = [parse_cursor(e.cursor) for e in events]
    assert len({c.epoch for c in cursors}) == 1
    assert cursors[0].epoch == events[0].epoch
    offsets = [c.offset for c in cursors]
    assert offsets == sorted(offsets)
    assert [parse_offset(e.prev or "") for e in events[1:]] == offsets[:-1]


@pytest.mark.services
async def test_an_event_older_than_its_objects_newest_in_the_history_is_left_out() -> None:
    """A slower writer's older version (hubs would drop it) never enters the history: a
    subscriber resuming past the newer one is not sent back to the older state."""
    client = aioredis.from_url(os.environ.get("SMS_REDIS_URL", "redis://127.0.0.1:6379/0"))
    store = InRedis(client)
    await store.start()
    try:
        newer, older, other = messages("newer", "older", "other")
        older["pk"], older["version"] = newer["pk"], 1
        newer["version"] = 9
        (first,) = await store.append([newer], 100, BIG)
        offsets = await store.append([older, other], 100, BIG)
        assert offsets[0] == "", "the older version took a place in the history"
        assert offsets[1] != ""
        replay = await store.read(at(store, "0-0"), 100, BIG)
        assert names(replay) == ['{"name":"newer"}', '{"name":"other"}']
        assert store.prevs[1] == first
    finally:
        await client.delete(*store.keys(), *store.newest)
        await client.aclose()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
async def test_a_site_whose_layer_has_another_prefix_shares_no_history() -> None:
    """Two sites on one Redis database, their channel layers' prefixes apart: neither reads the
    other's history, so a gap in one site's live events is never filled with the other's."""
    ours = get_layer()
    url = os.environ.get("SMS_REDIS_URL", "redis://127.0.0.1:6379/0")
    theirs = type(ours)(hosts=[{"address": url}], prefix="another-site")
    await Category.objects.acreate(name="ours")
    assert await sync_to_async(flush_events)(5.0)
    top = await read_top(ours, "categories")
    assert top.offset > (0, 0)
    other = await read_top(theirs, "categories")
    assert other.offset == (0, 0)
    assert other.epoch != top.epoch
    assert await read_range(theirs, "categories", (0, 0), top.offset) == []
