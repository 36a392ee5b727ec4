"""The event source behind the typed ``{name}Changed`` subscriptions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from .cursors import Cursor
from .events import Event
from .hub import Fields, Hub, Key, Sink
from .replay import resume


class EventQueue:
    """A hub sink feeding one typed subscription."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    def push(self, event: Event, fields: Fields) -> None:
        """Queue ``event`` for the subscription (``fields`` is unused: its selection picks them).
        The queue is unbounded: a subscriber that stops reading keeps every event."""
        self.queue.put_nowait(event)


async def changed_events(hub: Hub, stream: str, key: Key, user: Any) -> AsyncGenerator[Event, None]:
    """Yield the matching events of ``stream`` until the consumer of the generator stops.

    The subscription is in place (group joined, index entry added) before the first event is
    awaited, and is removed in ``finally`` however the generator ends (complete, close, error).
    """
    sink = EventQueue(user)
    async with hub.subscribed(stream, sink, key):
        while True:
            yield await sink.queue.get()


async def direct_events(hub: Hub, stream: str, key: Key, sink: Sink) -> AsyncGenerator[Event, None]:
    """The source stream of a shared typed subscription (see ``shared``): it yields nothing,
    since ``sink`` writes the frames, and holds the subscription until it is cancelled."""
    async with hub.subscribed(stream, sink, key):
        await asyncio.get_running_loop().create_future()  # until complete or disconnect
    yield  # type: ignore[misc]  # never reached: this makes the function a generator


class HeldEvents:
    """The source stream of a typed subscription the hub already holds: resumed from a cursor
    (see :func:`resumed`), or held for a handler that lets the operation's task end (see
    :func:`held`).

    An async iterator rather than a generator: the subscription is held from the moment the
    resolver returns, and ``aclose()`` drops it even if no event was ever awaited (closing a
    generator that never started would not run its ``finally``).
    """

    # One per typed subscription: slots, and the future made only when something waits on it.
    __slots__ = ("_closed", "_waiter", "hub", "key", "queue", "sink", "stream")

    def __init__(self, hub: Hub, stream: str, key: Key, sink: Sink) -> None:
        self.hub, self.stream, self.key, self.sink = hub, stream, key, sink
        self.queue = sink.queue if isinstance(sink, EventQueue) else None
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    def __aiter__(self) -> HeldEvents:
        return self

    async def __anext__(self) -> Event:
        if self._closed:
            raise StopAsyncIteration
        if self.queue is None:
            # Shared execution: the sink writes the frames; this only holds the subscription.
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)
            raise StopAsyncIteration
        return await self.queue.get()

    async def aclose(self) -> None:
        """Drop the subscription (once)."""
        if self._closed:
            return
        self._closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self.hub.discard(self.sink, self.stream, *self.key)
        await self.hub.leave(self.stream)


async def held(hub: Hub, stream: str, key: Key, sink: Sink) -> HeldEvents:
    """Subscribe ``sink`` (a shared execution's sink) to the live events of ``stream``: held
    from the moment this returns, until the ``aclose()`` of what it returns."""
    await hub.join(stream, sink, key)
    return HeldEvents(hub, stream, key, sink)


class NoEvents:
    """The source stream of an operation whose subscription the hub holds (see
    ``shared.DirectTarget.hold``): it ends at once, so the operation's task ends with it."""

    def __aiter__(self) -> NoEvents:
        return self

    async def __anext__(self) -> Event:
        raise StopAsyncIteration


async def resumed(hub: Hub, stream: str, key: Key, sink: Sink, cursor: Cursor) -> HeldEvents:
    """Subscribe ``sink`` (an :class:`EventQueue`, or a shared execution's sink) from
    ``cursor``: the missed events are handed to it before this returns (see ``replay``); raises
    CursorExpired or CursorInvalid, holding nothing, when they cannot all be given."""
    missed = await resume(hub, stream, sink, key, cursor)
    for event, fields in missed:
        sink.push(event, fields)
    hub.exclude(sink, stream, [event for event, _ in missed])
    return HeldEvents(hub, stream, key, sink)
