"""A filtered list kept from the events alone stays exact, on a real server and both protocols.

Hypothesis drives random creates, updates (renames that move products into and out of the
filter) and deletes through the server's mutations, 500 in all; a stream socket and a
graphql-transport-ws subscription, both filtered on ``name: {startsWith: "a"}``, apply each event
to a list (a create adds an object that must be absent, an update changes one that must be
present, a delete removes one that must be present), and after each batch both lists equal the
query of the server's database with the same filter.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .clients import (
    FrameTimeout,
    StreamSocket,
    TypedSocket,
    stream_socket,
    typed_socket,
)
from .cluster import HTTP_TIMEOUT
from .harness import FRAME_TIMEOUT, LiveServer, create_product, delete_product, update_product

pytestmark = pytest.mark.e2e

WHERE = {"name": {"startsWith": "a"}}
TYPED = """
subscription ($where: ProductFilter) {
  productChanged(where: $where) { action moved data { id name } }
}
"""
NAMES = ["apple", "apricot", "avocado", "banana", "cherry", "date"]
_serial = itertools.count()


@dataclass(frozen=True)
class Op:
    kind: str  # create, rename, delete
    name: str = ""
    index: int = 0


OPS = st.one_of(
    st.builds(Op, st.just("create"), st.sampled_from(NAMES)),
    st.builds(Op, st.just("rename"), st.sampled_from(NAMES), st.integers(0, 1000)),
    st.builds(Op, st.just("delete"), st.just(""), st.integers(0, 1000)),
)


class KeptList:
    """A client's filtered list, kept from the events alone."""

    def __init__(self, label: str, start: dict[int, str]) -> None:
        self.label = label
        self.items = dict(start)

    def apply(self, action: str, moved: bool, data: dict[str, Any]) -> None:
        pk, name = int(data["id"]), data["name"]
        where = f"{self.label}: {action} (moved: {moved}) of {pk} {name!r}"
        if action == "create":
            assert pk not in self.items, f"{where}, already in the list"
            self.items[pk] = name
        elif action == "update":
            assert pk in self.items, f"{where}, not in the list"
            self.items[pk] = name
        else:
            assert action == "delete", where
            assert pk in self.items, f"{where}, not in the list"
            del self.items[pk]


def matching_rows(server: LiveServer) -> dict[int, str]:
    """The server's database queried with the same filter (startsWith is case-sensitive)."""
    with contextlib.closing(sqlite3.connect(server.db_path)) as connection:
        rows = connection.execute(
            "SELECT id, name FROM testapp_product WHERE substr(name, 1, 1) = 'a'"
        ).fetchall()
    return {int(pk): name for pk, name in rows}


def all_ids(server: LiveServer) -> list[int]:
    with contextlib.closing(sqlite3.connect(server.db_path)) as connection:
        return [pk for (pk,) in connection.execute("SELECT id FROM testapp_product ORDER BY id")]


async def run_batch(server: LiveServer, ops: list[Op]) -> None:
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=server.http_url, timeout=HTTP_TIMEOUT)
        )
        stream: StreamSocket = await stack.enter_async_context(
            stream_socket(server.ws_url, "filtered stream socket")
        )
        typed: TypedSocket = await stack.enter_async_context(
            typed_socket(server.ws_url, "filtered graphql-transport-ws")
        )
        await stream.subscribe(http, action="ALL_ACTIONS", data=["ID", "NAME"], where=WHERE)
        await typed.start("1", TYPED, {"where": WHERE})
        start = matching_rows(server)  # no other writer: the list a client loads first
        kept = [KeptList("stream socket", start), KeptList("graphql-transport-ws", start)]
        markers = await first_markers(http, server, stream, typed, kept)
        marker_pk = markers[-1]
        ids = [pk for pk in all_ids(server) if pk not in markers]
        for op in ops:
            name = f"{op.name} {next(_serial)}"
            if op.kind == "create":
                ids.append(await create_product(http, name))
            elif ids and op.kind == "rename":
                await update_product(http, ids[op.index % len(ids)], name)
            elif ids:
                await delete_product(http, ids.pop(op.index % len(ids)))
        marker = f"a marker {next(_serial)}"
        await update_product(http, marker_pk, marker)
        await follow(stream, typed, kept, marker)
        expected = matching_rows(server)
        for kept_list in kept:
            assert kept_list.items == expected, f"{kept_list.label}'s list is not the query's"


async def first_markers(
    http: httpx.AsyncClient,
    server: LiveServer,
    stream: StreamSocket,
    typed: TypedSocket,
    kept: list[KeptList],
) -> list[int]:
    """Create markers until the typed subscription receives one (graphql-transport-ws answers
    a subscribe with nothing: it is known to be in place only once an event arrives); the ids
    of the markers. A marker it missed came before it: its list is then loaded again."""
    markers: list[int] = []
    for _ in range(10):
        marker = f"a marker {next(_serial)}"
        markers.append(await create_product(http, marker))
        await follow_stream(stream, kept, marker)
        try:
            await follow_typed(typed, kept, marker, timeout=3.0)
        except FrameTimeout:
            assert typed.cursor == len(typed.messages), "a typed frame came, but not the marker"
            kept[1] = KeptList(kept[1].label, matching_rows(server))
            continue
        return markers
    raise AssertionError("the typed subscription received none of 10 markers")


async def follow(
    stream: StreamSocket, typed: TypedSocket, kept: list[KeptList], marker: str
) -> None:
    """Apply every event each socket receives up to the one that names ``marker``."""
    await follow_stream(stream, kept, marker)
    await follow_typed(typed, kept, marker)


async def follow_stream(stream: StreamSocket, kept: list[KeptList], marker: str) -> None:
    while True:
        frame = await stream.next_frame(f"an event, up to {marker!r}")
        payload = frame["payload"]
        kept[0].apply(payload["action"], payload["moved"], payload["data"])
        if payload["data"]["name"] == marker:
            break


async def follow_typed(
    typed: TypedSocket, kept: list[KeptList], marker: str, timeout: float = FRAME_TIMEOUT
) -> None:
    while True:
        message = await typed.next_frame(f"an event, up to {marker!r}", timeout)
        assert message["type"] == "next", message
        change = message["payload"]["data"]["productChanged"]
        kept[1].apply(change["action"].lower(), change["moved"], change["data"])
        if change["data"]["name"] == marker:
            break


@settings(
    max_examples=5,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a failing batch is reported as found
    suppress_health_check=list(HealthCheck),
)
@given(ops=st.lists(OPS, min_size=100, max_size=100))
def test_a_filtered_list_kept_from_events_equals_the_query(
    e2e_server: LiveServer, ops: list[Op]
) -> None:
    asyncio.run(run_batch(e2e_server, ops))
