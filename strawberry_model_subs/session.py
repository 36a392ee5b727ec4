"""One stream-protocol socket: its subscriptions and its bounded send queue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .conf import get_settings
from .control import ControlRequest
from .cursors import parse_cursor
from .events import Action, Event
from .exceptions import ControlError
from .filters import Where, compile_where
from .frames import ack_frame, cursor_frame, stream_frame
from .hub import Fields, Hub
from .outbox import Outbox
from .permissions import PermissionDenied, user_key
from .registry import registration_for_stream
from .replay import merge, resume

logger = logging.getLogger(__name__)

#: A socket's subscription: stream, action, object (None: every one) and filter.
SubscriptionKey = tuple[str, Action, str | None, Where | None]


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
        #: The subscriptions made with ``after``: their stream's frames carry each cursor.
        self.resumable: set[SubscriptionKey] = set()
        #: Streams whose frames carry the event's cursor (one of their subscriptions is
        #: resumable: a socket sends one frame per event).
        self._cursored: set[str] = set()
        #: stream -> what arrived for it while one of its subscriptions was being resumed.
        self._holds: dict[str, list[tuple[Event, Fields]]] = {}
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
        key = (stream, action, pk, _where(stream, request.get("where")))
        if request.get("requester") != self.owner:
            raise PermissionDenied(
                "permission denied: this channelId belongs to a socket of another user"
            )
        self._take_token()
        async with self._lock:
            if self.closed or self.outbox.closed:
                raise ControlError("the stream socket is closing")
            replayed: list[str] = []
            if request["operation"] == "subscribe":
                fields = frozenset(request["fields"]) if request["fields"] is not None else None
                replayed = await self._subscribe(key, fields, request.get("after"))
            else:
                await self._unsubscribe(key)
            # The ack, then at once (no await between) what a resumed subscription missed.
            self.push_text(ack_frame(request["operation"], action.value, stream))
            for frame in replayed:
                self.push_text(frame)

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

    async def _subscribe(
        self, key: SubscriptionKey, fields: Fields, after: str | None
    ) -> list[str]:
        """Hold the subscription; the frames a resumed one missed, to send after the ack."""
        stream, hub_key = key[0], key[1:]
        replayed: list[str] = []
        if key in self.subscriptions:
            self.hub.add(self, stream, key[1], key[2], fields, key[3])  # new fields, same key
        elif len(self.subscriptions) >= self._max_subscriptions:
            raise ControlError(
                f"this socket already holds {self._max_subscriptions} subscriptions, the "
                "most allowed (MAX_SUBSCRIPTIONS_PER_CONNECTION); unsubscribe some first"
            )
        elif after:
            replayed = await self._resume(key, fields, after)
        else:
            await self.hub.join(stream, self, hub_key, fields)
        self.subscriptions[key] = fields
        if after is not None:
            self.resumable.add(key)
        else:
            self.resumable.discard(key)
        self._cursored = {k[0] for k in self.resumable}
        return replayed

    async def _resume(self, key: SubscriptionKey, fields: Fields, after: str) -> list[str]:
        """Subscribe from the cursor ``after``; the frames of what it missed. The socket's
        frames of the stream are held meanwhile: they come back with the missed events, in
        offset order, once each. From the return on, frames of the stream go out live; the
        caller sends the ones returned before awaiting anything."""
        stream = key[0]
        cursor = parse_cursor(after)
        held = self._holds[stream] = []
        try:
            replayed = await resume(self.hub, stream, self, key[1:], cursor, fields)
        finally:
            del self._holds[stream]
        missed = merge(replayed, held)
        self.hub.exclude(self, stream, [event for event, _ in missed])
        return [cursor_frame(event, fields) for event, fields in missed]

    async def _unsubscribe(self, key: SubscriptionKey) -> None:
        stream = key[0]
        if key not in self.subscriptions:
            held = ", ".join(_describe(k) for k in self.subscriptions) or "none"
            raise ControlError(
                f"this socket has no subscription to {_describe(key)} to unsubscribe "
                f"(it holds: {held})"
            )
        del self.subscriptions[key]
        self.resumable.discard(key)
        self._cursored = {k[0] for k in self.resumable}
        self.hub.discard(self, *key)
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
            for key in keys:
                self.hub.discard(self, *key)
            for key in keys:
                await self.hub.leave(key[0])
        await self.outbox.close()

    # -- delivery ---------------------------------------------------------------------------

    def push(self, event: Event, fields: Fields) -> None:
        """Queue the event's frame, projected on ``fields`` (the hub's Sink contract), with its
        cursor if a subscription of its stream was made with ``after``."""
        if self._holds and event.stream in self._holds:
            self._holds[event.stream].append((event, fields))
        elif self._cursored and event.stream in self._cursored:
            self.push_text(cursor_frame(event, fields))
        else:
            self.push_text(stream_frame(event, fields))

    def push_text(self, text: str) -> None:
        """Queue one text frame; it never waits for the socket."""
        self.outbox.push(text)


def _describe(key: SubscriptionKey) -> str:
    stream, action, pk, where = key
    described = f"{stream} {action.value}" + (f" id {pk}" if pk is not None else "")
    return described + (" (filtered)" if where is not None else "")


def _where(stream: str, spec: dict[str, Any] | None) -> Where | None:
    """The compiled filter of a request (checked by the control operation already)."""
    if spec is None:
        return None
    registration = registration_for_stream(stream)
    if registration is None:
        raise ControlError(f"no serializer is registered for the stream {stream!r}")
    return compile_where(spec, registration.filter_fields)
