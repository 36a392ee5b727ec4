"""The sequencer: a stream's live events in offset order, whatever order they arrive in; gaps
filled from the history, or logged and passed when it lacks them."""

from __future__ import annotations

import asyncio
import logging

import pytest
from channels.layers import InMemoryChannelLayer

from strawberry_model_subs import Action, Event
from strawberry_model_subs import sequencer as sequencer_module
from strawberry_model_subs.cursors import Cursor, format_offset, parse_offset
from strawberry_model_subs.events import decode_event, event_message
from strawberry_model_subs.history import get_local_history
from strawberry_model_subs.sequencer import Sequencer
from tests.conftest import as_channel_layer


class Delivered:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.names.append(event.data["name"])
        self.changed.set()

    async def wait_for(self, count: int) -> list[str]:
        async def enough() -> None:
            while len(self.names) < count:
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(enough(), 2.0)
        except asyncio.TimeoutError:
            raise AssertionError(f"{count} events expected, got {self.names}") from None
        return self.names


def event(name: str, offset: int, prev: int, epoch: str | None = None) -> Event:
    message = event_message("things", Action.UPDATE, "app.thing", offset, {"name": name})
    message["cursor"] = Cursor(epoch or get_local_history().epoch, (offset, 0)).encode()
    message["prev"] = format_offset((prev, 0))
    return decode_event(message)


@pytest.fixture
def delivered() -> Delivered:
    return Delivered()


@pytest.fixture
def sequencer(delivered: Delivered, monkeypatch: pytest.MonkeyPatch) -> Sequencer:
    monkeypatch.setattr(sequencer_module, "GAP_WAIT", 0.01)
    ordered = Sequencer(as_channel_layer(InMemoryChannelLayer()), delivered)
    ordered.start("things", get_local_history().epoch, (10, 0))
    return ordered


async def test_events_in_order_are_handed_on_at_once(
    sequencer: Sequencer, delivered: Delivered
) -> None:
    sequencer.admit(event("a", 11, 10))
    sequencer.admit(event("b", 12, 11))
    assert delivered.names == ["a", "b"]
    assert sequencer.position("things") == (12, 0)


async def test_an_event_ahead_waits_for_the_one_before_it(
    sequencer: Sequencer, delivered: Delivered
) -> None:
    sequencer.admit(event("c", 13, 12))
    sequencer.admit(event("b", 12, 11))
    assert delivered.names == []
    sequencer.admit(event("a", 11, 10))
    assert delivered.names == ["a", "b", "c"]


async def test_an_event_that_came_already_is_dropped(
    sequencer: Sequencer, delivered: Delivered
) -> None:
    sequencer.admit(event("a", 11, 10))
    sequencer.admit(event("a", 11, 10))
    sequencer.admit(event("old", 9, 8))
    assert delivered.names == ["a"]


async def test_a_gap_is_filled_from_the_history(delivered: Delivered, monkeypatch) -> None:
    monkeypatch.setattr(sequencer_module, "GAP_WAIT", 0.01)
    history = get_local_history()
    top = history.top("gaps").offset[0]
    before, offsets = history.append(
        "gaps",
        [
            event_message("gaps", Action.UPDATE, "app.thing", 1, {"name": "lost-in-transit"}),
            event_message("gaps", Action.UPDATE, "app.thing", 2, {"name": "late"}),
        ],
        100,
        3600.0,
    )
    assert before == format_offset((top, 0))
    ordered = Sequencer(as_channel_layer(InMemoryChannelLayer()), delivered)
    ordered.start("gaps", history.epoch, (top, 0))
    late = event_message("gaps", Action.UPDATE, "app.thing", 2, {"name": "late"})
    late["cursor"] = Cursor(history.epoch, (top + 2, 0)).encode()
    late["prev"] = offsets[0]
    ordered.admit(decode_event(late))
    assert await delivered.wait_for(2) == ["lost-in-transit", "late"]
    assert ordered.position("gaps") == (top + 2, 0)


async def test_a_gap_the_history_lacks_is_logged_and_passed(
    sequencer: Sequencer, delivered: Delivered, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "strawberry_model_subs"):
        sequencer.admit(event("after-the-gap", 15, 14))
        sequencer.admit(event("next", 16, 15))
        assert await delivered.wait_for(2) == ["after-the-gap", "next"]
    (record,) = caplog.records
    assert record.getMessage() == (
        "stream 'things': the events after offset 10-0 up to 14-0 were never received and are "
        "no longer in the history; 2 held event(s) after them are delivered"
    )


async def test_a_new_epoch_starts_the_order_again(
    sequencer: Sequencer, delivered: Delivered
) -> None:
    sequencer.admit(event("a", 11, 10))
    later = "9999999999999-00000000"
    sequencer.admit(event("fresh", 1, 0, epoch=later))
    sequencer.admit(event("of-the-old-history", 12, 11))
    assert delivered.names == ["a", "fresh"]


async def test_a_new_epoch_is_ordered_from_its_start_and_its_first_events_read_from_the_history(
    delivered: Delivered, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis restarted: groups and history gone. The publishers' first events of the new
    # history went out before this hub rejoined the group; the first it receives is the third.
    monkeypatch.setattr(sequencer_module, "GAP_WAIT", 0.01)
    history = get_local_history()
    messages = [
        event_message("reborn", Action.UPDATE, "app.thing", pk, {"name": name})
        for pk, name in enumerate(["first", "second", "third"], start=1)
    ]
    _, offsets = history.append("reborn", messages, 100, 3600.0)
    ordered = Sequencer(as_channel_layer(InMemoryChannelLayer()), delivered)
    ordered.start("reborn", "0000000000001-00000000", (41, 0))  # the lost history's epoch
    third = dict(messages[2])
    third["cursor"] = Cursor(history.epoch, parse_offset(offsets[2])).encode()
    third["prev"] = offsets[1]
    ordered.admit(decode_event(third))
    assert await delivered.wait_for(3) == ["first", "second", "third"]
    assert ordered.position("reborn") == parse_offset(offsets[2])


async def test_a_stream_it_does_not_order_passes_as_it_comes(delivered: Delivered) -> None:
    ordered = Sequencer(as_channel_layer(InMemoryChannelLayer()), delivered)
    ordered.admit(event("b", 12, 11))
    ordered.admit(event("a", 11, 10))
    assert delivered.names == ["b", "a"]
    assert ordered.position("things") is None


async def test_an_event_held_while_a_gap_is_read_waits_for_its_own_gap(
    delivered: Delivered, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Two writers race: while the history is read for one gap, an event arrives ahead of
    another; it waits for the event before it, which is on its way, and nothing is lost."""
    monkeypatch.setattr(sequencer_module, "GAP_WAIT", 0.01)
    history = get_local_history()
    top = history.top("race").offset[0]
    names = [f"n{i}" for i in range(1, 6)]
    messages = [event_message("race", Action.UPDATE, "app.thing", 1, {"name": n}) for n in names]
    before, offsets = history.append("race", messages, 100, 3600.0)
    live = []
    for i, message in enumerate(messages):
        copy = dict(message)
        copy["cursor"] = Cursor(history.epoch, (top + i + 1, 0)).encode()
        copy["prev"] = before if i == 0 else offsets[i - 1]
        live.append(decode_event(copy))  # type: ignore[arg-type]
    reading, release = asyncio.Event(), asyncio.Event()
    read_range = sequencer_module.read_range

    async def slow_read(*args: object) -> object:
        reading.set()
        await release.wait()
        return await read_range(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sequencer_module, "read_range", slow_read)
    ordered = Sequencer(as_channel_layer(InMemoryChannelLayer()), delivered)
    ordered.start("race", history.epoch, (top, 0))
    with caplog.at_level(logging.ERROR, "strawberry_model_subs"):
        ordered.admit(live[2])  # n3: n1 and n2 are late, the gap is read from the history
        await asyncio.wait_for(reading.wait(), 2.0)
        ordered.admit(live[4])  # n5 arrives during the read, ahead of n4
        release.set()
        assert await delivered.wait_for(3) == names[:3]
        ordered.admit(live[3])  # n4 comes, as live events do
        assert await delivered.wait_for(5) == names
    assert ordered.position("race") == (top + 5, 0)
    assert not caplog.records
