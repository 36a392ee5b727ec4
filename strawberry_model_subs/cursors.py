"""Cursors: the place of an event in its stream's history.

A cursor is an opaque string to clients, the same in every server process:
``<epoch>:<milliseconds>-<sequence>``. The epoch is the one the publisher's versions use (it
changes when the history is lost: Redis flushed or restarted without its data, an in-memory
process restarted), so a cursor of an earlier epoch is never taken for a position in a later
one. The offset is the event's entry in the stream's history: a Redis Streams entry id on the
Redis layers, a counter of the process (``<n>-0``) on the in-memory layer. Offsets increase in
publish order within a stream.

Example::

    cursor = Cursor("1764672000000-9f3a1c2b", (1764672000123, 0))
    text = cursor.encode()  # '1764672000000-9f3a1c2b:1764672000123-0'
    assert parse_cursor(text) == cursor
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache

from .exceptions import CursorInvalid

#: An epoch (:func:`new_epoch`), then an offset (a Redis Streams entry id).
_CURSOR_RE = re.compile(r"^(\d{13}-[0-9a-f]{8}):(\d{1,20})-(\d{1,20})$")

Offset = tuple[int, int]


@dataclass(frozen=True)
class Cursor:
    """An epoch and an offset within it."""

    epoch: str
    offset: Offset

    def encode(self) -> str:
        """The cursor as clients see it."""
        return f"{self.epoch}:{format_offset(self.offset)}"


def new_epoch() -> str:
    """An epoch that sorts after every earlier one: milliseconds, then a random part."""
    return f"{int(time.time() * 1000):013d}-{secrets.token_hex(4)}"


def format_offset(offset: Offset) -> str:
    """An offset as a Redis Streams entry id (``<ms>-<seq>``)."""
    return f"{offset[0]}-{offset[1]}"


def parse_offset(text: str) -> Offset:
    """A Redis Streams entry id as an offset; ValueError when it is not one."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def parse_cursor(text: object) -> Cursor:
    """The cursor a client sent; :class:`~strawberry_model_subs.exceptions.CursorInvalid` when
    it is not one this library made."""
    if not isinstance(text, str) or len(text) > 64:
        raise CursorInvalid("the cursor is not one this server gave out")
    match = _CURSOR_RE.match(text)
    if match is None:
        raise CursorInvalid(f"the cursor {text!r} is not one this server gave out")
    return Cursor(match.group(1), (int(match.group(2)), int(match.group(3))))


@lru_cache(maxsize=8192)
def event_cursor(text: str) -> Cursor:
    """The cursor of an event this library published (:func:`parse_cursor`, remembered): the
    same events' cursors are read again for every subscriber a replay or a seam concerns.
    Not for a client's cursor, which :func:`parse_cursor` checks."""
    return parse_cursor(text)
