"""Security end to end: the real uvicorn server of the harness, real users, sessions and tokens
(made in the server's own database by ``manage.py shell``), real websockets and HTTP.

Covered here: the session cookie and the token hook (4403 on refusal), permissions on both
protocols, the channelId's owner, the origin check, the frame size limit, and bad input that
breaks a connection today (strict xfails naming the bug; see also tests/test_fuzz.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from .clients import (
    GRAPHQL_TRANSPORT_WS,
    FrameTimeout,
    OpenSocket,
    TypedSocket,
    connecting,
    raw_socket,
    stream_socket,
    typed_socket,
)
from .conftest import CheckedServer
from .harness import (
    FRAME_TIMEOUT,
    ROOT,
    LiveServer,
    LogWatch,
    ack,
    post_graphql,
    save_note,
)

pytestmark = pytest.mark.e2e

NOT_YOURS = "permission denied: this channelId belongs to a socket of another user"
DENIED_NOTES = "permission denied for stream 'notes': you may not subscribe to it"
DENIED_SECRET = "permission denied for field(s) secret of stream 'notes'"
# -- accounts in the server's database ------------------------------------------------------------

MAKE_ACCOUNTS = """
import json, secrets
from django.contrib.auth.models import User
from django.test import Client
from tests.testapp.models import ApiToken

accounts = {}
for name, staff in (("e2e-alice", False), ("e2e-bob", False), ("e2e-boss", True)):
    user = User.objects.create_user(username=name, is_staff=staff)
    client = Client()
    client.force_login(user)
    token = ApiToken.objects.create(user=user, key=secrets.token_urlsafe(32))
    session = client.cookies["sessionid"].value
    accounts[name] = {"pk": user.pk, "session": session, "token": token.key}
print(json.dumps(accounts))
"""


@dataclass(frozen=True)
class Account:
    pk: int
    session: str
    token: str

    @property
    def cookie(self) -> dict[str, str]:
        return {"Cookie": f"sessionid={self.session}"}


@dataclass(frozen=True)
class Accounts:
    alice: Account
    bob: Account
    boss: Account


@pytest.fixture(scope="module")
def accounts(live: CheckedServer) -> Accounts:
    """Two users and a staff member, each with a logged-in session and a token, made by a
    ``manage.py shell`` process on the server's own database."""
    result = subprocess.run(
        [sys.executable, "-m", "django", "shell", "-c", MAKE_ACCOUNTS],
        env=live.server.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout.strip().splitlines()[-1])
    return Accounts(
        alice=Account(**made["e2e-alice"]),
        bob=Account(**made["e2e-bob"]),
        boss=Account(**made["e2e-boss"]),
    )


# -- notes and control documents ------------------------------------------------------------------


async def note_changed(ws: TypedSocket, op_id: str, selection: str) -> None:
    await ws.start(op_id, f"subscription {{ noteChanged {{ action data {{ {selection} }} }} }}")


async def next_note(ws: TypedSocket) -> dict[str, Any]:
    message = await ws.next_frame("a noteChanged message")
    assert message["type"] == "next", message
    event: dict[str, Any] = message["payload"]["data"]["noteChanged"]
    return event


def control_body(channel_id: str, stream: str = "note-feed", **variables: Any) -> dict[str, Any]:
    type_name = {"notes": "Note", "note-feed": "NoteFeed"}[stream]
    field = f"{type_name[0].lower()}{type_name[1:]}Subscription"
    query = (
        "subscription($operation: Operation!, $action: Action!, $channelId: String!, "
        f"$data: [{type_name}Fields!]) {{ {field}(operation: $operation, action: $action, "
        "channelId: $channelId, data: $data) { ok error stream } }"
    )
    merged = {"operation": "SUBSCRIBE", "action": "ALL_ACTIONS", "channelId": channel_id}
    merged.update(variables)
    return {"query": query, "variables": merged}


def control_result(answer: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = next(iter(answer["data"].values()))
    return result


# -- authentication -------------------------------------------------------------------------------


async def until_subscribed(ws: TypedSocket, http: httpx.AsyncClient, owner: Account) -> None:
    """Typed subscriptions send no ack: save notes of ``owner`` until one arrives (bounded)."""
    deadline = time.monotonic() + FRAME_TIMEOUT
    while True:
        pk = await save_note(http, owner.pk, "probe")
        try:
            message = await ws.next_frame("a probe note", timeout=0.2)
        except FrameTimeout:
            assert time.monotonic() < deadline, "the subscription never started"
            continue
        event = message["payload"]["data"]["noteChanged"]
        assert event["data"]["id"] == pk, event
        return


async def test_session_cookie_makes_a_typed_subscription_the_users_own(
    e2e_server: LiveServer, http: httpx.AsyncClient, accounts: Accounts
) -> None:
    async with typed_socket(e2e_server.ws_url, headers=accounts.alice.cookie) as ws:
        await note_changed(ws, "1", "id owner text")
        await until_subscribed(ws, http, accounts.alice)
        await save_note(http, accounts.bob.pk, "bob's, never sent to alice")
        mine = await save_note(http, accounts.alice.pk, "alice's")
        # Bob's note was saved first: had it been sent, it would be the next message.
        assert await next_note(ws) == {
            "action": "CREATE",
            "data": {"id": mine, "owner": str(accounts.alice.pk), "text": "alice's"},
        }


async def test_token_in_connection_init_authenticates_and_a_bad_one_is_closed_4403(
    e2e_server: LiveServer, accounts: Accounts
) -> None:
    async with typed_socket(e2e_server.ws_url, payload={"token": accounts.boss.token}):
        pass  # acknowledged
    bad_token = {"token": "not-a-token"}
    async with typed_socket(e2e_server.ws_url, payload=bad_token, acknowledged=False) as bad:
        assert await bad.wait_closed() == 4403


async def test_anonymous_typed_subscription_to_a_protected_stream_is_denied(
    e2e_server: LiveServer, server_log: LogWatch
) -> None:
    server_log.allow("GraphQLError: permission denied")  # Strawberry logs the refusal
    async with typed_socket(e2e_server.ws_url) as ws:
        await note_changed(ws, "1", "id")
        message = await ws.next_frame("the permission error")
        assert message == {
            "id": "1",
            "type": "error",
            "payload": [
                {
                    "message": DENIED_NOTES,
                    "locations": [{"line": 1, "column": 16}],
                    "path": ["noteChanged"],
                }
            ],
        }


async def test_non_staff_typed_selection_of_secret_is_denied_and_staff_gets_it(
    e2e_server: LiveServer, http: httpx.AsyncClient, accounts: Accounts, server_log: LogWatch
) -> None:
    server_log.allow("GraphQLError: permission denied")  # Strawberry logs the refusal
    async with (
        typed_socket(e2e_server.ws_url, payload={"token": accounts.bob.token}) as user,
        typed_socket(e2e_server.ws_url, payload={"token": accounts.boss.token}) as boss,
    ):
        await note_changed(user, "1", "id secret")
        message = await user.next_frame("the permission error")
        assert message["type"] == "error"
        assert message["payload"][0]["message"] == DENIED_SECRET
        await note_changed(boss, "1", "id")
        await until_subscribed(boss, http, accounts.boss)
        await note_changed(boss, "2", "id secret")
        pk = await save_note(http, accounts.bob.pk, "bob's", secret="s3")
        events: dict[str, Any] = {}
        while set(events) != {"1", "2"}:
            message = await boss.next_frame("the note on both subscriptions")
            assert message["type"] == "next", message
            events[message["id"]] = message["payload"]["data"]["noteChanged"]["data"]
        assert events == {"1": {"id": pk}, "2": {"id": pk, "secret": "s3"}}


async def test_stream_socket_with_a_bad_token_is_closed_4403_and_ends_cleanly(
    e2e_server: LiveServer,
) -> None:
    """The server log of the test (checked by the ``server_log`` fixture) must hold no
    traceback: the refused consumer also handles the client's disconnect."""
    async with raw_socket(f"{e2e_server.ws_url}?token=not-a-token") as ws:
        assert await ws.wait_closed() == 4403  # the closing handshake done, too


# -- permissions and ownership on stream sockets --------------------------------------------------


async def test_anonymous_stream_socket_is_refused_the_notes_stream(
    open_socket: OpenSocket, http: httpx.AsyncClient
) -> None:
    sock = await open_socket()
    await sock.send(control_body(sock.channel_id, "notes"))
    answer = await sock.next_frame("the control answer")
    assert control_result(answer) == {"ok": False, "error": DENIED_NOTES, "stream": "notes"}


async def test_event_filter_sends_an_anonymous_stream_socket_shared_notes_only(
    open_socket: OpenSocket, http: httpx.AsyncClient, accounts: Accounts
) -> None:
    sock = await open_socket()
    await sock.send(control_body(sock.channel_id, data=["ID", "SHARED"]))
    assert await sock.next_frame("the ack") == ack("SUBSCRIBE", "ALL_ACTIONS", "note-feed")
    assert control_result(await sock.next_frame("the answer"))["ok"] is True
    await save_note(http, accounts.alice.pk, "private")
    shared = await save_note(http, accounts.alice.pk, "shared", shared=True)
    assert await sock.next_frame("the shared note") == {
        "stream": "note-feed",
        "payload": {
            "action": "create",
            "model": "testapp.note",
            "data": {"id": shared, "shared": True},
        },
    }


async def test_control_of_a_users_socket_by_another_user_or_anonymously_is_refused(
    e2e_server: LiveServer, open_socket: OpenSocket, accounts: Accounts
) -> None:
    sock = await open_socket(headers=accounts.alice.cookie)
    cookies = {"sessionid": accounts.bob.session}
    async with (
        httpx.AsyncClient(base_url=e2e_server.http_url, cookies=cookies) as as_bob,
        httpx.AsyncClient(base_url=e2e_server.http_url) as anonymous,
    ):
        for requester in (as_bob, anonymous):
            body = control_body(sock.channel_id)
            answer = await post_graphql(requester, body["query"], body["variables"])
            assert control_result(answer) == {
                "ok": False,
                "error": NOT_YOURS,
                "stream": "note-feed",
            }
    # Nothing reached the socket: its next frame answers its own request.
    await sock.send({"query": "{ productCount }"})
    assert "data" in await sock.next_frame("the answer to its own query")


async def test_users_own_stream_socket_subscribes_to_own_notes(
    open_socket: OpenSocket, http: httpx.AsyncClient, accounts: Accounts
) -> None:
    sock = await open_socket(headers=accounts.alice.cookie)
    await sock.send(control_body(sock.channel_id, "notes", data=["ID"]))
    answer = await sock.next_frame("the ack")
    assert answer == ack("SUBSCRIBE", "ALL_ACTIONS", "notes"), answer
    await save_note(http, accounts.bob.pk, "bob's")
    mine = await save_note(http, accounts.alice.pk, "alice's")
    event = await sock.next_frame("alice's note")
    while "payload" not in event:
        event = await sock.next_frame("alice's note")
    assert event["payload"]["data"] == {"id": mine}


# -- origins and frame size -----------------------------------------------------------------------


async def test_allowed_hosts_origin_validator_refuses_a_foreign_origin(
    e2e_server: LiveServer, accounts: Accounts
) -> None:
    url = e2e_server.ws_url + "-origin-checked"
    for subprotocol in (None, GRAPHQL_TRANSPORT_WS):
        with pytest.raises(InvalidStatus) as refused:
            await connecting(
                url,
                origin="http://evil.example",
                headers=accounts.alice.cookie,
                subprotocol=subprotocol,
            )
        assert refused.value.response.status_code == 403
    own = f"http://127.0.0.1:{e2e_server.port}"
    async with stream_socket(url, origin=own) as sock:
        assert sock.connect_frame["connect"] == "success"


async def test_plain_route_refuses_a_cross_origin_stream_socket(
    e2e_server: LiveServer, accounts: Accounts
) -> None:
    refused: InvalidStatus | None = None
    try:
        ws = await connecting(
            e2e_server.ws_url, origin="http://evil.example", headers=accounts.alice.cookie
        )
    except InvalidStatus as exc:
        refused = exc
    else:
        await ws.close()
    assert refused is not None, "a page on http://evil.example opened a stream socket as Alice"
    assert refused.response.status_code == 403


async def test_plain_route_refuses_a_cross_origin_graphql_transport_ws_handshake(
    e2e_server: LiveServer,
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connecting(
            e2e_server.ws_url, origin="http://evil.example", subprotocol=GRAPHQL_TRANSPORT_WS
        )
    assert refused.value.response.status_code == 403


async def test_frame_over_max_frame_size_is_refused_on_both_protocols(
    e2e_server: LiveServer, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    await sock.send({"query": "{ productCount }", "pad": "x" * 65_536})
    assert await sock.next_frame("the error") == {
        "data": None,
        "errors": [{"message": "frame too large: at most 65536 characters (MAX_FRAME_SIZE)"}],
    }
    await sock.send({"query": "{ productCount }"})
    assert "productCount" in (await sock.next_frame("the answer"))["data"]
    async with typed_socket(e2e_server.ws_url) as ws:
        await ws.send({"type": "ping", "payload": {"pad": "x" * 65_536}})
        assert await ws.wait_closed() == 1009


# -- bad input that breaks a connection today -----------------------------------------------------


async def test_deeply_nested_json_frame_is_answered_and_the_socket_stays_open(
    e2e_server: LiveServer, open_socket: OpenSocket, server_log: LogWatch
) -> None:
    sock = await open_socket()
    await sock.send_raw("[" * 50_000)
    answer = await sock.next_frame("an error frame")
    assert answer["errors"][0]["message"].startswith("frame is not valid JSON")


async def test_lone_surrogate_in_a_frame_is_answered_and_the_socket_stays_open(
    e2e_server: LiveServer, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    await sock.send_raw('{"query": "{ productCount }", "operationName": "\\ud800"}')
    answer = await sock.next_frame("an error frame")
    assert answer["errors"][0]["message"].startswith("Unknown operation named")
