"""Rights that change, on real servers (PostgreSQL and the run's Redis layer): an update that
shows a note to a subscriber under the stream's per-object rule reaches it as an enter, one that
hides it as a leave with the data the subscriber last saw, on both protocols, the writes made
through one server and the subscribers on the other; and a connection whose token expires is
closed with 4403 unless its client refreshed it over the socket."""

from __future__ import annotations

import datetime
import json
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .clients import Socket, StreamSocket, TypedSocket, stream_socket, typed_socket
from .cluster import Cluster, make_users, run_script
from .harness import ack, control_answer, control_request, save_note

pytestmark = [pytest.mark.e2e, pytest.mark.services]

FEED = "subscription { noteFeedChanged { action moved data { text } } }"
#: Seconds to wait for a marker before saving the next one.
MARKER_WAIT = 1.0


def typed_text(message: dict[str, Any]) -> str | None:
    if message.get("type") != "next":
        return None
    text: str = message["payload"]["data"]["noteFeedChanged"]["data"]["text"]
    return text


def stream_text(message: dict[str, Any]) -> str | None:
    if "payload" not in message or "stream" not in message:
        return None
    text: str = message["payload"]["data"]["text"]
    return text


async def in_place(
    http: httpx.AsyncClient,
    owner: int,
    run: str,
    sockets: list[tuple[Socket, Callable[[dict[str, Any]], str | None]]],
) -> None:
    """Save shared marker notes until every socket has received one (typed subscriptions are
    not acknowledged); each socket's reading then starts after the marker it received last."""
    for round_ in range(30):
        marker = f"marker {round_} {run}"
        await save_note(http, owner, marker, shared=True)
        try:
            for sock, text in sockets:
                index = await sock.wait_for(
                    lambda m, t=text, k=marker: t(m) == k,  # type: ignore[misc]
                    f"the marker {marker!r}",
                    start=sock.cursor,
                    timeout=MARKER_WAIT,
                )
                sock.cursor = index + 1
        except AssertionError:
            continue
        return
    raise AssertionError("the subscriptions were not in place after 30 markers")


async def subscribe_feed_on_socket(stream: StreamSocket) -> None:
    """The note feed, every action, ``text`` only, subscribed by the socket's own user."""
    await stream.send(
        control_request(stream.channel_id, stream="note-feed", action="ALL_ACTIONS", data=["TEXT"])
    )
    assert await stream.next_frame("the ack") == ack("SUBSCRIBE", "ALL_ACTIONS", "note-feed")
    assert await stream.next_frame("the answer") == control_answer("note-feed", ok=True)


async def typed_changes(sock: TypedSocket, count: int) -> list[tuple[str, bool, str]]:
    changes = []
    for i in range(count):
        message = await sock.next_frame(f"note change {i + 1} of {count}")
        assert message["type"] == "next", message
        change = message["payload"]["data"]["noteFeedChanged"]
        changes.append((change["action"], change["moved"], change["data"]["text"]))
    return changes


async def stream_changes(sock: StreamSocket, count: int) -> list[tuple[str, str]]:
    changes = []
    for i in range(count):
        frame = await sock.next_frame(f"note frame {i + 1} of {count}")
        assert set(frame) == {"stream", "payload"}, frame  # no cursor, no where: as before
        assert set(frame["payload"]) == {"action", "model", "data"}, frame
        changes.append((frame["payload"]["action"], frame["payload"]["data"]["text"]))
    return changes


async def test_rights_that_change_are_enters_and_leaves_across_servers(
    cluster: Cluster, http_clients: tuple[httpx.AsyncClient, ...]
) -> None:
    http_a, _ = http_clients
    run = secrets.token_hex(4)
    users = make_users(cluster, f"alice-{run}", f"bob-{run}")
    alice, bob = users[f"alice-{run}"], users[f"bob-{run}"]
    bob_url = f"{cluster.b.ws_url}?token={bob['token']}"
    async with (
        typed_socket(cluster.b.ws_url, "bob, typed", payload={"token": bob["token"]}) as bobs,
        typed_socket(cluster.b.ws_url, "anonymous, typed") as anonymous,
        stream_socket(bob_url, "bob, stream") as bobs_stream,
    ):
        await bobs.start("1", FEED)
        await anonymous.start("1", FEED)
        await subscribe_feed_on_socket(bobs_stream)
        await in_place(
            http_a,
            alice["pk"],
            run,
            [(bobs, typed_text), (anonymous, typed_text), (bobs_stream, stream_text)],
        )
        pk = await save_note(http_a, alice["pk"], "alice's private")
        await save_note(http_a, alice["pk"], "shown", shared=True, pk=pk)
        await save_note(http_a, alice["pk"], "shown, edited", shared=True, pk=pk)
        await save_note(http_a, alice["pk"], "hidden again", pk=pk)
        await save_note(http_a, bob["pk"], "handed to bob", pk=pk)
        await save_note(http_a, alice["pk"], "taken back", pk=pk)
        await save_note(http_a, alice["pk"], f"end {run}", shared=True)
        shown_to_all = [
            ("CREATE", True, "shown"),
            ("UPDATE", False, "shown, edited"),
            ("DELETE", True, "shown, edited"),  # as it was last seen, not the new text
        ]
        assert await typed_changes(anonymous, 4) == [
            *shown_to_all,
            ("CREATE", False, f"end {run}"),
        ]
        assert await typed_changes(bobs, 6) == [
            *shown_to_all,
            ("CREATE", True, "handed to bob"),
            ("DELETE", True, "handed to bob"),
            ("CREATE", False, f"end {run}"),
        ]
        assert await stream_changes(bobs_stream, 6) == [
            ("create", "shown"),
            ("update", "shown, edited"),
            ("delete", "shown, edited"),
            ("create", "handed to bob"),
            ("delete", "handed to bob"),
            ("create", f"end {run}"),
        ]


# -- connections that expire ----------------------------------------------------------------

#: Seconds the first token of the expiry test lives: enough for a refresh sent at once to come
#: first. The second lives twice as long.
LIFETIME = 5.0
REFRESH = "mutation($t: String!) { refreshConnection(params: {token: $t}) { ok error expiresAt } }"
ADD_TOKENS = """
import datetime, json, sys
from django.contrib.auth.models import User
from django.utils import timezone
from tests.testapp.models import ApiToken

user = User.objects.get(username=sys.argv[1])
made = {}
for key, seconds in zip(sys.argv[2::2], sys.argv[3::2]):
    expires_at = timezone.now() + datetime.timedelta(seconds=float(seconds))
    ApiToken.objects.create(user=user, key=key, expires_at=expires_at)
    made[key] = expires_at.isoformat()
print(json.dumps(made))
"""


async def test_a_connection_closes_when_its_token_expires_unless_refreshed(
    cluster: Cluster,
) -> None:
    run = secrets.token_hex(4)
    name = f"expiring-{run}"
    make_users(cluster, name)
    first, second = f"first-{run}", f"second-{run}"
    output = run_script(cluster, ADD_TOKENS, name, first, str(LIFETIME), second, str(2 * LIFETIME))
    expiries = json.loads(output.strip().splitlines()[-1])
    first_expiry = datetime.datetime.fromisoformat(expiries[first])
    second_expiry = datetime.datetime.fromisoformat(expiries[second])
    token = {"token": first}
    async with (
        typed_socket(cluster.a.ws_url, "expiring, typed", payload=token) as typed,
        stream_socket(f"{cluster.b.ws_url}?token={first}", "expiring, stream") as stream,
        typed_socket(cluster.b.ws_url, "refreshed, typed", payload=token) as refreshed,
    ):
        messages = await refreshed.operation("1", REFRESH, {"t": second})
        answer = messages[0]["payload"]["data"]["refreshConnection"]
        assert answer["ok"], answer
        assert datetime.datetime.fromisoformat(answer["expiresAt"]) == second_expiry
        assert await typed.wait_closed(timeout=LIFETIME + 10) == 4403
        assert await stream.wait_closed() == 4403
        assert datetime.datetime.now(datetime.timezone.utc) >= first_expiry
        # The refreshed connection is still served past the first token's expiry...
        assert await refreshed.query("2", "{ __typename }") == {"data": {"__typename": "Query"}}
        # ... and closes at the second's.
        assert await refreshed.wait_closed(timeout=2 * LIFETIME + 10) == 4403
        assert datetime.datetime.now(datetime.timezone.utc) >= second_expiry
