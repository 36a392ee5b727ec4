"""Fixtures of the end-to-end suite: one live server per session, made safe to share.

Isolation between tests: every test opens its own sockets (closed when it ends) and creates its
own objects; at the end of each test a barrier event proves the server has delivered everything
the test caused, so nothing leaks into the next test; then the part of the server log written
during the test must hold no traceback and no ``ERROR:`` line.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from .clients import OpenSocket, StreamSocket, stream_socket
from .harness import LiveServer, LogWatch, create_category, event, log_problems


@dataclass
class CheckedServer:
    """The live server and how far its log has been checked."""

    server: LiveServer
    checked: int = 0


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CheckedServer]:
    server = LiveServer(tmp_path_factory.mktemp("e2e"))
    server.migrate()
    server.start()
    checked = CheckedServer(server)
    try:
        yield checked
    finally:
        server.stop()
    problems = log_problems(server.log_text(checked.checked))
    assert not problems, "the server logged errors at shutdown:\n" + "\n\n".join(problems)


@pytest.fixture
def e2e_server(live: CheckedServer) -> LiveServer:
    return live.server


@pytest.fixture
async def http(e2e_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=e2e_server.http_url, timeout=10.0) as client:
        yield client


async def flush_events(server: LiveServer, http: httpx.AsyncClient) -> None:
    """Return once the server has delivered every event committed so far.

    The server's hub reads every stream's events from one channel, in order, so once a fresh
    category event reaches a new socket, every earlier event has been dispatched.
    """
    async with stream_socket(server.ws_url) as sock:
        await sock.subscribe(http, stream="categories", action="CREATE", data=["ID"])
        pk = await create_category(http, "barrier")
        barrier = event("create", "testapp.category", {"id": pk}, "categories")
        while await sock.next_frame("the end-of-test barrier event") != barrier:
            pass


@pytest.fixture(autouse=True)
async def server_log(live: CheckedServer, http: httpx.AsyncClient) -> AsyncIterator[LogWatch]:
    """Check the server log written during the test (after draining its events)."""
    watch = LogWatch()
    yield watch
    await flush_events(live.server, http)
    end = live.server.log_size()
    text = live.server.log_text(live.checked, end)
    live.checked = end
    problems = log_problems(text, watch.allowed)
    assert not problems, "the server logged errors during the test:\n" + "\n\n".join(problems)


@pytest.fixture
async def open_socket(e2e_server: LiveServer) -> AsyncIterator[OpenSocket]:
    """Open stream sockets (``await open_socket(headers=None)``), closed when the test ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def factory(*, headers: dict[str, str] | None = None) -> StreamSocket:
            return await stack.enter_async_context(
                stream_socket(e2e_server.ws_url, headers=headers)
            )

        yield factory
