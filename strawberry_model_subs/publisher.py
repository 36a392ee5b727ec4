"""The publisher: committed changes to channel-layer events, off the saving thread, in order.

A save hands its committed :class:`~strawberry_model_subs.capture.Change` objects to this
process's publisher and returns: it never waits on Redis. One thread per process ("strawberry-
model-subs publisher") then, for everything pending, in order:

1. takes a **version** for each change: one ``EVAL`` on the layer's Redis (a counter per stream,
   with an epoch that changes when Redis loses its data), or a counter of the process on the
   in-memory layer; the same ``EVAL`` records each object's last **writer** (a saving thread of
   a process; Redis forgets it after ``WRITER_TTL`` seconds) and answers the one before;
2. **reads** back from the database, one query per model, the objects whose change has no
   representation of its own (many-to-many changes, ``notify()``, bulk writes) and those whose
   last change might not be their committed state (see ``_skip_reads``: another writer took a
   version of the object since this thread's last one), and serializes each once (a delete
   carries the representation taken before the row went);
3. **sends** one message per stream to its group (``BatchMessage``).

Reading after taking the version is what makes the last event of an object carry its committed
state when several writers change it at once: every writer reads after its own commit, so the
read with the highest version is the latest of all, and hubs drop an event older than one they
dispatched (see ``hub``). A thread whose save of an object follows its own earlier one, with no
other writer's version between, needs no read: nothing can have committed after it. An object
that is gone by then sends no update: its delete follows.

Under a steady stream of saves a round gathers what arrives within ``BATCH_WINDOW`` of the
previous round; a change after a quiet spell is sent at once.

When the layer (or the database) fails, the pending changes are kept, up to
``PUBLISH_BUFFER_SIZE`` (the oldest are dropped beyond, and counted), and published in order once
it is back; the outage, the recovery and any loss are each logged once, with counts. At exit (an
interpreter exit, a Celery pool process shutting down) whatever is pending is published first,
for up to ``PUBLISH_EXIT_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable, Set
from typing import Any

from django.db import connections
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper

from .capture import Change, column_values, now, serialize, set_sink, touched_since
from .conf import get_settings
from .cursors import Cursor, new_epoch, parse_offset
from .events import (
    Action,
    BatchMessage,
    EventMessage,
    encode_data,
    event_message,
    group_name,
    pk_key,
)
from .history import (
    APPEND_SCRIPT,
    entry_fields,
    get_local_history,
    history_key,
    mark_key,
    newest_key,
)
from .layers import (
    ChannelLayer,
    deliver_local,
    get_layer,
    is_process_local,
    redis_host,
    redis_key_prefix,
)

logger = logging.getLogger(__name__)

#: Seconds the first round after an outage waits before sending: a Redis that restarted has
#: forgotten the group memberships, which hubs renew within a second of it being back.
REJOIN_GRACE = 2.0

#: Seconds without changes after which the publishing thread closes its database connections.
IDLE_CLOSE = 1.0

#: Changes published in one round (one EVAL, one read per model, one message per stream).
BATCH_SIZE = 500

#: Seconds a round waits for more changes when the previous round ended less than this ago:
#: under a steady stream of saves, fewer and larger rounds cost the saving threads less (the
#: publisher holds the GIL for a round's work); a save after a quiet spell is sent at once.
BATCH_WINDOW = 0.005

#: Seconds Redis remembers which writer last took a version of an object (see _skip_reads).
WRITER_TTL = 60

#: Objects whose last round this process remembers (see _skip_reads); forgotten beyond.
MAX_SEEN = 100_000

#: KEYS: the epoch, one version counter per stream, one last-writer key per change.
#: ARGV: a new epoch, the number of streams, the count per stream, WRITER_TTL, the writer of
#: each change. Returns the epoch, the top version per stream, then each change's previous
#: writer of its object ('' when unknown).
VERSION_SCRIPT = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
    epoch = ARGV[1]
    redis.call('SET', KEYS[1], epoch)
end
local n = tonumber(ARGV[2])
local out = {epoch}
for i = 1, n do
    out[i + 1] = redis.call('INCRBY', KEYS[i + 1], ARGV[i + 2])
end
local ttl = ARGV[n + 3]
for j = n + 2, #KEYS do
    out[#out + 1] = redis.call('GET', KEYS[j]) or ''
    redis.call('SET', KEYS[j], ARGV[j + 2], 'EX', ttl)
end
return out
"""


class _Outage(Exception):
    """The layer or the database failed; the round is retried."""


class Publisher:
    """Pending changes and the thread that publishes them (one per process)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: deque[tuple[str, Change]] = deque()
        self._busy = False
        self._thread: threading.Thread | None = None
        self._dropped = 0
        #: Names this process's writers in Redis (a forked child gets a publisher of its own).
        self._token = secrets.token_hex(6)
        #: (stream, pk) -> the clock right after the last round that took a version of it.
        self._seen: dict[tuple[str, str], int] = {}
        #: (stream, pk) -> its last writer, on the in-memory layer (Redis keeps it otherwise).
        self._last_writer: dict[tuple[str, str], str] = {}
        self._counters: dict[str, int] = {}
        self._redis: Any = None
        self._redis_host: dict[str, Any] | None = None
        self._after_outage = False
        self._release = False
        self._last_round = 0.0
        self._gathering = False

    # -- the saving side ----------------------------------------------------------------------

    def put(self, using: str, changes: list[Change]) -> None:
        """Queue committed changes; returns at once."""
        if _reads_here(using):
            # Nothing to check against later either: no other connection sees these rows.
            read = [_with_data(using, change) for change in changes]
            changes = [c for c in read if c is not None]
        limit = max(1, get_settings().PUBLISH_BUFFER_SIZE)
        with self._cond:
            # Stamped under the lock: a save whose pre_save comes later is queued later.
            self._pending.extend(
                (using, dataclasses.replace(change, seq=now())) for change in changes
            )
            overflow = len(self._pending) - limit
            if overflow > 0:
                for _ in range(overflow):
                    self._pending.popleft()
                if not self._dropped:
                    logger.error(
                        "%d event(s) waiting to be published exceed PUBLISH_BUFFER_SIZE=%d: "
                        "dropping the oldest (the count follows when publishing resumes)",
                        limit + overflow,
                        limit,
                    )
                self._dropped += overflow
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="strawberry-model-subs publisher", daemon=True
                )
                self._thread.start()
            if not self._gathering or len(self._pending) >= BATCH_SIZE:
                # A gathering publisher wakes up on its own: a wake-up per save would hand it
                # the GIL at every save, the cost the window is there to save.
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is published; False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def release_connections(self, timeout: float = 10.0) -> bool:
        """Flush, then have the publishing thread close its database connections (before a
        test database is dropped, say); False if that did not happen within ``timeout``."""
        if not self.flush(timeout):
            return False
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                return True
            self._release = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._release, timeout)

    def pending(self) -> int:
        """The changes queued and not yet taken, plus one while a round is being published."""
        with self._cond:
            return len(self._pending) + (1 if self._busy else 0)

    # -- the publishing thread ----------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        failing: str | None = None
        backoff = 0.1
        while True:
            with self._cond:
                while not self._pending:
                    self._busy = False
                    self._cond.notify_all()
                    if (not self._cond.wait(IDLE_CLOSE) or self._release) and not self._pending:
                        # Idle: give the database connections of this thread back.
                        self._release = False
                        _close_connections()
                        self._cond.notify_all()
                        self._cond.wait()
                self._busy = True
                if time.monotonic() - self._last_round < BATCH_WINDOW:
                    self._gathering = True
                    self._cond.wait_for(lambda: len(self._pending) >= BATCH_SIZE, BATCH_WINDOW)
                    self._gathering = False
                batch = [
                    self._pending.popleft() for _ in range(min(BATCH_SIZE, len(self._pending)))
                ]
            try:
                self._publish(batch, loop)
            except _Outage as exc:
                self._after_outage = True
                with self._cond:
                    self._pending.extendleft(reversed(batch))
                    kept = len(self._pending)
                if failing is None:
                    failing = str(exc.__cause__ or exc)
                    logger.error(
                        "could not publish events (%s): %d event(s) kept, publishing them when "
                        "it is back",
                        failing,
                        kept,
                    )
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            except Exception:
                logger.exception("could not publish %d event(s); they are lost", len(batch))
            backoff = 0.1
            self._last_round = time.monotonic()
            if failing is not None or self._dropped:
                with self._cond:
                    dropped, self._dropped = self._dropped, 0
                    kept = len(self._pending) + len(batch)
                if dropped:
                    logger.error(
                        "publishing resumed; %d event(s) were lost because the buffer was full "
                        "(PUBLISH_BUFFER_SIZE)",
                        dropped,
                    )
                if failing is not None:
                    logger.warning("publishing resumed: sending the %d kept event(s)", kept)
                failing = None

    def _publish(self, batch: list[tuple[str, Change]], loop: asyncio.AbstractEventLoop) -> None:
        layer = get_layer()
        prefix = get_settings().GROUP_PREFIX
        local = is_process_local(layer)
        streams = list(dict.fromkeys(change.registration.stream for _, change in batch))
        # Two versions per change: its own, and one for a follow-up (see _read).
        counts = {s: 0 for s in streams}
        for _, change in batch:
            counts[change.registration.stream] += 2
        writers = [self._writer(change) for _, change in batch]
        if local:
            epoch, tops = get_local_history().epoch, {}
            for stream, count in counts.items():
                tops[stream] = self._counters[stream] = self._counters.get(stream, 0) + count
            previous = self._local_writers(batch, writers)
        else:
            try:
                epoch, tops, previous = loop.run_until_complete(
                    self._versions(layer, redis_key_prefix(layer), counts, batch, writers)
                )
            except Exception as exc:
                self._redis = None
                # It may have been taken all the same, the reply lost: forget what we knew.
                self._seen.clear()
                raise _Outage("the channel layer's Redis does not answer") from exc
        skip = self._skip_reads(batch, writers, previous, now())
        if self._after_outage:
            time.sleep(REJOIN_GRACE)
            self._after_outage = False
        next_version = {s: tops[s] - counts[s] + 1 for s in streams}
        data, follow = self._read(batch, skip=skip)
        messages: dict[str, list[EventMessage]] = {s: [] for s in streams}
        for i, ((_using, change), raw) in enumerate(zip(batch, data, strict=True)):
            stream = change.registration.stream
            version = next_version[stream]
            next_version[stream] += 2
            model = change.registration.model_label
            if raw is not None:
                message = event_message(stream, change.action, model, change.pk, None, raw=raw)
                message["epoch"] = epoch
                message["version"] = version
                if change.before:
                    message["before"] = encode_data(change.before)
                messages[stream].append(message)
            if i in follow:
                message = event_message(
                    stream, Action.UPDATE, model, change.pk, None, raw=follow[i]
                )
                message["epoch"] = epoch
                message["version"] = version + 1
                message["followup"] = True
                if raw is not None and change.registration.filter_fields:
                    # Before the follow-up, the object was as the event it follows showed it.
                    shown = json.loads(raw)
                    columns = change.registration.filter_fields
                    message["before"] = encode_data({k: shown.get(k) for k in columns})
                messages[stream].append(message)
        self._historize(messages, epoch, local, loop)
        batches: list[tuple[str, BatchMessage]] = [
            (
                group_name(prefix, stream),
                {"type": "sms.events", "stream": stream, "events": m},
            )
            for stream, m in messages.items()
            if m
        ]
        if not batches:
            return
        if local:
            # The in-memory layer is not thread-safe: hand the messages to each hub's own loop.
            for _, batch_message in batches:
                deliver_local(dict(batch_message))
            return
        try:
            loop.run_until_complete(_send_all(layer, batches))
        except Exception as exc:
            raise _Outage("the channel layer failed") from exc

    def _historize(
        self,
        messages: dict[str, list[EventMessage]],
        epoch: str,
        local: bool,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Append the round's events to their streams' histories, giving each its cursor and
        the offset of the event before it (nothing when ``HISTORY_SIZE`` is 0)."""
        options = get_settings()
        if options.HISTORY_SIZE <= 0:
            return
        streams = [stream for stream, m in messages.items() if m]
        if not streams:
            return
        if local:
            history = get_local_history()
            placed = {
                stream: history.append(
                    stream, messages[stream], options.HISTORY_SIZE, options.HISTORY_TTL
                )
                for stream in streams
            }
        else:
            try:
                placed = loop.run_until_complete(self._append(streams, messages, epoch))
            except Exception as exc:
                # The round is taken again, versions included: forget what this one learnt.
                self._seen.clear()
                if isinstance(exc, _Outage):
                    raise
                self._redis = None
                raise _Outage("the channel layer's Redis does not answer") from exc
        for stream, (before, offsets) in placed.items():
            prev = before
            kept = []
            for message, offset in zip(messages[stream], offsets, strict=True):
                if not offset:
                    continue  # older than what the history holds of its object
                message["cursor"] = Cursor(epoch, parse_offset(offset)).encode()
                message["prev"] = prev
                prev = offset
                kept.append(message)
            messages[stream] = kept

    async def _append(
        self, streams: list[str], messages: dict[str, list[EventMessage]], epoch: str
    ) -> dict[str, tuple[str, list[str]]]:
        assert self._redis is not None  # the round's versions connected it
        options = get_settings()
        prefix = redis_key_prefix(get_layer())
        keys = [f"{prefix}.epoch"]
        args: list[Any] = [
            epoch,
            options.HISTORY_SIZE,
            int(options.HISTORY_TTL * 1000),
            WRITER_TTL,
            len(streams),
        ]
        for stream in streams:
            keys += [history_key(prefix, stream), mark_key(prefix, stream)]
            args.append(len(messages[stream]))
            for message in messages[stream]:
                args += entry_fields(message)
        for stream in streams:
            keys += [newest_key(prefix, stream, m["pk"]) for m in messages[stream]]
        reply = await self._redis.eval(APPEND_SCRIPT, len(keys), *keys, *args)
        if not reply:
            # Redis lost its data between the round's versions and now: take them again.
            raise _Outage("the channel layer's Redis lost its data during a round")
        texts = [r.decode() if isinstance(r, bytes) else str(r) for r in reply]
        placed: dict[str, tuple[str, list[str]]] = {}
        at = 0
        for stream in streams:
            count = len(messages[stream])
            placed[stream] = (texts[at], texts[at + 1 : at + 1 + count])
            at += 1 + count
        return placed

    def _writer(self, change: Change) -> str:
        return f"{self._token}.{change.writer}"

    def _local_writers(self, batch: list[tuple[str, Change]], writers: list[str]) -> list[str]:
        """What the version script answers on Redis, kept in the process for the in-memory
        layer (its threads are the only writers whose events its subscribers get)."""
        last = self._last_writer
        if len(last) + len(batch) > MAX_SEEN:
            last.clear()
        previous = []
        for (_using, change), writer in zip(batch, writers, strict=True):
            key = (change.registration.stream, pk_key(change.pk))
            previous.append(last.get(key, ""))
            last[key] = writer
        return previous

    def _skip_reads(
        self, batch: list[tuple[str, Change]], writers: list[str], previous: list[str], after: int
    ) -> set[int]:
        """The changes of the round whose read-back check is not needed (see ``_read``).

        The check is skipped for the last change ``c`` of an object when every change of the
        object in this round comes from the thread that made ``c``, the version before them was
        taken by that same thread (Redis' last writer of the object), and ``c``'s save began
        after the round that took that version had its versions. Then no other writer can have
        committed the object after ``c``: such a commit precedes its own version, which precedes
        that earlier round's, which precedes ``c``'s save. One thread's commits and hand-overs
        are in order, so ``c`` is the object's committed state, and its event the last.
        ``after`` is the clock right after this round's versions came back.
        """
        first: dict[tuple[str, str], int] = {}
        last: dict[tuple[str, str], int] = {}
        mixed: set[tuple[str, str]] = set()
        for i, (_using, change) in enumerate(batch):
            key = (change.registration.stream, pk_key(change.pk))
            head = first.setdefault(key, i)
            if writers[head] != writers[i]:
                mixed.add(key)
            last[key] = i
        skip = set()
        seen = self._seen
        for key, i in last.items():
            change = batch[i][1]
            before = seen.get(key)
            if (
                key not in mixed
                and before is not None
                and change.began > before
                and previous[first[key]] == writers[i]
            ):
                skip.add(i)
        if len(seen) + len(last) > MAX_SEEN:
            seen.clear()
        for key in last:
            seen[key] = after
        return skip

    async def _versions(
        self,
        layer: Any,
        prefix: str,
        counts: dict[str, int],
        batch: list[tuple[str, Change]],
        writers: list[str],
    ) -> tuple[str, dict[str, int], list[str]]:
        host = redis_host(layer)
        if self._redis is None or self._redis_host != host:
            # channels_redis is an optional dependency: imported only for its layers.
            import redis.asyncio as aioredis
            from channels_redis.utils import create_pool

            self._redis = aioredis.Redis(connection_pool=create_pool(host))
            self._redis_host = host
        streams = list(counts)
        keys = [
            f"{prefix}.epoch",
            *(f"{prefix}.version.{s}" for s in streams),
            *(f"{prefix}.writer.{c.registration.stream}.{pk_key(c.pk)}" for _, c in batch),
        ]
        args = [new_epoch(), len(streams), *(counts[s] for s in streams), WRITER_TTL, *writers]
        result = await self._redis.eval(VERSION_SCRIPT, len(keys), *keys, *args)
        texts = [r.decode() if isinstance(r, bytes) else str(r) for r in result]
        tops = {s: int(v) for s, v in zip(streams, texts[1 : 1 + len(streams)], strict=True)}
        return texts[0], tops, texts[1 + len(streams) :]

    def _read(
        self, batch: list[tuple[str, Change]], skip: Set[int] = frozenset()
    ) -> tuple[list[str | None], dict[int, str]]:
        """The JSON text of each change's event, and the follow-ups: ``{index: JSON}``.

        Each change keeps the representation it was recorded with (one read back now when it
        has none: many-to-many changes, ``notify()``, bulk writes; none if the row is gone).
        The last change of each object in the round, unless ``skip`` holds it, is checked
        against the row as it is now, read after the versions were taken: when the row has
        other values and no save of it began in this process after this change was queued,
        another writer committed after this change but took its version first, and a follow-up
        ``update`` with the row as it is goes out after it.
        """
        last: dict[tuple[str, str, str], int] = {}
        for i, (using, change) in enumerate(batch):
            last[(using, change.registration.stream, pk_key(change.pk))] = i
        wanted: dict[tuple[str, str], tuple[Any, set[Any]]] = {}
        lasts = set(last.values())
        for i, (using, change) in enumerate(batch):
            checked = i in lasts and change.values is not None and i not in skip
            if change.data is None or checked:
                key = (using, change.registration.stream)
                wanted.setdefault(key, (change.registration, set()))[1].add(change.pk)
        rows: dict[tuple[str, str, str], Any] = {}
        for (using, stream_name), (registration, pks) in wanted.items():
            try:
                objects = _fetch(using, registration.model, pks)
            except Exception as exc:
                connections[using].close()
                raise _Outage("the database does not answer") from exc
            for obj in objects:
                rows[(using, stream_name, pk_key(obj.pk))] = obj
        result: list[str | None] = []
        follow: dict[int, str] = {}
        for i, (using, change) in enumerate(batch):
            found = (using, change.registration.stream, pk_key(change.pk))
            if change.data is None:
                row = rows.get(found)
                result.append(
                    None if row is None else serialize(change.registration, row, Action.UPDATE)
                )
                continue
            row = rows.get(found) if last[found] == i else None
            result.append(change.data)
            if (
                row is not None
                and change.values is not None
                and column_values(row) != change.values
                and not touched_since(change.registration.model, change.pk, change.seq)
            ):
                raw = serialize(change.registration, row, Action.UPDATE)
                if raw is not None:
                    follow[i] = raw
        return result, follow


def _close_connections() -> None:
    for connection in connections.all(initialized_only=True):
        connection.close()


def _fetch(using: str, model: Any, pks: Iterable[Any]) -> list[Any]:
    # The base manager: a default manager may hide rows (soft deletes) the event must show.
    return list(model._base_manager.using(using).filter(pk__in=list(pks)))


def _reads_here(using: str) -> bool:
    """Whether only this thread's connection can see what was committed: inside an atomic block
    (``captureOnCommitCallbacks`` in a ``TestCase``) or on an in-memory SQLite database."""
    connection = connections[using]
    if connection.in_atomic_block:
        return True
    return isinstance(connection, SQLiteWrapper) and connection.is_in_memory_db()


def _with_data(using: str, change: Change) -> Change | None:
    if change.data is not None and change.values is None:
        return change
    objects = _fetch(using, change.registration.model, [change.pk])
    if change.data is not None:
        # The row as committed, if the instance held something else (a rolled-back savepoint).
        if not objects or column_values(objects[0]) == change.values:
            return Change(
                change.registration, change.pk, change.action, change.data, before=change.before
            )
    elif not objects:
        return None
    raw = serialize(change.registration, objects[0], change.action)
    if raw is None:
        return None
    return Change(change.registration, change.pk, change.action, raw, before=change.before)


async def _send_all(layer: ChannelLayer, batches: list[tuple[str, BatchMessage]]) -> None:
    await asyncio.gather(*(layer.group_send(group, message) for group, message in batches))


_publisher = Publisher()
_publisher_pid = os.getpid()


def get_publisher() -> Publisher:
    """This process's publisher (a forked child gets a fresh one)."""
    global _publisher, _publisher_pid
    if _publisher_pid != os.getpid():
        _publisher, _publisher_pid = Publisher(), os.getpid()
    return _publisher


def _put(using: str, changes: list[Change]) -> None:
    get_publisher().put(using, changes)


set_sink(_put)


def flush_events(timeout: float | None = 10.0) -> bool:
    """Wait until every event this process committed so far is published to the channel layer.

    Saves never wait for their events; a script or a test that must know they are out calls this.
    Returns False when ``timeout`` seconds pass first (the layer is down, say).

    Example::

        product.save()
        flush_events()  # the event is on the layer: safe to exit, or to assert on a client
    """
    return get_publisher().flush(timeout)


def flush_at_exit(*args: Any, **kwargs: Any) -> None:
    """Publish what is pending before the process exits (``atexit``, Celery's
    ``worker_process_shutdown``); logs what could not be published in time."""
    publisher = get_publisher()
    if publisher.pending() and not publisher.flush(get_settings().PUBLISH_EXIT_TIMEOUT):
        logger.error(
            "the process exits with %d event(s) not published (PUBLISH_EXIT_TIMEOUT=%ss)",
            publisher.pending(),
            get_settings().PUBLISH_EXIT_TIMEOUT,
        )
