"""Many connections' deadlines on a few loop timers: each called once, at most a tick late."""

from __future__ import annotations

import asyncio

import pytest

from strawberry_model_subs.deadlines import TICK, Deadlines


class Item:
    def __init__(self, fail: bool = False) -> None:
        self.due_tick: int | None = None
        self.fail = fail
        self.called = asyncio.get_running_loop().create_future()
        self.calls = 0

    def due(self) -> None:
        self.calls += 1
        if not self.called.done():
            self.called.set_result(asyncio.get_running_loop().time())
        if self.fail:
            raise RuntimeError("this connection's timer fails")


async def test_an_item_is_called_once_at_its_deadline_at_most_a_tick_late() -> None:
    deadlines = Deadlines.of_running_loop()
    loop = asyncio.get_running_loop()
    items = [Item() for _ in range(50)]
    start = loop.time()
    for item in items:
        deadlines.set(item, 0.1)
    assert deadlines.pending() == 50
    for item in items:
        called = await asyncio.wait_for(item.called, 5)
        assert 0.1 <= called - start <= 0.1 + TICK + 0.05, called - start
    assert [item.calls for item in items] == [1] * 50
    assert deadlines.pending() == 0


async def test_a_cancelled_or_moved_deadline_is_not_called_at_its_old_time() -> None:
    deadlines = Deadlines.of_running_loop()
    loop = asyncio.get_running_loop()
    cancelled, moved, witness = Item(), Item(), Item()
    start = loop.time()
    deadlines.set(cancelled, 0.05)
    deadlines.set(moved, 0.05)
    deadlines.cancel(cancelled)
    deadlines.set(moved, 0.3)
    deadlines.set(witness, 0.15)
    await asyncio.wait_for(witness.called, 5)
    assert not cancelled.called.done()
    assert not moved.called.done()
    assert await asyncio.wait_for(moved.called, 5) - start >= 0.3
    assert (cancelled.calls, moved.calls) == (0, 1)


async def test_a_failing_item_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    deadlines = Deadlines.of_running_loop()
    failing, other = Item(fail=True), Item()
    deadlines.set(failing, 0.0)
    deadlines.set(other, 0.0)
    await asyncio.wait_for(other.called, 5)
    assert failing.calls == 1
    assert "a connection's timer failed" in caplog.text


async def test_each_loop_has_its_own_deadlines() -> None:
    assert Deadlines.of_running_loop() is Deadlines.of_running_loop()
    theirs = await asyncio.to_thread(asyncio.run, _deadlines_of_the_loop())
    assert theirs is not Deadlines.of_running_loop()


async def _deadlines_of_the_loop() -> Deadlines:
    return Deadlines.of_running_loop()
