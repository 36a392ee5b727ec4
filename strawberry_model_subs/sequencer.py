"""A hub's live events of each stream in offset order, whichever process published them.

Publishers in several processes append to a stream's history, then send; their sends can cross
on the way, so a hub may receive offset 8 before offset 7. Each event names the offset before it
in its stream (``prev``): the sequencer hands an event on only once the one before it was, and
holds an event that arrives ahead. A gap not filled within :data:`GAP_WAIT` seconds is read
from the history (the publisher may have died between its append and its send); a gap the
history no longer holds is logged, with what it skips, and passed. An event at or below the last
offset handed on came already (through a repair) and is dropped.

So every subscriber of a process sees a stream's events in offset order, and the cursor of the
last event it received says exactly what it has seen: the ground a resumed subscription stands
on (see ``hub.Hub.subscribed``).

On the in-memory layer there is one publisher per process, whose sends arrive in order: hubs
need no sequencer there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .cursors import Offset, event_cursor, format_offset, parse_offset
from .events import Event, decode_event
from .history import read_range
from .layers import ChannelLayer

logger = logging.getLogger(__name__)

#: Seconds a gap in a stream's live events may stay open before it is read from the history.
GAP_WAIT = 0.1
#: The offset before the first event of an epoch.
EPOCH_START: Offset = (0, 0)


@dataclass
class _Stream:
    epoch: str
    last: Offset
    #: Events that arrived ahead of a gap, by the offset before them.
    held: dict[Offset, tuple[Offset, Event]] = field(default_factory=dict)
    repair: asyncio.TimerHandle | asyncio.Task[None] | None = None


class Sequencer:
    """The offset order of the live events of the streams a hub receives."""

    def __init__(self, layer: ChannelLayer, deliver: Callable[[Event], object]) -> None:
        self.layer = layer
        self._deliver = deliver
        self._streams: dict[str, _Stream] = {}

    def start(self, stream: str, epoch: str, top: Offset) -> None:
        """Order ``stream``'s events from those after ``top``, the newest offset in its
        history when the hub joined the stream's group."""
        self._streams[stream] = _Stream(epoch, top)

    def stop(self, stream: str) -> None:
        """Forget ``stream`` (the hub left its group)."""
        state = self._streams.pop(stream, None)
        if state is not None:
            self._disarm(state)

    def position(self, stream: str) -> Offset | None:
        """The offset of the last event of ``stream`` handed on (None: not ordered here)."""
        state = self._streams.get(stream)
        return None if state is None else state.last

    def admit(self, event: Event) -> None:
        """Hand ``event`` on in its stream's order: now, after the events it waits for, or never
        (it came already)."""
        state = self._streams.get(event.stream)
        if state is None or event.cursor is None or event.prev is None:
            self._deliver(event)
            return
        cursor = event_cursor(event.cursor)
        prev = parse_offset(event.prev)
        if cursor.epoch != state.epoch:
            if cursor.epoch < state.epoch:
                return  # of a history since lost
            # The history was lost and begins again, and so does the order: from its start,
            # not from this event, which may follow others published before this hub rejoined
            # the group (a restarted Redis forgets groups); the gap before it is read from the
            # new history as any other.
            self._reset(state, cursor.epoch, EPOCH_START)
        if cursor.offset <= state.last:
            return
        if prev > state.last:
            state.held[prev] = (cursor.offset, event)
            self._arm(event.stream, state)
            return
        self._hand_on(event.stream, state, cursor.offset, event)

    def _hand_on(self, stream: str, state: _Stream, offset: Offset, event: Event) -> None:
        state.last = offset
        self._deliver(event)
        while (ahead := state.held.pop(state.last, None)) is not None:
            state.last = ahead[0]
            self._deliver(ahead[1])
        if not state.held:
            self._disarm(state)
        else:
            self._arm(stream, state)

    def _arm(self, stream: str, state: _Stream) -> None:
        if state.repair is None:
            state.repair = asyncio.get_running_loop().call_later(
                GAP_WAIT, self._start_repair, stream
            )

    @staticmethod
    def _disarm(state: _Stream) -> None:
        if state.repair is not None:
            state.repair.cancel()
            state.repair = None

    def _reset(self, state: _Stream, epoch: str, last: Offset) -> None:
        state.epoch, state.last = epoch, last
        state.held.clear()
        self._disarm(state)

    def _start_repair(self, stream: str) -> None:
        state = self._streams.get(stream)
        if state is not None:
            state.repair = asyncio.get_running_loop().create_task(self._repair(stream, state))

    async def _repair(self, stream: str, state: _Stream) -> None:
        """Fill the gap before the held events from the history; skip what it lacks."""
        upto = max(offset for offset, _ in state.held.values())
        try:
            missing = await read_range(self.layer, stream, state.last, upto)
        except Exception:
            logger.warning(
                "could not read stream %r's history to fill a gap", stream, exc_info=True
            )
            missing = []
        if self._streams.get(stream) is not state:
            return
        state.repair = None
        # The history's entries follow one another: each one is the next after the last.
        for message in missing:
            event = decode_event(message)
            assert event.cursor is not None  # the history gives every entry its cursor
            offset = event_cursor(event.cursor).offset
            if offset > state.last:
                self._hand_on(stream, state, offset, event)
        # Held ahead of a gap this read did not cover (they came while it ran): wait for
        # theirs as for any gap. One before an event that came already can never be handed on.
        for key in [key for key in state.held if key < state.last]:
            del state.held[key]
        stuck = [key for key in state.held if key <= upto]
        if not stuck:
            if state.held:
                self._arm(stream, state)
            return
        self._disarm(state)  # what is still missing is not coming
        first = min(stuck)
        logger.error(
            "stream %r: the events after offset %s up to %s were never received and are no "
            "longer in the history; %d held event(s) after them are delivered",
            stream,
            format_offset(state.last),
            format_offset(first),
            len(stuck),
        )
        state.last = first
        offset, event = state.held.pop(first)
        self._hand_on(stream, state, offset, event)
