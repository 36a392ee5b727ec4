"""Resumable streams at the edges of the history, on real servers (PostgreSQL and the run's
Redis layer): a cursor the history has moved past, by count (``HISTORY_SIZE``) or by age
(``HISTORY_TTL``), is ``CURSOR_EXPIRED`` on both protocols while one inside it resumes exactly;
a replay of a stream with a per-object rule gives each user only what they may see, as the
live events do."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strawberry_model_subs.cursors import parse_cursor

from .clients import StreamSocket, TypedSocket, stream_socket, typed_socket
from .cluster import Cluster, http_clients_of, make_users, running_cluster
from .harness import (
    RESUME,
    ack,
    control_answer,
    control_request,
    create_product,
    post_graphql,
    save_note,
    update_product,
)

pytestmark = [pytest.mark.e2e, pytest.mark.services]

NOTES = """
subscription ($after: String) { noteFeedChanged(after: $after) { cursor data { text } } }
"""
#: The events the servers of the count test keep per stream.
KEPT = 5
#: The seconds the servers of the age test keep an event.
AGE = 1.0


@contextlib.asynccontextmanager
async def servers(
    directory: Path, settings: dict[str, Any]
) -> AsyncIterator[tuple[Cluster, tuple[httpx.AsyncClient, ...]]]:
    # Strawberry logs every GraphQL error it answers, the expired cursors' too.
    with running_cluster(directory, settings, allowed=("GraphQLError: CURSOR_EXPIRED",)) as cluster:
        async with http_clients_of(cluster) as http:
            yield cluster, http


@pytest.fixture
def directory(scale_out_db: None, tmp_path: Path) -> Path:
    """Where a test's servers and Redis live (the servers' database made)."""
    return tmp_path


async def updates_with_cursors(
    reader: TypedSocket, http: httpx.AsyncClient, pk: int, names: list[str]
) -> list[str]:
    """Save each name on product ``pk``; the cursor of each update, as ``reader`` (subscribed
    to the product's changes) receives them."""
    for name in names:
        await update_product(http, pk, name)
    cursors = []
    for name in names:
        message = await reader.next_frame(f"the update {name!r}")
        change = message["payload"]["data"]["productChanged"]
        assert change["data"]["name"] == name, message
        cursors.append(change["cursor"])
    return cursors


async def typed_resume_error(url: str, pk: int, after: str) -> dict[str, Any]:
    """The error a typed subscription resumed from ``after`` is answered with."""
    async with typed_socket(url, "graphql-transport-ws resuming") as typed:
        await typed.start("1", RESUME, {"id": pk, "after": after})
        message = await typed.next_frame("the answer to the resume")
    assert message["type"] == "error", message
    assert message["id"] == "1", message
    (error,) = message["payload"]
    return dict(error)


async def stream_resume_answer(
    url: str, http: httpx.AsyncClient, pk: int, after: str
) -> dict[str, Any]:
    """The control operation's result for a stream socket resumed from ``after``."""
    async with stream_socket(url, "stream socket resuming") as stream:
        body = await post_graphql(
            http,
            "subscription ($channelId: String!, $id: ID, $after: String) { productSubscription("
            "operation: SUBSCRIBE, action: UPDATE, channelId: $channelId, id: $id, "
            "data: [NAME], after: $after) { ok error } }",
            {"channelId": stream.channel_id, "id": pk, "after": after},
        )
    result: dict[str, Any] = body["data"]["productSubscription"]
    return result


async def resumed_names(
    url: str, http: httpx.AsyncClient, pk: int, after: str, count: int
) -> tuple[list[str], list[str]]:
    """The names of the first ``count`` updates replayed from ``after``: on a stream socket,
    and on a typed subscription."""
    async with (
        stream_socket(url, "stream socket resumed") as stream,
        typed_socket(url, "graphql-transport-ws resumed") as typed,
    ):
        await stream.subscribe(http, action="UPDATE", pk=pk, data=["NAME"], after=after)
        await typed.start("1", RESUME, {"id": pk, "after": after})
        frames = [await stream.next_frame(f"replayed update {i + 1}") for i in range(count)]
        messages = [await typed.next_frame(f"replayed update {i + 1}") for i in range(count)]
    return (
        [f["payload"]["data"]["name"] for f in frames],
        [m["payload"]["data"]["productChanged"]["data"]["name"] for m in messages],
    )


async def test_a_cursor_past_what_the_history_keeps_by_count_is_expired(directory: Path) -> None:
    async with servers(directory, {"HISTORY_SIZE": KEPT}) as (cluster, (http_a, http_b)):
        pk = await create_product(http_a, "counted")
        async with typed_socket(cluster.a.ws_url, "the cursor reader") as reader:
            await reader.start("1", RESUME, {"id": pk, "after": ""})
            names = [f"update {i}" for i in range(KEPT + 3)]
            cursors = await updates_with_cursors(reader, http_b, pk, names)
        # Kept: the last KEPT updates. The one before them is the newest dropped: a cursor of it
        # misses nothing; a cursor before it would miss it.
        error = await typed_resume_error(cluster.b.ws_url, pk, cursors[1])
        assert error["extensions"] == {"code": "CURSOR_EXPIRED"}, error
        assert error["message"].startswith("CURSOR_EXPIRED: "), error
        result = await stream_resume_answer(cluster.b.ws_url, http_b, pk, cursors[1])
        assert result["ok"] is False, result
        assert "CURSOR_EXPIRED" in result["error"], result
        stream_names, typed_names = await resumed_names(
            cluster.b.ws_url, http_b, pk, cursors[2], KEPT
        )
        assert stream_names == typed_names == names[3:]


async def test_a_cursor_past_what_the_history_keeps_by_age_is_expired(directory: Path) -> None:
    async with servers(directory, {"HISTORY_TTL": AGE}) as (cluster, (http_a, http_b)):
        pk = await create_product(http_a, "aged")
        async with typed_socket(cluster.a.ws_url, "the cursor reader") as reader:
            await reader.start("1", RESUME, {"id": pk, "after": ""})
            first, second = await updates_with_cursors(reader, http_b, pk, ["first", "second"])
        # An offset is the Redis clock's milliseconds: the history drops "second" once it is
        # AGE old. The test waits for that time to pass (the behaviour under test is the age).
        written = parse_cursor(second).offset[0] / 1000
        await asyncio.sleep(max(0.0, written + AGE + 0.5 - time.time()))
        error = await typed_resume_error(cluster.b.ws_url, pk, first)
        assert error["extensions"] == {"code": "CURSOR_EXPIRED"}, error
        result = await stream_resume_answer(cluster.a.ws_url, http_a, pk, first)
        assert result["ok"] is False, result
        assert "CURSOR_EXPIRED" in result["error"], result
        # The cursor of the newest event missed nothing: it resumes, and gets the next one.
        async with typed_socket(cluster.b.ws_url, "graphql-transport-ws resumed") as typed:
            await typed.start("1", RESUME, {"id": pk, "after": second})
            await update_product(http_a, pk, "third")
            message = await typed.next_frame("the live update after the resume")
        assert message["type"] == "next", message
        assert message["payload"]["data"]["productChanged"]["data"]["name"] == "third"


# -- permissions -------------------------------------------------------------------------------


async def resume_notes_on_socket(stream: StreamSocket, after: str) -> list[str]:
    """Subscribe ``stream`` to the note feed from ``after`` with a control operation sent on the
    socket itself (its user's own); the texts of the notes it receives before the answer."""
    await stream.send(
        control_request(
            stream.channel_id, stream="note-feed", action="ALL_ACTIONS", data=["TEXT"], after=after
        )
    )
    answer = control_answer("note-feed", ok=True)
    frames: list[dict[str, Any]] = []
    while not frames or frames[-1] != answer:
        frames.append(await stream.next_frame("the ack, a replayed note or the answer"))
    assert frames[0] == ack("SUBSCRIBE", "ALL_ACTIONS", "note-feed"), frames
    return [f["payload"]["data"]["text"] for f in frames[1:-1]]


async def replayed_notes(sock: StreamSocket | TypedSocket, live: str) -> list[str]:
    """The texts ``sock`` (resumed) receives up to and with the live note ``live``."""
    texts: list[str] = []
    while not texts or texts[-1] != live:
        message = await sock.next_frame(f"a replayed note, or {live!r}")
        if isinstance(sock, StreamSocket):
            texts.append(message["payload"]["data"]["text"])
        else:
            assert message["type"] == "next", message
            texts.append(message["payload"]["data"]["noteFeedChanged"]["data"]["text"])
    return texts


async def test_a_replay_gives_each_user_only_what_they_may_see(directory: Path) -> None:
    async with servers(directory, {}) as (cluster, (http_a, _)):
        run = secrets.token_hex(4)
        users = make_users(cluster, f"alice-{run}", f"bob-{run}")
        alice, bob = users[f"alice-{run}"], users[f"bob-{run}"]
        async with typed_socket(cluster.a.ws_url, "the cursor reader") as reader:
            await reader.start("1", NOTES, {"after": ""})
            await save_note(http_a, alice["pk"], f"start {run}", shared=True)
            message = await reader.next_frame("the start note")
        start = message["payload"]["data"]["noteFeedChanged"]["cursor"]
        await save_note(http_a, alice["pk"], f"alice's own {run}")
        await save_note(http_a, bob["pk"], f"bob's own {run}")
        await save_note(http_a, bob["pk"], f"for everyone {run}", shared=True)
        expected = {
            "anonymous": [f"for everyone {run}"],
            "bob": [f"bob's own {run}", f"for everyone {run}"],
        }
        for who, token in (("anonymous", None), ("bob", bob["token"])):
            payload = None if token is None else {"token": token}
            query = "" if token is None else f"?token={token}"
            async with (
                typed_socket(cluster.b.ws_url, f"{who}, typed", payload=payload) as typed,
                stream_socket(f"{cluster.b.ws_url}{query}", f"{who}, stream") as stream,
            ):
                await typed.start("1", NOTES, {"after": start})
                before_answer = await resume_notes_on_socket(stream, start)
                live = f"live for {who} {run}"
                await save_note(http_a, alice["pk"], live, shared=True)
                typed_texts = await replayed_notes(typed, live)
                stream_texts = before_answer + await replayed_notes(stream, live)
            # The live notes of an earlier round come after the start too, and are shared.
            earlier = [f"live for anonymous {run}"] if who == "bob" else []
            assert typed_texts == [*expected[who], *earlier, live], who
            assert stream_texts == typed_texts, who
