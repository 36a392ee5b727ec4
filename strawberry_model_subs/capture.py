"""What a transaction changed: one :class:`Change` per object and stream, handed over on commit.

The signal receivers (``bridge``) and :func:`~strawberry_model_subs.notify` record changes here.
Outside a transaction a change is committed already and goes to the publisher at once. Inside
one, it is held until the transaction commits, then the changes of each object coalesce:

=========================  ==========================
recorded in one commit     sent
=========================  ==========================
create, update...          one ``create``
update, update...          one ``update``
create ... delete          nothing
update ... delete          one ``delete``
delete ... create          one ``update``
=========================  ==========================

Objects keep the order in which they were first changed. A change made inside a savepoint that
is rolled back is forgotten, as Django forgets its ``on_commit`` callbacks.

How: each change registers a tiny ``on_commit`` callback of its own (so Django drops it with its
savepoint), and the transaction's batch keeps one more entry at the end of the connection's
``run_on_commit`` list, with no savepoint, that runs after them and hands the survivors over.
``run_on_commit`` is an attribute of Django's connection that ``on_commit`` and
``captureOnCommitCallbacks`` use too; its entries are ``(savepoint ids, callable, robust)``.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connections

from .events import Action, encode_data
from .registry import Registration

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Change:
    """One object of one stream changed.

    ``data`` is its representation (JSON text): a delete's is taken before the row goes; a
    save's (``instance``) on commit, with ``values``, the instance's column values it was made
    from. A change with neither (many-to-many, ``notify()``, bulk writes) is read back by the
    publisher.
    """

    registration: Registration
    pk: Any
    action: Action
    data: str | None = None
    instance: Any = None
    values: tuple[Any, ...] | None = None
    #: When it was queued for publishing, on this process's :func:`touch` clock (queue order).
    seq: int = 0
    #: When the save began (its ``pre_save``, before its commit), on the same clock; 0 unknown.
    began: int = 0
    #: The saving thread (``threading.get_ident()``): one thread's commits are in order.
    writer: int = 0
    #: An update's values before it of the filterable fields it changed (see ``bridge``).
    before: dict[str, Any] | None = None


_clock = itertools.count(1)
#: (model, pk) -> the clock when a save of it last began in this process.
_touched: dict[tuple[Any, str], int] = {}
MAX_TOUCHED = 100_000


class _Began(threading.local):
    """Each thread's saves under way: (model, pk) -> the clock at their ``pre_save``."""

    def __init__(self) -> None:
        self.saves: dict[tuple[Any, str], int] = {}


_began = _Began()


def touch(model: Any, pk: Any) -> None:
    """A save of ``model`` ``pk`` begins in this process (``pre_save``): its event will follow."""
    if pk is None:
        return
    key = (model, str(pk))
    _touched.pop(key, None)
    _touched[key] = stamp = next(_clock)
    saves = _began.saves
    saves[key] = stamp
    if len(_touched) > MAX_TOUCHED:
        for old in list(itertools.islice(_touched, MAX_TOUCHED // 2)):
            _touched.pop(old, None)
    if len(saves) > MAX_TOUCHED:  # saves that raised before their post_save
        saves.clear()


def saved(model: Any, pk: Any) -> int:
    """The clock when this thread's save of the object began (its ``pre_save``), taken before
    the row was written; 0 if unknown (a create: it had no primary key yet)."""
    return _began.saves.pop((model, str(pk)), 0)


def now() -> int:
    """The clock's next value: later than every stamp taken so far in this process."""
    return next(_clock)


def touched_since(model: Any, pk: Any, seq: int) -> bool:
    """Whether a save of the object began in this process after ``seq``."""
    return _touched.get((model, str(pk)), 0) > seq


#: Where committed changes go: ``(database alias, changes)``; set by the publisher.
Sink = Callable[[str, list[Change]], None]
_sink: Sink | None = None


def set_sink(sink: Sink) -> None:
    """Hand committed changes to ``sink`` from now on (the publisher sets itself when imported);
    while none is set, a commit that changed a registered model raises RuntimeError."""
    global _sink
    _sink = sink


class _Token:
    __slots__ = ("change", "confirmed")

    def __init__(self, change: Change) -> None:
        self.change = change
        self.confirmed = False

    def __call__(self) -> None:
        self.confirmed = True


class _Batch:
    """The changes recorded in one transaction of one connection."""

    def __init__(self, using: str) -> None:
        self.using = using
        self.tokens: list[_Token] = []
        self.flush_entry: Callable[[], None] = self._new_flush()

    # Entries are matched by their callable: a savepoint rollback rebuilds the list's tuples.

    def _new_flush(self) -> Callable[[], None]:
        def flush() -> None:
            # An earlier entry, left behind when another callback was queued after it, is void.
            if self.flush_entry is flush:
                self.flush()

        return flush

    def alive(self, pending: list[Any]) -> bool:
        if pending and pending[-1][1] is self.flush_entry:
            return True
        return any(item[1] is self.flush_entry for item in pending)

    def add(self, connection: Any, change: Change) -> None:
        pending = connection.run_on_commit
        if pending and pending[-1][1] is self.flush_entry:
            pending.pop()
        else:
            self.flush_entry = self._new_flush()
        token = _Token(change)
        self.tokens.append(token)
        connection.on_commit(token)
        # With no savepoint ids: no rollback of a savepoint removes it.
        connection.run_on_commit.append((set(), self.flush_entry, False))

    def flush(self) -> None:
        if _batches.by_alias.get(self.using) is self:
            del _batches.by_alias[self.using]
        try:
            changes = coalesce(t.change for t in self.tokens if t.confirmed)
            if changes:
                _emit(self.using, changes)
        except Exception:
            logger.exception("could not hand over the events of a commit; they are lost")


class _Batches(threading.local):
    """Each thread's open batch per database alias (connections are per thread too)."""

    def __init__(self) -> None:
        self.by_alias: dict[str, _Batch] = {}


_batches = _Batches()


def record(using: str | None, changes: Iterable[Change]) -> None:
    """Record committed-or-about-to-be changes made through connection ``using``."""
    alias = using or "default"
    connection = connections[alias]
    if not connection.in_atomic_block:
        batch = list(changes)
        if batch:
            _emit(alias, batch)
        return
    current = _batches.by_alias.get(alias)
    if current is None or not current.alive(connection.run_on_commit):
        current = _batches.by_alias[alias] = _Batch(alias)
    for change in changes:
        current.add(connection, change)


def coalesce(changes: Iterable[Change]) -> list[Change]:
    """One change per (stream, object), by the module docstring's table, in first-seen order."""
    first: dict[tuple[str, Any], Change] = {}
    last: dict[tuple[str, Any], Change] = {}
    #: Per object, each filterable field's value before the first update that changed it.
    before: dict[tuple[str, Any], dict[str, Any]] = {}
    for change in changes:
        key = (change.registration.stream, str(change.pk))
        first.setdefault(key, change)
        last[key] = change
        if change.before:
            earliest = before.setdefault(key, {})
            for name, value in change.before.items():
                earliest.setdefault(name, value)
    result = []
    for key, head in first.items():
        tail = last[key]
        existed = head.action is not Action.CREATE
        exists = tail.action is not Action.DELETE
        if existed and exists:
            action = Action.UPDATE
        elif exists:
            action = Action.CREATE
        elif existed:
            action = Action.DELETE
        else:
            continue
        merged = before.get(key) if action is Action.UPDATE else None
        if action is tail.action and merged == tail.before:
            result.append(tail)
        else:
            result.append(dataclasses.replace(tail, action=action, before=merged))
    return result


def column_values(instance: Any) -> tuple[Any, ...]:
    """What the publisher compares with the row it reads back (see ``publisher``)."""
    return tuple(getattr(instance, f.attname) for f in instance._meta.concrete_fields)


def serialize(registration: Registration, instance: Any, action: Action) -> str | None:
    """The JSON text of ``instance``'s representation for an event, or None, logged, when the
    serializer raises (the change is committed whatever happens to its event)."""
    try:
        return encode_data(registration.serialize(instance))
    except Exception:
        logger.exception(
            "%s could not serialize %s pk=%r for a %s event on stream %r; no event was sent",
            registration.serializer_class.__name__,
            registration.model_label,
            instance.pk,
            action.value,
            registration.stream,
        )
        return None


def _serialized(change: Change) -> Change | None:
    """A committed save, serialized from its instance (None when the serializer fails)."""
    if change.instance is None or change.data is not None:
        return change
    instance = change.instance
    if instance.pk is None:
        # Deleted later in the same transaction: Django has cleared the primary key.
        instance = copy.copy(instance)
        instance.pk = change.pk
    data = serialize(change.registration, instance, change.action)
    if data is None:
        return None
    values = column_values(instance)
    return dataclasses.replace(change, data=data, instance=None, values=values)


def _emit(using: str, changes: list[Change]) -> None:
    if _sink is None:
        raise RuntimeError("no publisher is set up (is strawberry_model_subs in INSTALLED_APPS?)")
    ready = [c for c in map(_serialized, changes) if c is not None]
    if ready:
        _sink(using, ready)
