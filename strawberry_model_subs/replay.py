"""Resuming a subscription from a cursor: what it missed, from the history, then the live events,
with no gap and no duplicate at the seam.

:func:`resume` puts the subscription in the hub's index behind a stand-in that keeps whatever
arrives live, reads the history after the cursor, keeps each event the subscription matches and
its user may see (the permission rules apply to replayed events exactly as to live ones, and a
replay drops stale versions with a table of its own), then puts the subscriber itself in the
index and gives back what the history and the stand-in hold, merged in offset order with each
event once. Every live event is in the history before it is sent (see ``publisher``), and a hub
hands a stream's events on in offset order (see ``sequencer``), so nothing falls between the
two and the merge is the stream's own order.

A storm of resumes (every client of a restarted server coming back at once) decodes the history
once per stream, not once per subscription: each hub keeps the events it read of a stream (a
:class:`_Window`), and a resume whose cursor the window reaches has the history check its cursor
as ever but read only what was added past the window. The events being shared, their frames and
shared executions are built once for all the subscriptions replaying them.
"""

from __future__ import annotations

import asyncio
import weakref
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .conf import get_settings
from .cursors import Cursor, Offset, event_cursor
from .events import Action, Event, decode_event
from .exceptions import NotRegisteredError, SyncOnlyError
from .frames import merge_fields
from .history import read_after, read_top
from .hub import (
    Fields,
    Hub,
    Key,
    Sink,
    allowed_before_after,
    matches_before_after,
    seen_as,
)
from .layers import get_layer, in_event_loop, run_sync
from .registry import registration_for_stream
from .versions import Versions

#: Seconds a hub keeps a stream's window after the last resume that used it.
WINDOW_IDLE = 30.0
#: The most events a window keeps (the newest; fewer when HISTORY_SIZE is smaller): enough for
#: the resumes of a storm, whose clients missed what happened while they were away, and a
#: bounded memory however long resumes keep coming. An older cursor is read from the history.
WINDOW_SIZE = 1000


@dataclass(eq=False)
class _Window:
    """The decoded events of a stream after offset ``after``, up to ``upto``: every event of
    the stream in between, read once and shared by the resumes on one hub whose cursors it
    reaches."""

    epoch: str
    after: Offset
    upto: Offset
    events: list[Event]
    offsets: list[Offset]
    used: float

    def reaches(self, cursor: Cursor) -> bool:
        """Whether the window starts at or before ``cursor`` (in its epoch)."""
        return cursor.epoch == self.epoch and self.after <= cursor.offset

    def extend(self, events: list[Event]) -> None:
        """Add what a read after an earlier ``upto`` gave (each event once, in order); keep at
        most WINDOW_SIZE (and HISTORY_SIZE) events."""
        for event in events:
            place = _place(event)
            if place is not None and place[1] > self.upto:
                self.events.append(event)
                self.offsets.append(place[1])
                self.upto = place[1]
        excess = len(self.events) - min(WINDOW_SIZE, get_settings().HISTORY_SIZE)
        if excess > 0:
            self.after = self.offsets[excess - 1]
            del self.events[:excess], self.offsets[:excess]

    def after_cursor(self, cursor: Cursor) -> list[Event]:
        return self.events[bisect_right(self.offsets, cursor.offset) :]


_windows: weakref.WeakKeyDictionary[Hub, dict[str, _Window]] = weakref.WeakKeyDictionary()


async def _missed(hub: Hub, stream: str, cursor: Cursor) -> list[Event]:
    """Every event of ``stream`` after ``cursor``, decoded. The history checks the cursor on
    every call (CursorExpired, CursorInvalid); when the hub's window of the stream reaches the
    cursor, only what the history holds past the window is read and decoded."""
    loop = asyncio.get_running_loop()
    windows = _windows.setdefault(hub, {})
    window = windows.get(stream)
    if window is not None and loop.time() - window.used > WINDOW_IDLE:
        del windows[stream]
        window = None
    if window is not None and window.reaches(cursor):
        messages = await read_after(hub.layer, stream, cursor, since=window.upto)
        window.extend([decode_event(message) for message in messages])
        window.used = loop.time()
        if window.reaches(cursor):  # (not trimmed past it meanwhile)
            return window.after_cursor(cursor)
    events = [decode_event(message) for message in await read_after(hub.layer, stream, cursor)]
    current = windows.get(stream)
    # (Every event read from the history has a cursor.)
    if all(event.cursor is not None for event in events) and (
        current is None or current.epoch != cursor.epoch or cursor.offset < current.after
    ):
        window = _Window(cursor.epoch, cursor.offset, cursor.offset, [], [], loop.time())
        window.extend(events)
        windows[stream] = window
    return events


class _StandIn:
    """Holds a resumed subscription's place in the hub's index while its history is read."""

    __slots__ = ("held", "user")

    def __init__(self, user: Any) -> None:
        self.user = user
        self.held: list[tuple[Event, Fields]] = []

    def push(self, event: Event, fields: Fields) -> None:
        self.held.append((event, fields))


def _as_seen(
    key: Key, event: Event, user: Any, check: Callable[[Any, Event], bool] | None
) -> Event | None:
    """``event`` as the subscription ``key`` of ``user`` receives it (filter and rules before
    and after an update, as live delivery sees them: ``hub.seen_as``), or None."""
    action, pk, where = key
    if pk is not None and pk != event.pk:
        return None
    prior = event.as_before() if event.action is Action.UPDATE and event.before else None
    matched = (True, True) if where is None else matches_before_after(where, event, prior)
    allowed = (True, True) if check is None else allowed_before_after(check, user, event, prior)
    seen = seen_as(event, prior, where is not None, matched, allowed)
    if seen is None or action not in (Action.ALL_ACTIONS, seen.action):
        return None
    return seen


def _place(event: Event) -> tuple[str, Offset] | None:
    if event.cursor is None:
        return None
    cursor = event_cursor(event.cursor)
    return cursor.epoch, cursor.offset


def merge(*runs: list[tuple[Event, Fields]]) -> list[tuple[Event, Fields]]:
    """Runs of (event, fields), each in offset order, as one run in offset order with each
    event once (the union of its fields); events without a cursor (sent by hand) come last."""
    filled = [run for run in runs if run]
    if len(filled) <= 1:  # nothing arrived live meanwhile: one run, already in order
        return list(filled[0]) if filled else []
    by_place: dict[tuple[str, Offset], tuple[Event, Fields]] = {}
    loose: list[tuple[Event, Fields]] = []
    for run in filled:
        for event, fields in run:
            place = _place(event)
            if place is None:
                loose.append((event, fields))
            elif place in by_place:
                known, known_fields = by_place[place]
                by_place[place] = (known, merge_fields(known_fields, fields))
            else:
                by_place[place] = (event, fields)
    return [by_place[place] for place in sorted(by_place)] + loose


async def resume(
    hub: Hub, stream: str, sink: Sink, key: Key, cursor: Cursor, fields: Fields = None
) -> list[tuple[Event, Fields]]:
    """Subscribe ``sink`` to ``key`` (action, pk, where) of ``stream`` with ``fields``, from
    ``cursor``: returns, in offset order, every matching event after the cursor that its user
    may see, for the caller to hand to the sink before anything else, and then, before any
    await, to pass to :meth:`Hub.exclude` (they may still arrive live). From the return on, the
    live events reach the sink.

    The subscription is then held under ``sink`` (the caller drops it as any other:
    ``hub.discard`` then ``hub.leave``). Raises CursorExpired or CursorInvalid, holding nothing,
    when the history cannot give every event after the cursor.
    """
    stand_in = _StandIn(sink.user)
    await hub.join(stream, stand_in, key, fields)
    try:
        events = await _missed(hub, stream, cursor)
    except BaseException:
        hub.discard(stand_in, stream, *key)
        await hub.leave(stream)
        raise
    registration = registration_for_stream(stream)
    check = registration.event_check if registration is not None else None
    versions = Versions()
    replayed: list[tuple[Event, Fields]] = []
    for event in events:
        if versions.is_stale(event):
            continue
        seen = _as_seen(key, event, sink.user, check)
        if seen is not None:
            replayed.append((seen, fields))
    # No await from here to the caller's Hub.exclude: an event read from the history may yet
    # arrive live, and must not reach the subscriber twice.
    hub.discard(stand_in, stream, *key)
    hub.add(sink, stream, key[0], key[1], fields, key[2])
    return merge(replayed, stand_in.held)


async def acurrent_cursor(stream: str) -> str:
    """The cursor of the newest event of ``stream``: read it before loading the data a client
    shows, and a subscription resumed from it (``after``) misses nothing committed since.

    Example::

        cursor = await acurrent_cursor("products")
        products = [p async for p in Product.objects.all()]
        # the client shows products, then subscribes with productChanged(after: cursor)

    Raises:
        NotRegisteredError: no serializer is registered for ``stream``.
    """
    if registration_for_stream(stream) is None:
        raise NotRegisteredError(f"no serializer is registered for the stream {stream!r}")
    return (await read_top(get_layer(), stream)).encode()


def current_cursor(stream: str) -> str:
    """:func:`acurrent_cursor` for synchronous code (a view, a script).

    Raises:
        NotRegisteredError: no serializer is registered for ``stream``.
        SyncOnlyError: called in a running event loop (await :func:`acurrent_cursor`).
    """
    if in_event_loop():
        raise SyncOnlyError(
            "current_cursor() is for synchronous code; in async code, await acurrent_cursor()"
        )
    cursor: str = run_sync(acurrent_cursor, stream)
    return cursor
