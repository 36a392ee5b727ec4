"""The history of each stream: its recent events, by offset, shared by every process.

The publisher appends each round's events to the history of their stream as it sends them; the
history gives each event its offset (see ``cursors``) and the offset of the event before it in
the stream (``prev``), in one atomic step, so offsets increase in publish order. It keeps at
most ``HISTORY_SIZE`` events per stream and none older than ``HISTORY_TTL`` seconds, and
remembers the newest offset it dropped (the *trim mark*): a cursor below the mark may have
missed dropped events and is expired; one at or above it can be resumed exactly.

* On the Redis layers the history is a Redis Stream per stream (``<prefix>.history.<stream>``,
  the prefix of ``layers.redis_key_prefix``; entry ids are the offsets), written with the trim
  mark by one script per round (:data:`APPEND_SCRIPT`) and read by another
  (:data:`READ_SCRIPT`), beside the epoch the versions use: a Redis that lost its data has a
  new epoch, and every older cursor expires. What crosses Redis per event does not grow with
  the number of subscribers.
* On the in-memory layer it is kept in the process (:class:`LocalHistory`), under the
  publisher's epoch, which is new in every process.

Each entry holds what a subscriber needs to receive the event again: its action, model, pk,
data (the JSON text sent live), version and whether it was a follow-up.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .conf import get_settings
from .cursors import Cursor, Offset, format_offset, new_epoch, parse_offset
from .events import EventMessage
from .exceptions import CursorExpired, CursorInvalid
from .layers import is_process_local, redis_eval, redis_key_prefix

# Trims one stream (KEYS[k] its history, KEYS[k + 1] its trim mark) to `size` entries and
# `ttl` ms, remembering the newest entry id dropped as the trim mark.
_TRIM = """
local function trim(key, mark_key, size, ttl)
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local mark = nil
    local length = redis.call('XLEN', key)
    if length > size then
        local gone = redis.call('XRANGE', key, '-', '+', 'COUNT', length - size)
        mark = gone[#gone][1]
        redis.call('XTRIM', key, 'MAXLEN', size)
    end
    local oldest = (now - ttl) .. '-0'
    local old = redis.call('XREVRANGE', key, '(' .. oldest, '-', 'COUNT', 1)
    if #old > 0 then
        mark = old[1][1]
        redis.call('XTRIM', key, 'MINID', oldest)
    end
    if mark then
        redis.call('SET', mark_key, mark)
    end
end

local function top(key, mark_key)
    local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
    if #last > 0 then
        return last[1][1]
    end
    return redis.call('GET', mark_key) or '0-0'
end
"""

#: KEYS: the epoch, then per stream its history and its trim mark, then per event the key of
#: its object's newest version in the history. ARGV: the epoch the round's versions were taken
#: in, HISTORY_SIZE, HISTORY_TTL in ms, the seconds an object's newest version is remembered,
#: the number of streams, then per stream the number of its events followed by each event's
#: fields (see entry_fields). Returns false when the epoch changed meanwhile (Redis lost its
#: data: the round is taken again), else per stream the offset before its first event, then
#: each event's offset, or '' for an event older than one of its object the history holds
#: (a slower writer's: it is not sent, as hubs would drop it).
APPEND_SCRIPT = (
    _TRIM
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return false
end
local size = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local remember = ARGV[4]
local streams = tonumber(ARGV[5])
local v = 2 + 2 * streams
local out = {}
local a = 6
for s = 0, streams - 1 do
    local key, mark = KEYS[2 + 2 * s], KEYS[3 + 2 * s]
    local n = tonumber(ARGV[a])
    a = a + 1
    out[#out + 1] = top(key, mark)
    for i = 1, n do
        local version = ARGV[a + 4]
        local newest = redis.call('GET', KEYS[v])
        if version ~= '' and newest and tonumber(newest) >= tonumber(version) then
            out[#out + 1] = ''
        else
            out[#out + 1] = redis.call('XADD', key, '*', 'a', ARGV[a], 'm', ARGV[a + 1],
                'p', ARGV[a + 2], 'd', ARGV[a + 3], 'v', version, 'f', ARGV[a + 5],
                'b', ARGV[a + 6])
            if version ~= '' then
                redis.call('SET', KEYS[v], version, 'EX', remember)
            end
        end
        v = v + 1
        a = a + 7
    end
    trim(key, mark, size, ttl)
end
return out
"""
)

#: KEYS: the epoch, the stream's history, its trim mark. ARGV: the cursor's offset,
#: HISTORY_SIZE, HISTORY_TTL in ms. Returns the epoch ('' when none), the trim mark ('' when
#: none), the newest offset, then the entries after the offset (id, then field/value pairs).
READ_SCRIPT = (
    _TRIM
    + """
local epoch = redis.call('GET', KEYS[1]) or ''
trim(KEYS[2], KEYS[3], tonumber(ARGV[2]), tonumber(ARGV[3]))
local out = {epoch, redis.call('GET', KEYS[3]) or '', top(KEYS[2], KEYS[3])}
local entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1], '+')
for i = 1, #entries do
    out[#out + 1] = entries[i]
end
return out
"""
)


#: KEYS: the epoch, the stream's history, its trim mark. ARGV: an epoch to start if there is
#: none yet (as the publisher's version script does). Returns the epoch and the newest offset.
TOP_SCRIPT = (
    _TRIM
    + """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
    epoch = ARGV[1]
    redis.call('SET', KEYS[1], epoch)
end
return {epoch, top(KEYS[2], KEYS[3])}
"""
)

#: KEYS: the epoch, the stream's history. ARGV: two offsets. Returns the epoch ('' when none),
#: then the entries after the first offset, up to and with the second.
RANGE_SCRIPT = """
local out = {redis.call('GET', KEYS[1]) or ''}
local entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1], ARGV[2])
for i = 1, #entries do
    out[#out + 1] = entries[i]
end
return out
"""


def history_key(prefix: str, stream: str) -> str:
    """The Redis Stream holding ``stream``'s history."""
    return f"{prefix}.history.{stream}"


def mark_key(prefix: str, stream: str) -> str:
    """The Redis key holding ``stream``'s trim mark."""
    return f"{prefix}.trimmed.{stream}"


def newest_key(prefix: str, stream: str, pk: str) -> str:
    """The Redis key holding the newest version of an object that the history holds."""
    return f"{prefix}.newest.{stream}.{pk}"


def entry_fields(message: EventMessage) -> list[str]:
    """The values of a history entry for ``message``: action, model, pk, data, version, the
    follow-up flag and the values before an update (fields ``a``, ``m``, ``p``, ``d``, ``v``,
    ``f``, ``b``)."""
    return [
        message["action"],
        message["model"],
        message["pk"],
        message["data"],
        str(message.get("version", "")),
        "1" if message.get("followup") else "0",
        message.get("before", ""),
    ]


def entry_message(stream: str, epoch: str, offset: str, fields: dict[str, str]) -> EventMessage:
    """The event message a history entry holds, with its cursor."""
    message: EventMessage = {
        "type": "sms.event",
        "stream": stream,
        "action": fields["a"],  # type: ignore[typeddict-item]  # written from an Action
        "model": fields["m"],
        "pk": fields["p"],
        "data": fields["d"],
        "epoch": epoch,
        "cursor": Cursor(epoch, parse_offset(offset)).encode(),
    }
    if fields.get("v"):
        message["version"] = int(fields["v"])
    if fields.get("f") == "1":
        message["followup"] = True
    if fields.get("b"):
        message["before"] = fields["b"]
    return message


def check_cursor(cursor: Cursor, epoch: str, mark: Offset | None, top: Offset) -> None:
    """Raise unless the events after ``cursor`` are all in a history of ``epoch`` whose trim
    mark is ``mark`` and whose newest offset is ``top``."""
    if cursor.epoch != epoch:
        raise CursorExpired(
            "the cursor is of an earlier history, since lost (the server's Redis lost its data "
            "or the server restarted): refetch and subscribe again without after"
        )
    if mark is not None and cursor.offset < mark:
        raise CursorExpired(
            "the events after the cursor are older than the history kept (HISTORY_SIZE, "
            "HISTORY_TTL): refetch and subscribe again without after"
        )
    if cursor.offset > top:
        raise CursorInvalid("the cursor is past the newest event of its stream")


@dataclass
class _Stream:
    entries: deque[tuple[int, float, EventMessage]]
    counter: int = 0
    mark: int | None = None


class LocalHistory:
    """The history of the in-memory layer: kept in the process, under its publisher's epoch.

    Appended to by the publisher's thread, read from any event loop of the process.
    """

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()

    def append(
        self, stream: str, messages: Sequence[EventMessage], size: int, ttl: float
    ) -> tuple[str, list[str]]:
        """Add ``messages`` to ``stream``'s history; the offset before them and theirs."""
        with self._lock:
            state = self._streams.get(stream)
            if state is None:
                state = self._streams[stream] = _Stream(deque())
            before = format_offset((state.counter, 0))
            offsets = []
            stamp = time.monotonic()
            for message in messages:
                state.counter += 1
                state.entries.append((state.counter, stamp, message))
                offsets.append(format_offset((state.counter, 0)))
            self._trim(state, size, ttl)
            return before, offsets

    def read_after(
        self, cursor: Cursor, stream: str, size: int, ttl: float, since: Offset | None = None
    ) -> list[EventMessage]:
        """The events of ``stream`` after ``cursor`` (only those after ``since`` too, if
        given), each with its cursor; CursorExpired or CursorInvalid when they cannot all be
        given."""
        with self._lock:
            state = self._streams.get(stream) or _Stream(deque())
            self._trim(state, size, ttl)
            mark = None if state.mark is None else (state.mark, 0)
            check_cursor(cursor, self.epoch, mark, (state.counter, 0))
            after = max(cursor.offset, since or cursor.offset)[0]
            return [
                {**message, "cursor": Cursor(self.epoch, (n, 0)).encode()}
                for n, _, message in state.entries
                if n > after
            ]

    def range(self, stream: str, after: Offset, upto: Offset) -> list[EventMessage]:
        """The events of ``stream`` after offset ``after``, up to and with ``upto``."""
        with self._lock:
            state = self._streams.get(stream)
            if state is None:
                return []
            return [
                {**message, "cursor": Cursor(self.epoch, (n, 0)).encode()}
                for n, _, message in state.entries
                if after[0] < n <= upto[0]
            ]

    def top(self, stream: str) -> Cursor:
        """The cursor of ``stream``'s newest event (offset 0 before any)."""
        with self._lock:
            state = self._streams.get(stream)
            return Cursor(self.epoch, (0 if state is None else state.counter, 0))

    @staticmethod
    def _trim(state: _Stream, size: int, ttl: float) -> None:
        entries = state.entries
        oldest = time.monotonic() - ttl
        while entries and (len(entries) > size or entries[0][1] < oldest):
            state.mark = entries.popleft()[0]


def decode_read(stream: str, cursor: Cursor, reply: Sequence[Any]) -> list[EventMessage]:
    """The events of :data:`READ_SCRIPT`'s reply, after checking ``cursor`` against it."""
    texts = [_text(item) for item in reply[:3]]
    epoch, mark, top = texts
    check_cursor(cursor, epoch, parse_offset(mark) if mark else None, parse_offset(top))
    return [_entry(stream, epoch, entry) for entry in reply[3:]]


def _entry(stream: str, epoch: str, entry: Any) -> EventMessage:
    flat = [_text(item) for item in entry[1]]
    return entry_message(
        stream, epoch, _text(entry[0]), dict(zip(flat[::2], flat[1::2], strict=True))
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_local: LocalHistory | None = None
_local_pid = 0
_local_lock = threading.Lock()


def get_local_history() -> LocalHistory:
    """This process's history for the in-memory layer (a forked child starts one of its own,
    under a new epoch)."""
    global _local, _local_pid
    with _local_lock:
        if _local is None or _local_pid != os.getpid():
            _local, _local_pid = LocalHistory(new_epoch()), os.getpid()
        return _local


# -- reading, from a server's event loop -------------------------------------------------------


async def read_after(
    layer: Any, stream: str, cursor: Cursor, since: Offset | None = None
) -> list[EventMessage]:
    """Every event of ``stream`` after ``cursor``, in order, each with its cursor; raises
    CursorExpired or CursorInvalid when the history cannot give them all. With ``since``, the
    cursor is checked as ever but only the events after ``since`` too are read (the caller
    holds the others)."""
    options = get_settings()
    size, ttl = options.HISTORY_SIZE, options.HISTORY_TTL
    if size <= 0:
        raise CursorExpired("this server keeps no history (HISTORY_SIZE is 0)")
    if is_process_local(layer):
        return get_local_history().read_after(cursor, stream, size, ttl, since)
    prefix = redis_key_prefix(layer)
    keys = [f"{prefix}.epoch", history_key(prefix, stream), mark_key(prefix, stream)]
    start = cursor.offset if since is None else max(cursor.offset, since)
    reply = await redis_eval(
        layer, READ_SCRIPT, keys, [format_offset(start), size, int(ttl * 1000)]
    )
    return decode_read(stream, cursor, reply)


async def read_top(layer: Any, stream: str) -> Cursor:
    """The cursor of the newest event of ``stream``: a subscription resumed from it misses
    nothing committed after this call (offset 0 before any event)."""
    if is_process_local(layer):
        return get_local_history().top(stream)
    prefix = redis_key_prefix(layer)
    keys = [f"{prefix}.epoch", history_key(prefix, stream), mark_key(prefix, stream)]
    epoch, top = (_text(item) for item in await redis_eval(layer, TOP_SCRIPT, keys, [new_epoch()]))
    return Cursor(epoch, parse_offset(top))


async def read_range(layer: Any, stream: str, after: Offset, upto: Offset) -> list[EventMessage]:
    """The events of ``stream`` after offset ``after``, up to and with ``upto`` (what a gap in
    the live events holds), each with its cursor."""
    if is_process_local(layer):
        return get_local_history().range(stream, after, upto)
    prefix = redis_key_prefix(layer)
    keys = [f"{prefix}.epoch", history_key(prefix, stream)]
    reply = await redis_eval(layer, RANGE_SCRIPT, keys, [format_offset(after), format_offset(upto)])
    epoch = _text(reply[0])
    return [_entry(stream, epoch, entry) for entry in reply[1:]]
