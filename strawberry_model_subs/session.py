"""One stream-protocol socket: its subscriptions and its bounded send queue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .conf import get_settings
from .control import ControlRequest
from .events import Action, Event
from .exceptions import ControlError
from .frames import ack_frame, stream_frame
from .hub import Fields, Hub
from .outbox import Outbox
from .permissions import PermissionDenied, user_key

logger = logging.getLogger(__name__)

SubscriptionKey = tuple[str, Action, str | None]


class StreamSession:
    """The subscriptions of one stream socket, each with its own fields, and its outbox.

    Frames go through the socket's :class:`~strawberry_model_subs.outbox.Outbox`, so the hub
    never waits for a socket.
    """

    def __init__(
        self,
        hub: Hub,
        send: Callable[[str], Coroutine[Any, Any, None]],
        close: Callable[[int], Coroutine[Any, Any, None]],
        user: Any = None,
    ) -> None:
        self.hub = hub
        self.user = user
        self.owner = user_key(user)
        self.outbox = Outbox(send, close)
        self.loop = self.outbox.loop
        self.subscriptions: dict[SubscriptionKey, Fields] = {}
        self.closed = False
        self._lock = asyncio.Lock()
        settings = get_settings()
        self._max_subscriptions = settings.MAX_SUBSCRIPTIONS_PER_CONNECTION
        self._rate = settings.CONTROL_RATE
        self._tokens = 2 * settings.CONTROL_RATE
        self._refilled = time.monotonic()

    # -- control ----------------------------------------------------------------------------

    async def apply(self, request: ControlRequest) -> None:
        """Subscribe or unsubscribe, then queue the ack; raise ControlError (and send no ack)."""
        stream, action, pk = request["stream"], Action(request["action"]), request["pk"]
        key = (stream, action, pk)
        if request.get("requester") != self.owner:
            raise PermissionDenied(
                "permission denied: this channelId belongs to a socket of another user"
            )
        self._take_token()
        async with self._lock:
            if self.closed or self.outbox.closed:
                raise ControlError("the stream socket is closing")
            if request["operation"] == "subscribe":
                fields = frozenset(request["fields"]) if request["fields"] is not None else None
                await self._subscribe(key, fields)
            else:
                await self._unsubscribe(key)
            self.push_text(ack_frame(request["operation"], action.value, stream))

    def _take_token(self) -> None:
        """A token bucket: CONTROL_RATE operations a second, bursts of twice as many."""
        now = time.monotonic()
        self._tokens = min(2 * self._rate, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens < 1:
            raise ControlError(
                f"too many control operations: at most {self._rate:g} a second on one socket "
                "(CONTROL_RATE)"
            )
        self._tokens -= 1

    async def _subscribe(self, key: SubscriptionKey, fields: Fields) -> None:
        stream, action, pk = key
        if key not in self.subscriptions:
            if len(self.subscriptions) >= self._max_subscriptions:
                raise ControlError(
                    f"this socket already holds {self._max_subscriptions} subscriptions, the "
                    "most allowed (MAX_SUBSCRIPTIONS_PER_CONNECTION); unsubscribe some first"
                )
            await self.hub.join(stream, self, (action, pk), fields)
        else:
            self.hub.add(self, stream, action, pk, fields)  # new fields for the same key
        self.subscriptions[key] = fields

    async def _unsubscribe(self, key: SubscriptionKey) -> None:
        stream, action, pk = key
        if key not in self.subscriptions:
            held = ", ".join(_describe(k) for k in self.subscriptions) or "none"
            raise ControlError(
                f"this socket has no subscription to {_describe(key)} to unsubscribe "
                f"(it holds: {held})"
            )
        del self.subscriptions[key]
        self.hub.discard(self, stream, action, pk)
        await self.hub.leave(stream)

    async def apply_from_any_loop(self, request: ControlRequest) -> None:
        """:meth:`apply` from whichever event loop the caller runs on."""
        if asyncio.get_running_loop() is self.loop:
            await self.apply(request)
        else:
            future = asyncio.run_coroutine_threadsafe(self.apply(request), self.loop)
            await asyncio.wrap_future(future)

    async def close(self) -> None:
        """Drop every subscription and group reference, and stop writing."""
        async with self._lock:
            self.closed = True
            keys, self.subscriptions = list(self.subscriptions), {}
            for stream, action, pk in keys:
                self.hub.discard(self, stream, action, pk)
            for stream, _, _ in keys:
                await self.hub.leave(stream)
        await self.outbox.close()

    # -- delivery ---------------------------------------------------------------------------

    def push(self, event: Event, fields: Fields) -> None:
        """Queue the event's frame, projected on ``fields`` (the hub's Sink contract)."""
        self.push_text(stream_frame(event, fields))

    def push_text(self, text: str) -> None:
        """Queue one text frame; it never waits for the socket."""
        self.outbox.push(text)


def _describe(key: SubscriptionKey) -> str:
    stream, action, pk = key
    return f"{stream} {action.value}" + (f" id {pk}" if pk is not None else "")
