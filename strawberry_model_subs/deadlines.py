"""``Deadlines``: the timers of many connections on a few of the event loop's.

Every graphql-transport-ws connection has a ping or a pong due at all times: a loop timer each
(under uvloop about 600 bytes) for what is, for each, one call every few seconds. Here a
deadline is rounded up to the next tick of ``TICK`` seconds and kept in that tick's set; one
loop timer per tick with something due calls them all.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from typing import Protocol

logger = logging.getLogger(__name__)

#: Seconds between the instants a deadline may fall on: one falls due at most this much late.
TICK = 0.05


class Due(Protocol):
    """What :class:`Deadlines` calls when its deadline comes."""

    #: The tick its deadline falls on (None: none set); kept by :class:`Deadlines` alone.
    due_tick: int | None

    def due(self) -> None:
        """Its deadline came (called once per :meth:`Deadlines.set`)."""


class Deadlines:
    """One event loop's deadlines, at most one per :class:`Due`.

    Example::

        deadlines = Deadlines.of_running_loop()
        deadlines.set(handler, 30.0)  # handler.due() in 30 s (at most TICK later)
        deadlines.cancel(handler)
    """

    __slots__ = ("__weakref__", "_buckets", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._buckets: dict[int, dict[Due, None]] = {}

    @classmethod
    def of_running_loop(cls) -> Deadlines:
        """The running loop's deadlines (one set per loop)."""
        loop = asyncio.get_running_loop()
        deadlines = _per_loop.get(loop)
        if deadlines is None:
            deadlines = _per_loop[loop] = cls(loop)
        return deadlines

    def set(self, item: Due, delay: float) -> None:
        """Call ``item.due()`` ``delay`` seconds from now (at most ``TICK`` later), instead of
        at any deadline it had."""
        self.cancel(item)
        tick = math.ceil((self._loop.time() + max(delay, 0.0)) / TICK)
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = {}
            self._loop.call_at(tick * TICK, self._fire, tick)
        bucket[item] = None
        item.due_tick = tick

    def cancel(self, item: Due) -> None:
        """Drop ``item``'s deadline, if it has one."""
        tick, item.due_tick = item.due_tick, None
        if tick is not None:
            bucket = self._buckets.get(tick)
            if bucket is not None:
                bucket.pop(item, None)

    def pending(self) -> int:
        """How many deadlines are set (for tests and diagnostics)."""
        return sum(len(bucket) for bucket in self._buckets.values())

    def _fire(self, tick: int) -> None:
        for item in self._buckets.pop(tick, {}):
            item.due_tick = None
            try:
                item.due()
            except Exception:  # one connection's failure is not the others'
                logger.exception("a connection's timer failed")


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = (
    weakref.WeakKeyDictionary()
)
