"""The socket send queue: eager writes, suspended writes, order, overflow and failures."""

from __future__ import annotations

import asyncio

import pytest

from strawberry_model_subs.outbox import SLOW_CONSUMER_CLOSE_CODE, Outbox
from tests.conftest import subs_settings


class Socket:
    """A fake transport end: ``writable`` cleared makes every send wait (flow control)."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.closed_with: list[int] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.interrupted = 0
        self.ended = 0
        self.fail = False

    async def send(self, text: str) -> None:
        try:
            await self.writable.wait()
        except asyncio.CancelledError:
            self.interrupted += 1
            raise
        finally:
            self.ended += 1
        if self.fail:
            raise OSError("connection reset")
        self.written.append(text)

    async def close(self, code: int) -> None:
        self.closed_with.append(code)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_writable_socket_is_written_at_once_without_a_task() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, socket.close)
    tasks = len(asyncio.all_tasks())
    outbox.push("a")
    outbox.push("b")
    assert socket.written == ["a", "b"]  # before any await
    assert len(asyncio.all_tasks()) == tasks
    assert not outbox.frames


async def test_a_suspended_write_is_finished_in_order_by_one_task() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, socket.close)
    socket.writable.clear()
    for text in ("1", "2", "3"):
        outbox.push(text)
    await settle()
    assert socket.written == []
    assert list(outbox.frames) == ["2", "3"]  # "1" is being written
    socket.writable.set()
    await settle()
    assert socket.written == ["1", "2", "3"]
    outbox.push("4")  # writable again: at once
    assert socket.written == ["1", "2", "3", "4"]


async def test_close_cancels_a_suspended_write_inside_the_send() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, socket.close)
    socket.writable.clear()
    outbox.push("stuck")
    outbox.push("queued")
    await settle()
    await outbox.close()
    assert socket.interrupted == 1  # the cancellation reached the send itself
    assert not outbox.frames
    socket.writable.set()
    outbox.push("after close")
    await settle()
    assert socket.written == []


async def test_close_before_the_drain_task_runs_still_ends_the_suspended_write() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, socket.close)
    socket.writable.clear()
    outbox.push("stuck")
    await outbox.close()  # at once: the drain task never got to resume the send
    assert socket.ended == 1
    assert socket.written == []


@subs_settings(SEND_QUEUE_SIZE=3)
async def test_a_socket_that_falls_behind_is_closed_with_1013() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, socket.close)
    socket.writable.clear()
    for number in range(5):
        outbox.push(str(number))
    await settle()
    assert outbox.closed
    assert socket.closed_with == [SLOW_CONSUMER_CLOSE_CODE]
    assert not outbox.frames


@pytest.mark.parametrize("suspended", [False, True], ids=["eager", "in-the-task"])
async def test_a_failed_write_closes_the_outbox(suspended: bool) -> None:
    socket = Socket()
    socket.fail = True
    outbox = Outbox(socket.send, socket.close)
    if suspended:
        socket.writable.clear()
    outbox.push("x")
    outbox.push("y")
    socket.writable.set()
    await settle()
    assert outbox.closed
    assert socket.written == []
    assert not outbox.frames


async def test_forget_drops_the_queued_frames_of_one_operation() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, socket.close)
    socket.writable.clear()
    for text in ('{"id":"1"}', '{"id":"2"}', '{"id":"1"}', '{"id":"2"}'):
        outbox.push(text)
    await settle()
    outbox.forget('{"id":"2"')
    socket.writable.set()
    await settle()
    assert socket.written == ['{"id":"1"}', '{"id":"1"}']
