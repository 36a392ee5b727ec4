"""A socket's bounded send queue: the hub hands frames over without waiting for the socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from .conf import get_settings

logger = logging.getLogger(__name__)

#: Close code for a socket that cannot keep up (RFC 6455: "Try Again Later").
SLOW_CONSUMER_CLOSE_CODE = 1013


class Outbox:
    """Frames for one socket, written in order: at once while the socket takes them, else
    queued and written by a drain task.

    A socket whose queue reaches ``SEND_QUEUE_SIZE`` frames is closed with code 1013 (its
    frames are dropped); the other sockets never wait for it.

    Example::

        outbox = Outbox(consumer.send, consumer.close)  # send(text), close(code)
        outbox.push('{"stream": "products", "payload": {...}}')
    """

    # One per socket: slots keep an idle one to its fields.
    __slots__ = (
        "_close",
        "_closing",
        "_drain_task",
        "_max_queue",
        "_send",
        "_suspended",
        "closed",
        "frames",
        "loop",
    )

    def __init__(
        self,
        send: Callable[[str], Coroutine[Any, Any, None]],
        close: Callable[[int], Coroutine[Any, Any, None]],
    ) -> None:
        self._send = send
        self._close = close
        self.loop = asyncio.get_running_loop()
        #: Frames waiting behind a suspended write (a deque is made only then: most sockets
        #: never need one, and an empty deque costs more than half a kilobyte).
        self.frames: deque[str] = _NO_FRAMES
        self.closed = False
        self._max_queue = get_settings().SEND_QUEUE_SIZE
        self._drain_task: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        #: The send that suspended and is being finished by the drain task.
        self._suspended: Coroutine[Any, Any, None] | None = None

    def push(self, text: str) -> None:
        """Queue ``text``; never blocks."""
        if self.closed:
            return
        if len(self.frames) >= self._max_queue:
            logger.warning(
                "closing a socket with %d unsent frames (SEND_QUEUE_SIZE)", len(self.frames)
            )
            self.closed = True
            self.frames = _NO_FRAMES
            self._closing = self.loop.create_task(self._close(SLOW_CONSUMER_CLOSE_CODE))
            return
        if self._drain_task is None:
            self._write_eagerly(text)
        else:
            self.frames.append(text)

    def _write_eagerly(self, text: str) -> None:
        # Most sends complete without suspending (uvicorn writes to the transport at once while
        # it is writable): run the send right here, as Python 3.12's eager tasks would, and make
        # a task only for a send that does suspend. A task per frame and socket would cost more
        # than the write itself, and each would outlive the dispatch (garbage-collector work).
        # Hazard: the send's first step runs in the caller's task (the hub's). A send that
        # entered asyncio.timeout() before suspending would cancel that task; none of uvicorn's
        # or daphne's does. A CancelledError raised by the send itself counts as a failed write,
        # so it cannot end the hub's receive loop.
        send = self._send(text)
        try:
            waiting = send.send(None)
        except StopIteration:
            return
        except (Exception, asyncio.CancelledError):
            self._failed()
            return
        self.frames = deque()
        self._suspended = send
        self._drain_task = self.loop.create_task(self._drain(_Resume(send, waiting)))

    def forget(self, prefix: str) -> None:
        """Drop the queued frames that start with ``prefix`` (those of an ended operation)."""
        if any(frame.startswith(prefix) for frame in self.frames):
            self.frames = deque(frame for frame in self.frames if not frame.startswith(prefix))

    async def close(self) -> None:
        """Stop writing: drop what is queued and stop the drain task."""
        self.closed = True
        self.frames = _NO_FRAMES
        task, self._drain_task = self._drain_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        suspended, self._suspended = self._suspended, None
        if suspended is not None:
            suspended.close()  # the drain task may have been cancelled before it resumed it

    async def _drain(self, suspended: _Resume) -> None:
        try:
            await suspended
            while self.frames:
                await self._send(self.frames.popleft())
        except Exception:
            self._failed()
        finally:
            self._drain_task = None
            self._suspended = None
            self.frames = _NO_FRAMES

    def _failed(self) -> None:
        # The peer went away mid-write; the consumer's disconnect cleans up.
        logger.debug("socket write failed", exc_info=True)
        self.closed = True
        self.frames = _NO_FRAMES


#: The frames of every socket with no write suspended: always empty, never appended to.
_NO_FRAMES: deque[str] = deque(maxlen=0)


class _Resume:
    """Awaits the rest of a coroutine that was started by hand and suspended at ``waiting``
    (what its first step yielded: the future it waits for)."""

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting: Any) -> None:
        self.coroutine = coroutine
        self.waiting = waiting

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, waiting = self.coroutine, self.waiting
        while True:
            try:
                try:
                    sent = yield waiting
                except BaseException as exc:  # cancellation included: handed to the coroutine
                    waiting = coroutine.throw(exc)
                else:
                    waiting = coroutine.send(sent)
            except StopIteration:
                return
