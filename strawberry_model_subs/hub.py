"""The per-process fan-out engine.

Each server process (each event loop) has one :class:`Hub`. The hub, not the sockets, is the
member of the channel-layer groups: one membership per process and stream, whatever the number of
subscribers. When an event arrives it looks up the subscribers that can match it in an index keyed
by (stream, action, pk) and hands it to each one directly: no layer message, consumer dispatch or
thread hop per subscriber.

A subscriber is a :class:`Sink`: a stream-protocol socket (which turns the event into a frame) or
a typed ``{name}Changed`` subscription (which yields the event to Strawberry).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from .conf import get_settings
from .cursors import Offset, event_cursor
from .events import BATCH_MESSAGE_TYPE, EVENT_MESSAGE_TYPE, Action, Event, decode_event, group_name
from .filters import FilterField, Where
from .frames import merge_fields
from .history import read_top
from .layers import (
    ChannelLayer,
    add_local_receiver,
    get_layer,
    is_benign_timeout,
    is_process_local,
    tune_blocking_reads,
)
from .permissions import user_key
from .registry import registration_for_stream
from .sequencer import Sequencer
from .versions import Versions

logger = logging.getLogger(__name__)

Fields = frozenset[str] | None

#: Sent by the hub to its own channel to end its receive loop once it has no subscriber.
STOP_MESSAGE_TYPE = "sms.hub.stop"
HUB_TASK_NAME = "strawberry-model-subs hub"
#: A subscription: the action and object (None: every object) it takes, and its filter.
Key = tuple[Action, str | None, Where | None]
#: Where a hub indexes subscriptions: by action and object.
Slot = tuple[Action, str | None]
EVERYTHING: Key = (Action.ALL_ACTIONS, None, None)


#: The layer message that ends a user's connections in every process (see ``revocation``).
REVOKE_MESSAGE_TYPE = "sms.revoke"
#: The pseudo-stream whose group every hub holding a signed-in user's connection joins; stream
#: names cannot start with "__" (``events.check_stream_name``).
REVOKE_STREAM = "__revoke__"


class Revocable(Protocol):
    """A connection that a revocation of its user ends (a consumer)."""

    def revoke(self) -> None:
        """End the connection (close it with the protocol's code); must not block."""


class Sink(Protocol):
    """Something that receives the events of its subscriptions, for its user."""

    user: Any

    def push(self, event: Event, fields: Fields) -> None:
        """Take one event; must not block (queue it and return)."""


class _FilterIndex:
    """A stream's filters by the values they need (``Where.index``), so that an event is tested
    only against the filters it may concern: those needing its value of a field, before or after
    the change, and those that need no value."""

    def __init__(self) -> None:
        #: field -> value -> filters needing it.
        self.by_value: dict[str, dict[Any, set[Where]]] = {}
        self.unindexed: set[Where] = set()

    def add(self, where: Where) -> None:
        if where.index is None:
            self.unindexed.add(where)
            return
        name, values = where.index
        by_value = self.by_value.setdefault(name, {})
        for value in values:
            by_value.setdefault(value, set()).add(where)

    def remove(self, where: Where) -> None:
        if where.index is None:
            self.unindexed.discard(where)
            return
        name, values = where.index
        by_value = self.by_value[name]
        for value in values:
            holders = by_value[value]
            holders.discard(where)
            if not holders:
                del by_value[value]
        if not by_value:
            del self.by_value[name]

    def candidates(
        self, event: Event, columns: Mapping[str, FilterField]
    ) -> set[Where] | list[Where]:
        """The filters ``event`` may concern (a superset of those it does); ``columns``: the
        stream's filterable fields."""
        if not self.by_value:
            return list(self.unindexed)
        found = set(self.unindexed)
        before = event.before or {}
        for name, by_value in self.by_value.items():
            column = columns.get(name)
            if column is None:
                continue
            for source in (event.data, before):
                raw = source.get(name)
                if raw is None:
                    continue
                try:
                    holders = by_value.get(column.convert(raw))
                except (TypeError, ValueError, ArithmeticError):
                    continue
                if holders:
                    found |= holders
        return found


def seen_as(
    event: Event,
    prior: Event | None,
    filtered: bool,
    matched: tuple[bool, bool],
    allowed: tuple[bool, bool],
) -> Event | None:
    """``event`` as one subscriber sees it, or None when it does not: ``matched`` says whether
    the object matched its filter before and after the change, ``allowed`` whether the stream's
    rules let its user see the object before and after (``prior``: the update's object as it
    was). An update that makes the object visible is a create, one that hides it a delete (as
    the user last saw it when the rules now hide it), both marked ``moved``."""
    visible = matched[1] and allowed[1]
    if event.action is not Action.UPDATE:
        return event.view(event.action, False, filtered) if visible else None
    was_visible = matched[0] and allowed[0]
    if visible and was_visible:
        return event.view(Action.UPDATE, False, filtered)
    if visible:
        return event.view(Action.CREATE, True, filtered)
    if was_visible:
        shown = event if allowed[1] or prior is None else prior
        return shown.view(Action.DELETE, True, filtered)
    return None


def matches_before_after(where: Where, event: Event, prior: Event | None) -> tuple[bool, bool]:
    """Whether the object matched ``where`` before the change (``prior``: an update's object
    as it was; None: as it is) and matches after it."""
    after = where.matches(event.data)
    return (after if prior is None else where.matches(prior.data)), after


def allowed_before_after(
    check: Callable[[Any, Event], bool], user: Any, event: Event, prior: Event | None
) -> tuple[bool, bool]:
    """Whether the stream's per-object rules let ``user`` see the object before the change
    (``prior``, as above) and after it."""
    after = bool(check(user, event))
    return (after if prior is None else bool(check(user, prior))), after


def _buckets_of(
    slots: Mapping[Slot, dict[Sink, Fields]], event: Event
) -> list[tuple[Action, dict[Sink, Fields]]]:
    """The buckets of ``slots`` the change may reach as one of the actions it may become (see
    :data:`_ACTIONS_OF`), each with the action of its slot."""
    return [
        (action, bucket)
        for action in _ACTIONS_OF[event.action]
        for pk in (event.pk, None)
        if (bucket := slots.get((action, pk)))
    ]


#: The slot actions of the subscriptions a change may reach: its own and ALL_ACTIONS, and for
#: an update the create and delete it may become for a filtered or per-object-checked one.
_ACTIONS_OF = {
    Action.CREATE: (Action.CREATE, Action.ALL_ACTIONS),
    Action.DELETE: (Action.DELETE, Action.ALL_ACTIONS),
    Action.UPDATE: (Action.UPDATE, Action.CREATE, Action.DELETE, Action.ALL_ACTIONS),
}


def _slots_of(action: Action, pk: str) -> tuple[Slot, Slot, Slot, Slot]:
    """The index slots of subscriptions that take a change ``action`` of object ``pk``."""
    return (action, pk), (action, None), (Action.ALL_ACTIONS, pk), (Action.ALL_ACTIONS, None)


def _create_task(coroutine: Any, name: str | None = None) -> asyncio.Task[None]:
    """A task made in an empty context: a task copies the context it is made in, and an
    operation's (with its DIRECT target) would keep that connection alive as long as it runs."""
    return contextvars.Context().run(asyncio.get_running_loop().create_task, coroutine, name=name)


@dataclass(frozen=True)
class HubState:
    """What a hub holds at one moment (:meth:`Hub.state`): for tests and diagnostics.

    Example::

        state = get_hub().state()
        assert state.references == {"products": 2}
        assert not get_hub().state().busy  # every socket gone: nothing held, loop stopped
    """

    #: stream -> references held on it (the hub is a member of each of these streams' groups).
    references: Mapping[str, int]
    #: stream -> subscriptions indexed on it (a socket's (action, pk) pair counts once).
    subscriptions: Mapping[str, int]
    #: Whether the receive loop runs.
    receiving: bool
    #: Joins and leaves under way (a group membership may be changing).
    pending: int
    #: The hub's channel on the layer, once it has joined a group.
    channel: str | None

    @property
    def busy(self) -> bool:
        """Whether the hub holds anything: a reference, a subscription, a join or leave under
        way, or a running loop."""
        return bool(self.references or self.subscriptions or self.receiving or self.pending)


class Hub:
    """Group memberships, the subscriber index and the receive loop of one event loop."""

    def __init__(self, layer: ChannelLayer) -> None:
        self.layer = layer
        #: stream -> (action, pk or None) -> sink -> fields
        self.index: dict[str, dict[Slot, dict[Sink, Fields]]] = {}
        #: The same for filtered subscriptions: stream -> filter -> (action, pk) -> ...
        self.filtered: dict[str, dict[Where, dict[Slot, dict[Sink, Fields]]]] = {}
        #: stream -> the filters by the value they need (see ``Where.index``), and the others.
        self.filter_index: dict[str, _FilterIndex] = {}
        self.refs: Counter[str] = Counter()
        self.channel: str | None = None
        self.task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        #: Joins and leaves finishing after their caller was cancelled (strong references).
        self._detached: set[asyncio.Task[None]] = set()
        self.versions = Versions()
        #: (sink, stream) -> (epoch, offsets): events a resumed subscription was given from the
        #: history, which may still arrive live (sent after the history was read); dropped for
        #: that sink until an event past them arrives (see :meth:`exclude`).
        self.given: dict[tuple[Sink, str], tuple[str, frozenset[Offset], Offset]] = {}
        #: The offset order of the streams' live events across publishers.
        self.sequencer = Sequencer(layer, self._deliver)
        #: user key -> the signed-in connections of that user held on this loop.
        self.connections: dict[str, set[Revocable]] = {}

    # -- membership -------------------------------------------------------------------------

    # Join and leave run as tasks of their own that a cancelled caller does not stop: a Redis
    # group_add or group_discard cut short may still land, and the reference count would then
    # no longer match the membership (a process left in the group for good, or out of it while
    # it has subscribers).

    async def join(
        self,
        stream: str,
        sink: Sink | None = None,
        key: Key = EVERYTHING,
        fields: Fields = None,
    ) -> None:
        """Take one reference on ``stream``; the first one joins its group and starts receiving.
        With ``sink``, also index its subscription ``key`` (action, pk, where) with ``fields``,
        at the same moment: no event can fall between the two.

        Returns once the group membership is in place, so an event committed afterwards reaches
        this process. When the caller is cancelled meanwhile it holds nothing: the join completes
        in the background and is undone.
        """
        if self.refs[stream] > 0 and not self._lock.locked() and self._receiving():
            # Already a member, and no join or leave under way: nothing to await, so no task
            # (the common case of a subscribe: one task and shield fewer per subscriber).
            self._take(stream, sink, key, fields)
            return
        task = self._detach(self._join(stream, sink, key, fields))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda done: self._undo_join(stream, sink, key, done))
            raise

    def _undo_join(
        self, stream: str, sink: Sink | None, key: Key, task: asyncio.Task[None]
    ) -> None:
        if not task.cancelled() and task.exception() is None:
            if sink is not None:
                self.discard(sink, stream, *key)
            self._detach(self._leave(stream))

    async def leave(self, stream: str) -> None:
        """Drop one reference on ``stream``; the last one leaves its group, and when no stream is
        left the receive loop is told to stop. Completes even when the caller is cancelled."""
        if self.refs[stream] > 1 and not self._lock.locked():
            self.refs[stream] -= 1  # not the last reference: no group to leave, nothing to await
            return
        await asyncio.shield(self._detach(self._leave(stream)))

    def _take(self, stream: str, sink: Sink | None, key: Key, fields: Fields) -> None:
        """One more reference on ``stream`` (a member already), and ``sink``'s subscription."""
        self.refs[stream] += 1
        if sink is not None:
            action, pk, where = key
            self.add(sink, stream, action, pk, fields, where)

    def _receiving(self) -> bool:
        return self.task is not None and not self.task.done()

    @contextlib.asynccontextmanager
    async def subscribed(self, stream: str, sink: Sink, key: Key) -> AsyncIterator[None]:
        """Hold ``sink``'s subscription ``key`` (action, pk, where) to ``stream`` for the
        block."""
        await self.join(stream, sink, key)
        try:
            yield
        finally:
            self.discard(sink, stream, *key)
            await self.leave(stream)

    def _detach(self, coroutine: Any) -> asyncio.Task[None]:
        task = _create_task(coroutine)
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)
        return task

    async def _join(self, stream: str, sink: Sink | None, key: Key, fields: Fields) -> None:
        async with self._lock:
            if self.channel is None:
                # The default prefix matters: channels_redis receives every process-local
                # channel through one list named after it, and a custom one is never read.
                self.channel = await self.layer.new_channel()
            if self.refs[stream] == 0:
                await self.layer.group_add(self.group(stream), self.channel)
                try:
                    await self._sequence(stream)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await self.layer.group_discard(self.group(stream), self.channel)
                    raise
            self._take(stream, sink, key, fields)
            if self.task is None or self.task.done():
                self.task = _create_task(self._run(), name=HUB_TASK_NAME)

    async def _leave(self, stream: str) -> None:
        # The loop is stopped by a message on its own channel rather than cancelled: cancelling a
        # receive that is blocked in Redis can leave a stray cancellation on the task that awaits
        # it (seen with redis-py 8).
        async with self._lock:
            self.refs[stream] -= 1
            if self.refs[stream] > 0:
                return
            del self.refs[stream]
            self.sequencer.stop(stream)
            if self.channel is None:
                return
            with contextlib.suppress(Exception):
                await self.layer.group_discard(self.group(stream), self.channel)
            if not self.refs and self.task is not None:
                with contextlib.suppress(Exception):
                    await self.layer.send(self.channel, {"type": STOP_MESSAGE_TYPE})

    async def _sequence(self, stream: str) -> None:
        """Order ``stream``'s live events from the newest one its history holds now (on the
        in-memory layer, one publisher sends in order, and the history is off at size 0)."""
        if is_process_local(self.layer) or get_settings().HISTORY_SIZE <= 0:
            return
        if registration_for_stream(stream) is None:  # a group of the library's, no history
            return
        top = await read_top(self.layer, stream)
        self.sequencer.start(stream, top.epoch, top.offset)

    def group(self, stream: str) -> str:
        """The layer group of ``stream`` (``<GROUP_PREFIX>.<stream>``)."""
        return group_name(get_settings().GROUP_PREFIX, stream)

    def state(self) -> HubState:
        """A snapshot of what the hub holds (see :class:`HubState`)."""
        return HubState(
            references=MappingProxyType(dict(self.refs)),
            subscriptions=MappingProxyType(self._counts()),
            receiving=self.task is not None and not self.task.done(),
            pending=len(self._detached),
            channel=self.channel,
        )

    def _counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for stream, buckets in self.index.items():
            counts[stream] += sum(len(bucket) for bucket in buckets.values())
        for stream, filters in self.filtered.items():
            for buckets in filters.values():
                counts[stream] += sum(len(bucket) for bucket in buckets.values())
        return dict(counts)

    # -- revocation ---------------------------------------------------------------------------

    async def hold_connection(self, user_key: str, connection: Revocable) -> None:
        """Hold a signed-in user's connection, to end it when the user is revoked (the hub then
        listens to the revocations of every process)."""
        self.connections.setdefault(user_key, set()).add(connection)
        await self.join(REVOKE_STREAM)

    async def drop_connection(self, user_key: str, connection: Revocable) -> None:
        """Stop holding a connection taken by :meth:`hold_connection` (once)."""
        held = self.connections.get(user_key)
        if held is None or connection not in held:
            return
        held.discard(connection)
        if not held:
            del self.connections[user_key]
        await self.leave(REVOKE_STREAM)

    def revoke_local(self, user_key: str) -> int:
        """End every connection of the user held here (each drops itself as it closes); the
        number ended."""
        held = list(self.connections.get(user_key, ()))
        for connection in held:
            try:
                connection.revoke()
            except Exception:
                logger.exception("could not end a revoked connection")
        return len(held)

    # -- index ------------------------------------------------------------------------------

    def _slots(self, stream: str, where: Where | None, create: bool) -> dict[Slot, Any] | None:
        if where is None:
            return self.index.setdefault(stream, {}) if create else self.index.get(stream)
        filters = self.filtered.setdefault(stream, {}) if create else self.filtered.get(stream)
        if filters is None:
            return None
        slots = filters.get(where)
        if slots is None and create:
            slots = filters[where] = {}
            self.filter_index.setdefault(stream, _FilterIndex()).add(where)
        return slots

    def add(
        self,
        sink: Sink,
        stream: str,
        action: Action,
        pk: str | None,
        fields: Fields,
        where: Where | None = None,
    ) -> bool:
        """Index a subscription (the caller holds a :meth:`join` reference for it).

        Returns False when ``sink`` already had this (action, pk, where) subscription, whose
        fields are then replaced: the caller should drop its extra reference.
        """
        slots = self._slots(stream, where, create=True)
        assert slots is not None
        bucket = slots.setdefault((action, pk), {})
        existed = sink in bucket
        bucket[sink] = fields
        return not existed

    def exclude(self, sink: Sink, stream: str, events: list[Event]) -> None:
        """Keep ``events`` of ``stream`` (given to ``sink`` from the history) from reaching
        ``sink`` again live: an event in the history may still be on its way to this process.
        Forgotten once an event past them arrives for ``sink``."""
        places = [(c.epoch, c.offset) for c in (event_cursor(e.cursor) for e in events if e.cursor)]
        if places:
            epoch = places[-1][0]
            offsets = frozenset(offset for e, offset in places if e == epoch)
            self.given[(sink, stream)] = (epoch, offsets, max(offsets))

    def _given_already(self, sink: Sink, event: Event) -> bool:
        key = (sink, event.stream)
        given = self.given.get(key)
        if given is None:
            return False
        if event.cursor is not None:
            cursor = event_cursor(event.cursor)
            if cursor.epoch == given[0] and cursor.offset <= given[2]:
                return cursor.offset in given[1]
        del self.given[key]  # past them: nothing given can come any more
        return False

    def discard(
        self, sink: Sink, stream: str, action: Action, pk: str | None, where: Where | None = None
    ) -> bool:
        """Remove a subscription from the index; True if it was there."""
        buckets = self._slots(stream, where, create=False)
        if buckets is None:
            return False
        bucket = buckets.get((action, pk))
        if bucket is None or sink not in bucket:
            return False
        del bucket[sink]
        if self.given:
            self.given.pop((sink, stream), None)
        if not bucket:
            del buckets[(action, pk)]
            if not buckets:
                if where is None:
                    del self.index[stream]
                else:
                    filters = self.filtered[stream]
                    del filters[where]
                    self.filter_index[stream].remove(where)
                    if not filters:
                        del self.filtered[stream]
                        del self.filter_index[stream]
        return True

    # -- delivery ---------------------------------------------------------------------------

    def is_stale(self, event: Event) -> bool:
        """Whether to drop ``event`` (see :meth:`Versions.is_stale`)."""
        return self.versions.is_stale(event)

    def _deliver(self, event: Event) -> None:
        if not self.is_stale(event):
            self.dispatch(event)

    def dispatch(self, event: Event) -> int:
        """Hand ``event`` to every sink with a matching subscription, once per sink, with the
        union of its subscriptions' fields, if the stream's permission rules let the sink's user
        see it (asked once per user and event). Returns the number of sinks served.

        What a sink sees of an update depends on whether the object was visible to it before
        and is after: a filtered subscription's filter (each distinct filter is tested once;
        see :func:`seen_as`) and the stream's per-object rules for its user. An update
        that makes the object visible arrives as a create, one that hides it as a delete,
        marked ``moved`` (a delete that hides it from the user carries the object as the user
        could see it, before the update).
        """
        stream = event.stream
        buckets = self.index.get(stream)
        filters = self.filtered.get(stream)
        registration = registration_for_stream(stream)
        check = registration.event_check if registration is not None else None
        rights_may_move = check is not None and event.action is Action.UPDATE and bool(event.before)
        if not filters and not rights_may_move:
            if not buckets:
                return 0
            matching = [b for slot in _slots_of(event.action, event.pk) if (b := buckets.get(slot))]
            return self._serve(event, matching, check) if matching else 0
        prior = event.as_before() if event.action is Action.UPDATE and event.before else None
        # (filtered, (matched before, matches after), slot action, bucket)
        entries: list[tuple[bool, tuple[bool, bool], Action, dict[Sink, Fields]]] = []
        if buckets:
            entries += [(False, (True, True), a, b) for a, b in _buckets_of(buckets, event)]
        if filters:
            assert registration is not None  # a filtered subscription is of a registered stream
            columns = registration.filter_fields
            for where in self.filter_index[stream].candidates(event, columns):
                matched = matches_before_after(where, event, prior)
                if matched[0] or matched[1]:
                    entries += [
                        (True, matched, a, b) for a, b in _buckets_of(filters[where], event)
                    ]
        return self._serve_views(event, prior, entries, check) if entries else 0

    def _serve(
        self,
        event: Event,
        matching: list[dict[Sink, Fields]],
        check: Callable[[Any, Event], bool] | None,
    ) -> int:
        if len(matching) == 1:
            targets = matching[0]
        else:
            targets = {}
            for bucket in matching:
                for sink, fields in bucket.items():
                    targets[sink] = (
                        merge_fields(targets[sink], fields) if sink in targets else fields
                    )
        verdicts: dict[str | None, bool] = {}
        delivered = 0
        given = self.given
        for sink, fields in list(targets.items()):
            if given and self._given_already(sink, event):
                continue
            try:
                if check is not None:
                    user = sink.user
                    key = user_key(user)
                    allowed = verdicts.get(key)
                    if allowed is None:
                        allowed = verdicts[key] = bool(check(user, event))
                    if not allowed:
                        continue
                sink.push(event, fields)
                delivered += 1
            except Exception:
                logger.exception("a subscriber failed to take an event of stream %r", event.stream)
        return delivered

    def _serve_views(
        self,
        event: Event,
        prior: Event | None,
        entries: list[tuple[bool, tuple[bool, bool], Action, dict[Sink, Fields]]],
        check: Callable[[Any, Event], bool] | None,
    ) -> int:
        """Serve each sink the event as it sees it (see :meth:`dispatch`); ``prior``: an
        update's object as it was."""
        verdicts: dict[str | None, tuple[bool, bool]] = {}
        targets: dict[tuple[Sink, Event], Fields] = {}

        def add(sink: Sink, view: Event | None, slot_action: Action, fields: Fields) -> None:
            if view is None or slot_action not in (Action.ALL_ACTIONS, view.action):
                return
            target = (sink, view)
            targets[target] = merge_fields(targets[target], fields) if target in targets else fields

        for filtered, matched, slot_action, bucket in entries:
            if check is None:  # the same view for every sink of the bucket: worked out once
                view = seen_as(event, prior, filtered, matched, (True, True))
                for sink, fields in bucket.items():
                    add(sink, view, slot_action, fields)
                continue
            for sink, fields in bucket.items():
                try:
                    key = user_key(sink.user)
                    allowed = verdicts.get(key)
                    if allowed is None:
                        allowed = verdicts[key] = allowed_before_after(
                            check, sink.user, event, prior
                        )
                    add(
                        sink, seen_as(event, prior, filtered, matched, allowed), slot_action, fields
                    )
                except Exception:
                    logger.exception(
                        "a subscriber failed to take an event of stream %r", event.stream
                    )
        delivered = 0
        given = self.given
        for (sink, view), fields in targets.items():
            if given and self._given_already(sink, view):
                continue
            try:
                sink.push(view, fields)
                delivered += 1
            except Exception:
                logger.exception("a subscriber failed to take an event of stream %r", event.stream)
        return delivered

    async def _run(self) -> None:
        """Receive and dispatch events; renew group memberships; ride out layer outages."""
        refresh = asyncio.get_running_loop().create_task(self._refresh_memberships())
        try:
            await self._receive_loop()
        finally:
            refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresh

    async def _receive_loop(self) -> None:
        assert self.channel is not None
        failing = False
        while True:
            try:
                if failing:
                    # A layer that restarted (Redis without persistence) forgot the groups.
                    await self._rejoin()
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing and is_benign_timeout(exc):
                    # An idle blocking read that outlived the socket's read timeout.
                    continue
                if not failing:
                    logger.exception("channel layer failed; retrying every second until it is back")
                    failing = True
                await asyncio.sleep(1.0)
                continue
            if failing:
                logger.warning("channel layer is back; group memberships renewed")
                failing = False
            if message.get("type") == STOP_MESSAGE_TYPE:
                async with self._lock:
                    # A join after the stop was sent keeps the loop running.
                    if not self.refs:
                        self.task = None
                        return
                continue
            self.receive_message(message)

    async def _rejoin(self) -> None:
        async with self._lock:
            if self.channel is None:
                return
            for stream in list(self.refs):
                await self.layer.group_add(self.group(stream), self.channel)

    async def _refresh_memberships(self) -> None:
        """Group memberships expire (``group_expiry``, a day by default): renew them in time."""
        interval = max(1.0, min(float(getattr(self.layer, "group_expiry", 86400)) / 2, 3600.0))
        while True:
            await asyncio.sleep(interval)
            try:
                await self._rejoin()
            except Exception:
                logger.warning("could not renew channel-layer group memberships", exc_info=True)

    @property
    def listening(self) -> bool:
        """Whether any stream has a subscriber here (see ``layers.deliver_local``)."""
        return bool(self.refs)

    def receive_message(self, message: dict[str, Any]) -> None:
        """Dispatch one layer message: an event, or a batch of them in order (anything else is
        ignored); an event older than one already dispatched for its object is dropped."""
        kind = message.get("type")
        if kind == REVOKE_MESSAGE_TYPE:
            user = message.get("user")
            if isinstance(user, str):
                self.revoke_local(user)
            return
        if kind == BATCH_MESSAGE_TYPE:
            events = message.get("events")
            if not isinstance(events, list):
                logger.error("dropped a malformed event batch: %r", message)
                return
        elif kind == EVENT_MESSAGE_TYPE:
            events = [message]
        else:
            return
        for item in events:
            try:
                event = decode_event(item)
            except Exception:
                logger.exception("dropped a malformed event message: %r", item)
                continue
            self.sequencer.admit(event)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()
_hubs_lock = threading.Lock()


def get_hub() -> Hub:
    """The hub of the running event loop (one per server process in production)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        with _hubs_lock:
            layer = get_layer()
            tune_blocking_reads(layer)
            hub = _hubs[loop] = Hub(layer)
            add_local_receiver(loop, hub)
    return hub
