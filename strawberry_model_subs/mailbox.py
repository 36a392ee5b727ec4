"""``Mailbox``: the client messages of one typed socket, waiting for its protocol handler."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """The ``put_nowait``/``get`` of an unbounded ``asyncio.Queue`` with one reader, in a
    tenth of its memory: an idle connection's mailbox holds no deque, no event and no list of
    waiters (an ``asyncio.Queue`` holds four such, about 3 KB, on every socket).

    Items come out in the order they went in; an item put while the reader waits is kept in the
    mailbox until the reader takes it, so a cancelled ``get`` loses nothing.

    Example::

        mailbox: Mailbox[str] = Mailbox()
        mailbox.put_nowait("hello")
        assert await mailbox.get() == "hello"
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: T) -> None:
        """Add ``item``; never blocks."""
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> T:
        """The oldest item, once there is one (one reader at a time)."""
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        items = self._items
        item = items.popleft()
        if not items:
            self._items = None  # an idle mailbox holds no deque
        return item

    def qsize(self) -> int:
        """How many items wait."""
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        """Whether no item waits."""
        return not self._items
