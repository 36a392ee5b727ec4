"""The event source behind the typed ``{name}Changed`` subscriptions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from .events import Action, Event
from .hub import Fields, Hub, Sink


class EventQueue:
    """A hub sink feeding one typed subscription."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    def push(self, event: Event, fields: Fields) -> None:
        """Queue ``event`` for the subscription (``fields`` is unused: its selection picks them).
        The queue is unbounded: a subscriber that stops reading keeps every event."""
        self.queue.put_nowait(event)


async def changed_events(
    hub: Hub, stream: str, action: Action, pk: str | None, user: Any
) -> AsyncGenerator[Event, None]:
    """Yield the matching events of ``stream`` until the consumer of the generator stops.

    The subscription is in place (group joined, index entry added) before the first event is
    awaited, and is removed in ``finally`` however the generator ends (complete, close, error).
    """
    sink = EventQueue(user)
    async with hub.subscribed(stream, sink, (action, pk)):
        while True:
            yield await sink.queue.get()


async def direct_events(
    hub: Hub, stream: str, action: Action, pk: str | None, sink: Sink
) -> AsyncGenerator[Event, None]:
    """The source stream of a shared typed subscription (see ``shared``): it yields nothing,
    since ``sink`` writes the frames, and holds the subscription until it is cancelled."""
    async with hub.subscribed(stream, sink, (action, pk)):
        await asyncio.get_running_loop().create_future()  # until complete or disconnect
    yield  # type: ignore[misc]  # never reached: this makes the function a generator
