"""Versions: what a subscriber was shown last of each object, to drop what would go back.

Events of several writer processes can cross on their way; each carries its object's version
(see ``publisher``), and an event older than one already dispatched for its object is stale.
"""

from __future__ import annotations

import itertools

from .events import Action, Event

#: Objects per stream whose last version is remembered (the oldest are forgotten first).
MAX_VERSIONS = 100_000


class Versions:
    """The last version dispatched of each object of each stream (a hub's, or a replay's)."""

    def __init__(self) -> None:
        #: stream -> (epoch, pk -> (last version dispatched, hash of its data, a follow-up?)).
        self.streams: dict[str, tuple[str, dict[str, tuple[int, int, bool]]]] = {}

    def is_stale(self, event: Event) -> bool:
        """Whether to drop ``event``: an event of the same object with a later version was
        dispatched already (events of several writer processes can cross on their way; the
        later one wins), or it repeats, as an update with the same data, a follow-up dispatched
        just before it (or is a follow-up repeating what was just dispatched)."""
        if event.version is None or event.epoch is None:
            return False
        known = self.streams.get(event.stream)
        if known is None or event.epoch > known[0]:
            # A new epoch: the versions of the old one mean nothing any more.
            known = self.streams[event.stream] = (event.epoch, {})
        elif event.epoch < known[0]:
            return True
        seen = known[1]
        last = seen.pop(event.pk, None)
        digest = hash(event.raw)
        if last is not None:
            if last[0] >= event.version:
                seen[event.pk] = last
                return True
            if (event.followup or last[2]) and event.action is Action.UPDATE and last[1] == digest:
                # One of the pair was dispatched: the next plain save is news again.
                seen[event.pk] = (event.version, digest, False)
                return True
        seen[event.pk] = (event.version, digest, event.followup)
        if len(seen) > MAX_VERSIONS:
            for pk in list(itertools.islice(seen, MAX_VERSIONS // 2)):
                del seen[pk]
        return False
