"""The typed sockets' message queue: in order, unbounded, nothing lost to a cancelled get."""

from __future__ import annotations

import asyncio

from strawberry_model_subs.mailbox import Mailbox


async def test_items_come_out_in_order() -> None:
    mailbox: Mailbox[int] = Mailbox()
    for number in range(5):
        mailbox.put_nowait(number)
    assert mailbox.qsize() == 5
    assert [await mailbox.get() for _ in range(5)] == [0, 1, 2, 3, 4]
    assert mailbox.empty()


async def test_a_waiting_reader_gets_what_is_put() -> None:
    mailbox: Mailbox[str] = Mailbox()
    reader = asyncio.ensure_future(mailbox.get())
    await asyncio.sleep(0)
    assert not reader.done()
    mailbox.put_nowait("a")
    mailbox.put_nowait("b")
    assert await asyncio.wait_for(reader, 5) == "a"
    assert await mailbox.get() == "b"


async def test_a_cancelled_get_loses_nothing() -> None:
    mailbox: Mailbox[str] = Mailbox()
    reader = asyncio.ensure_future(mailbox.get())
    await asyncio.sleep(0)
    mailbox.put_nowait("kept")
    reader.cancel()  # woken but not yet resumed: the item stays in the mailbox
    await asyncio.gather(reader, return_exceptions=True)
    assert reader.cancelled()
    assert await mailbox.get() == "kept"
