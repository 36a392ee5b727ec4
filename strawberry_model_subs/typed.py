"""The event source behind the typed ``{name}Changed`` subscriptions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from .events import Action, Event
from .hub import Fields, Hub


class EventQueue:
    """A hub sink feeding one typed subscription."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    def push(self, event: Event, fields: Fields) -> None:
        self.queue.put_nowait(event)


async def changed_events(
    hub: Hub, stream: str, action: Action, pk: str | None, user: Any
) -> AsyncGenerator[Event, None]:
    """Yield the matching events of ``stream`` until the consumer of the generator stops.

    The subscription is in place (group joined, index entry added) before the first event is
    awaited, and is removed in ``finally`` however the generator ends (complete, close, error).
    """
    sink = EventQueue(user)
    await hub.join(stream, sink, (action, pk))
    try:
        while True:
            yield await sink.queue.get()
    finally:
        hub.discard(sink, stream, action, pk)
        await hub.leave(stream)
