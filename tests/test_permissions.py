"""Permissions: who may subscribe (``has_permission``), which events reach whom
(``has_object_permission``, ``event_filter``), which fields (``fields_for``), and whose socket a
``channelId`` is; and the 1,000-subscriber check that everyone gets exactly what they may see.

The protected streams of the test site (``tests/testapp/serializers.py``):

* ``notes``: ``permission_classes=[IsAuthenticated, IsOwner]`` (staff read every note, a user
  their own) and ``fields_for`` (``secret`` for staff only);
* ``note-feed``: ``event_filter`` only: shared notes for everyone, anonymous users included, and
  each user's own notes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core import signing
from django.db import connections
from django.test import AsyncClient

from strawberry_model_subs import control
from strawberry_model_subs.hub import get_hub
from strawberry_model_subs.registry import registration_for_stream
from strawberry_model_subs.testing import StreamClient, TypedClient, control_document
from strawberry_model_subs.typegen import enum_member
from tests.conftest import (
    AnyClient,
    make_token,
    make_user,
    session_headers,
    subs_settings,
    typed_client,
    wait_subscribed,
)
from tests.testapp.asgi import application
from tests.testapp.models import Note
from tests.testapp.serializers import PUBLIC_NOTE_FIELDS, IsOwner

pytestmark = pytest.mark.django_db(transaction=True)

NOTE_FIELDS = ("id", "owner", "text", "secret", "shared")
DENIED_NOTES = "permission denied for stream 'notes': you may not subscribe to it"
DENIED_SECRET = "permission denied for field(s) secret of stream 'notes'"
NOT_YOURS = "permission denied: this channelId belongs to a socket of another user"

REQUESTER_MISSING = (
    "BUG: the control resolver (schema._control_resolver) puts no `requester` in the "
    "ControlRequest, so StreamSession.apply compares None with the socket's owner: a stream "
    "socket with a user refuses every control operation, its owner's included, and any "
    "requester (a logged-in user too) may control an anonymous socket"
)
RULES_NOT_ASKED = (
    "BUG: the control resolver (schema._control_resolver) never calls check_subscribe(): "
    "has_permission is not asked for stream-protocol subscriptions, fields_for is neither "
    "enforced nor applied to a subscription without data"
)
# -- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
async def boss() -> User:
    return await make_user("boss", staff=True)


async def stream_client(opened: list[AnyClient], user: User | None = None) -> StreamClient:
    headers = await session_headers(user) if user is not None else None
    client = StreamClient(application, headers=headers)
    await client.connect()
    opened.append(client)
    return client


async def transport(opened: list[AnyClient], user: User | None = None) -> TypedClient:
    headers = await session_headers(user) if user is not None else None
    return await typed_client(opened, headers=headers)


def frame_data(frame: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return frame["payload"]["action"], frame["payload"]["data"]


def changed(message: dict[str, Any], field_name: str = "noteChanged") -> dict[str, Any]:
    assert message["type"] == "next", message
    event: dict[str, Any] = message["payload"]["data"][field_name]
    return event


async def post_control(
    http: AsyncClient, channel_id: str, stream: str = "note-feed", **variables: Any
) -> dict[str, Any]:
    """POST a control operation over HTTP (as ``http``'s user); return the result object."""
    registration = registration_for_stream(stream)
    assert registration is not None
    body = {
        "query": control_document(stream),
        "variables": {
            "operation": "SUBSCRIBE",
            "action": "ALL_ACTIONS",
            "channelId": channel_id,
            **variables,
        },
    }
    response = await http.post("/graphql", json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    result: dict[str, Any] = response.json()["data"][registration.control_field]
    return result


# -- stream protocol: who may subscribe, what arrives ---------------------------------------------


async def test_anonymous_stream_socket_is_refused_a_stream_that_requires_authentication(
    alice: User, clients: list[AnyClient]
) -> None:
    client = await stream_client(clients)
    result = await client.subscribe("notes", "ALL_ACTIONS")
    assert (result["ok"], result["error"]) == (False, DENIED_NOTES)
    await Note.objects.acreate(owner=alice, text="private")
    await client.assert_no_frame()


async def test_owner_stream_socket_receives_its_own_notes_only(
    alice: User, bob: User, clients: list[AnyClient]
) -> None:
    client = await stream_client(clients, alice)
    result = await client.subscribe("notes", "ALL_ACTIONS", fields=["id", "text"])
    assert result["ok"], result["error"]
    await Note.objects.acreate(owner=bob, text="bob's")
    mine = await Note.objects.acreate(owner=alice, text="mine")
    mine.text = "mine, edited"
    await mine.asave()
    assert frame_data(await client.receive_event()) == ("create", {"id": mine.pk, "text": "mine"})
    assert frame_data(await client.receive_event()) == (
        "update",
        {"id": mine.pk, "text": "mine, edited"},
    )
    await client.assert_no_frame()


async def test_staff_stream_socket_receives_every_note_with_its_secret(
    alice: User, boss: User, clients: list[AnyClient]
) -> None:
    client = await stream_client(clients, boss)
    assert (await client.subscribe("notes", "CREATE"))["ok"]
    note = await Note.objects.acreate(owner=alice, text="hers", secret="s3")
    assert frame_data(await client.receive_event()) == (
        "create",
        {"id": note.pk, "owner": alice.pk, "text": "hers", "secret": "s3", "shared": False},
    )


async def test_stream_subscription_asking_for_a_forbidden_field_is_refused(
    alice: User, clients: list[AnyClient]
) -> None:
    client = await stream_client(clients, alice)
    result = await client.subscribe("notes", "ALL_ACTIONS", fields=["id", "secret"])
    assert (result["ok"], result["error"]) == (False, DENIED_SECRET)
    await Note.objects.acreate(owner=alice, text="mine", secret="s3")
    await client.assert_no_frame()


async def test_stream_subscription_without_fields_gets_only_the_allowed_fields(
    alice: User, clients: list[AnyClient]
) -> None:
    client = await stream_client(clients, alice)
    assert (await client.subscribe("notes", "CREATE"))["ok"]
    note = await Note.objects.acreate(owner=alice, text="mine", secret="s3")
    assert frame_data(await client.receive_event()) == (
        "create",
        {"id": note.pk, "owner": alice.pk, "text": "mine", "shared": False},
    )


async def test_event_filter_gives_an_anonymous_socket_the_shared_notes_only(
    alice: User, clients: list[AnyClient]
) -> None:
    client = await stream_client(clients)
    assert (await client.subscribe("note-feed", "ALL_ACTIONS", fields=["id", "shared"]))["ok"]
    await Note.objects.acreate(owner=alice, text="private")
    shared = await Note.objects.acreate(owner=alice, text="public", shared=True)
    shared.shared = False  # unshared again: the note leaves the anonymous socket's view
    await shared.asave()
    marker = await Note.objects.acreate(owner=alice, text="marker", shared=True)
    assert frame_data(await client.receive_event()) == ("create", {"id": shared.pk, "shared": True})
    # A leave, shown as the socket last saw the note (its data now is not for this user).
    assert frame_data(await client.receive_event()) == ("delete", {"id": shared.pk, "shared": True})
    assert frame_data(await client.receive_event()) == ("create", {"id": marker.pk, "shared": True})
    await client.assert_no_frame()


async def test_event_filter_gives_a_user_socket_shared_notes_and_its_own(
    alice: User, bob: User, clients: list[AnyClient]
) -> None:
    client = await stream_client(clients, alice)
    assert (await client.subscribe("note-feed", "CREATE", fields=["id"]))["ok"]
    await Note.objects.acreate(owner=bob, text="bob's private")
    shared = await Note.objects.acreate(owner=bob, text="bob's shared", shared=True)
    own = await Note.objects.acreate(owner=alice, text="alice's private")
    assert [frame_data(await client.receive_event()) for _ in range(2)] == [
        ("create", {"id": shared.pk}),
        ("create", {"id": own.pk}),
    ]
    await client.assert_no_frame()


# -- typed subscriptions --------------------------------------------------------------------------


async def test_typed_anonymous_subscription_is_a_permission_denied_error(
    alice: User, clients: list[AnyClient]
) -> None:
    gql = await transport(clients)
    await gql.subscribe("subscription { noteChanged { data { id } } }", operation_id="1")
    message = await gql.receive()
    assert message["type"] == "error"
    assert message["id"] == "1"
    assert [e["message"] for e in message["payload"]] == [DENIED_NOTES]
    assert "notes" not in get_hub().state().references
    await Note.objects.acreate(owner=alice, text="private")
    await gql.assert_no_message(timeout=0.2)


async def test_typed_owner_receives_create_update_delete_of_own_notes_only(
    alice: User, bob: User, clients: list[AnyClient]
) -> None:
    gql = await transport(clients, alice)
    await gql.subscribe(
        "subscription { noteChanged { action data { id text } } }", operation_id="1"
    )
    await wait_subscribed("notes")
    theirs = await Note.objects.acreate(owner=bob, text="bob's")
    mine = await Note.objects.acreate(owner=alice, text="a")
    theirs.text = "bob's, edited"
    await theirs.asave()
    mine.text = "b"
    await mine.asave()
    pk = mine.pk
    await theirs.adelete()
    await mine.adelete()
    received = [changed(await gql.receive()) for _ in range(3)]
    assert received == [
        {"action": "CREATE", "data": {"id": pk, "text": "a"}},
        {"action": "UPDATE", "data": {"id": pk, "text": "b"}},
        {"action": "DELETE", "data": {"id": pk, "text": "b"}},
    ]
    await gql.assert_no_message(timeout=0.2)


async def test_typed_staff_receives_every_note_with_its_secret(
    alice: User, boss: User, clients: list[AnyClient]
) -> None:
    gql = await transport(clients, boss)
    await gql.subscribe(
        "subscription { noteChanged { data { id owner secret } } }", operation_id="1"
    )
    await wait_subscribed("notes")
    note = await Note.objects.acreate(owner=alice, text="hers", secret="s3")
    assert changed(await gql.receive()) == {
        "data": {"id": note.pk, "owner": str(alice.pk), "secret": "s3"}
    }


FORBIDDEN_SELECTIONS = {
    "field": "subscription { noteChanged { data { id secret } } }",
    "alias": "subscription { noteChanged { data { text: secret } } }",
    "inline-fragment": "subscription { noteChanged { data { ... on NoteData { secret } } } }",
    "event-fragment": (
        "subscription { noteChanged { ...E } } fragment E on NoteEvent { data { secret } }"
    ),
}


@pytest.mark.parametrize(
    "query", list(FORBIDDEN_SELECTIONS.values()), ids=list(FORBIDDEN_SELECTIONS)
)
async def test_typed_selection_of_a_forbidden_field_is_a_permission_denied_error(
    alice: User, clients: list[AnyClient], query: str
) -> None:
    gql = await transport(clients, alice)
    await gql.subscribe(query, operation_id="1")
    message = await gql.receive()
    assert message["type"] == "error", message
    assert DENIED_SECRET in message["payload"][0]["message"]
    await Note.objects.acreate(owner=alice, text="mine", secret="s3")
    await gql.assert_no_message(timeout=0.2)


async def test_typed_secret_inside_a_fragment_named_like_an_allowed_field_is_refused(
    alice: User, clients: list[AnyClient]
) -> None:
    """``fragment text on NoteData { secret }``: a valid document; the secret must not leak."""
    gql = await transport(clients, alice)
    await gql.subscribe(
        "subscription { noteChanged { data { ...text } } } fragment text on NoteData { secret }",
        operation_id="1",
    )
    with contextlib.suppress(AssertionError):  # refused: the error is read below
        await wait_subscribed("notes", 1)
    await Note.objects.acreate(owner=alice, text="mine", secret="s3")
    message = await gql.receive()
    assert "s3" not in json.dumps(message), f"the secret leaked to a non-staff user: {message}"
    assert message["type"] == "error"
    assert DENIED_SECRET in message["payload"][0]["message"]


@pytest.mark.parametrize(
    "selection",
    ["{ ...Public } } } fragment Public on NoteData { id text }", "{ __typename id } } }"],
    ids=["named-fragment", "typename"],
)
async def test_typed_allowed_fields_through_a_named_fragment_or_typename_are_accepted(
    alice: User, clients: list[AnyClient], selection: str
) -> None:
    """Apollo Client adds ``__typename`` to every selection set by default."""
    gql = await transport(clients, alice)
    await gql.subscribe("subscription { noteChanged { data " + selection, operation_id="1")
    await wait_subscribed("notes")
    note = await Note.objects.acreate(owner=alice, text="mine")
    assert changed(await gql.receive())["data"]["id"] == note.pk


async def test_typed_event_filter_gives_shared_notes_to_anonymous_and_own_notes_to_owners(
    alice: User, bob: User, clients: list[AnyClient]
) -> None:
    anonymous = await transport(clients)
    owner = await transport(clients, alice)
    query = "subscription { noteFeedChanged { data { id } } }"
    await anonymous.subscribe(query, operation_id="1")
    await owner.subscribe(query, operation_id="1")
    await wait_subscribed("note-feed", 2)
    await Note.objects.acreate(owner=bob, text="bob's private")  # reaches nobody here
    alices = await Note.objects.acreate(owner=alice, text="alice's private")
    shared = await Note.objects.acreate(owner=bob, text="shared", shared=True)
    assert changed(await anonymous.receive(), "noteFeedChanged")["data"] == {"id": shared.pk}
    assert changed(await owner.receive(), "noteFeedChanged")["data"] == {"id": alices.pk}
    assert changed(await owner.receive(), "noteFeedChanged")["data"] == {"id": shared.pk}
    await anonymous.assert_no_message(timeout=0.1)
    await owner.assert_no_message(timeout=0.1)


# -- the cost of the object-level rules -----------------------------------------------------------


async def test_object_rule_is_asked_once_per_event_and_user_however_many_subscriptions(
    alice: User, bob: User, boss: User, clients: list[AnyClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []
    original = IsOwner.has_object_permission

    def counting(self: IsOwner, request: Any, view: Any, obj: Any) -> bool:
        calls.append((request.user.pk, obj.id))
        return original(self, request, view, obj)

    monkeypatch.setattr(IsOwner, "has_object_permission", counting)
    query = "subscription { noteChanged { data { id } } }"
    subscriptions = 0
    for user, sockets, per_connection in ((alice, 2, 2), (bob, 1, 2), (boss, 1, 1)):
        for _ in range(sockets):
            gql = await transport(clients, user)
            for op in range(per_connection):
                await gql.subscribe(query, operation_id=str(op))
                subscriptions += 1
    await wait_subscribed("notes", subscriptions)
    note = await Note.objects.acreate(owner=alice, text="one event")
    received = [changed(await c.receive()) for c in clients[:2] for _ in range(2)]
    received.append(changed(await clients[3].receive()))  # boss
    bobs = clients[2]
    assert isinstance(bobs, TypedClient)  # as transport() made it
    await bobs.assert_no_message(timeout=0.1)  # bob
    assert all(event["data"] == {"id": note.pk} for event in received)
    assert sorted(calls) == sorted([(alice.pk, note.pk), (bob.pk, note.pk), (boss.pk, note.pk)])


async def test_streams_without_object_rules_skip_the_per_event_check() -> None:
    for stream in ("products", "categories", "reviews"):
        registration = registration_for_stream(stream)
        assert registration is not None
        assert registration.event_check is None
    for stream in ("notes", "note-feed"):
        registration = registration_for_stream(stream)
        assert registration is not None
        assert registration.event_check is not None


# -- a channelId belongs to its socket ------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "requester"),
    [("alice", "bob"), ("alice", None), (None, "bob")],
    ids=["another-user", "anonymous-requester-of-a-users-socket", "user-of-an-anonymous-socket"],
)
async def test_control_over_http_of_a_socket_of_another_user_is_refused_and_the_socket_untouched(
    owner: str | None, requester: str | None, alice: User, bob: User, clients: list[AnyClient]
) -> None:
    users = {"alice": alice, "bob": bob, None: None}
    client = await stream_client(clients, users[owner])
    http = AsyncClient()
    if requester is not None:
        requesting = users[requester]
        assert requesting is not None
        await http.aforce_login(requesting)
    assert client.channel_id is not None
    result = await post_control(http, client.channel_id)
    assert (result["ok"], result["error"]) == (False, NOT_YOURS)
    await client.assert_no_frame()


async def test_control_by_another_users_graphql_transport_ws_connection_is_refused(
    alice: User, bob: User, clients: list[AnyClient]
) -> None:
    client = await stream_client(clients, alice)
    gql = await transport(clients, bob)
    variables = {
        "operation": "SUBSCRIBE",
        "action": "ALL_ACTIONS",
        "channelId": client.channel_id,
    }
    await gql.subscribe(control_document("note-feed"), variables, operation_id="1")
    answer = changed(await gql.receive(), "noteFeedSubscription")
    assert (answer["ok"], answer["error"]) == (False, NOT_YOURS)
    await client.assert_no_frame()


async def test_control_by_the_sockets_own_user_over_http_is_accepted(
    alice: User, clients: list[AnyClient]
) -> None:
    client = await stream_client(clients, alice)
    http = AsyncClient()
    await http.aforce_login(alice)
    assert client.channel_id is not None
    result = await post_control(http, client.channel_id, data=["ID"])
    assert (result["ok"], result["error"]) == (True, None)
    ack = await client.receive_matching(lambda f: "operation" in f)
    assert ack["ok"] is True
    note = await Note.objects.acreate(owner=alice, text="mine")
    assert frame_data(await client.receive_event()) == ("create", {"id": note.pk})


async def test_control_by_an_anonymous_requester_of_an_anonymous_socket_is_accepted(
    alice: User, clients: list[AnyClient]
) -> None:
    client = await stream_client(clients)
    assert client.channel_id is not None
    result = await post_control(AsyncClient(), client.channel_id, data=["ID"])
    assert (result["ok"], result["error"]) == (True, None)
    assert (await client.receive_matching(lambda f: "operation" in f))["ok"] is True
    note = await Note.objects.acreate(owner=alice, text="shared", shared=True)
    assert frame_data(await client.receive_event()) == ("create", {"id": note.pk})


@subs_settings(CONTROL_TIMEOUT=0.5)  # Redis: the closed socket's id is asked over the layer
async def test_channel_ids_cannot_be_guessed_or_altered(clients: list[AnyClient]) -> None:
    """Ids are distinct, signed, and any one-character change or another key's signature is
    refused, as is the id of a closed socket."""
    sockets = [await stream_client(clients) for _ in range(50)]
    ids = [s.channel_id for s in sockets]
    assert all(isinstance(i, str) for i in ids)
    assert len(set(ids)) == len(ids)
    prober = sockets[0]
    target = ids[1]
    assert target is not None
    name, signature = target.rsplit(":", 1)
    assert len(signature) >= 43  # a 256-bit HMAC in base64
    assert control.channel_name_of(target) == name
    altered = {
        target[:i] + ("A" if c != "A" else "B") + target[i + 1 :] for i, c in enumerate(target)
    }
    foreign = signing.Signer(key="another key", salt="strawberry_model_subs.channel_id")
    altered |= {name, f"{name}:", foreign.sign(name), target + "0", target[:-1]}
    altered.discard(target)
    variables = {"operation": "SUBSCRIBE", "action": "ALL_ACTIONS"}
    for channel_id in sorted(altered):
        response = await prober.execute(
            control_document("note-feed"), {**variables, "channelId": channel_id}
        )
        answer = response["data"]["noteFeedSubscription"]
        assert answer["ok"] is False, channel_id
        assert "is malformed" in answer["error"], (channel_id, answer)
    await sockets[1].assert_no_frame(timeout=0.05)
    await sockets[1].disconnect()
    clients.remove(sockets[1])
    response = await prober.execute(
        control_document("note-feed"), {**variables, "channelId": target}
    )
    answer = response["data"]["noteFeedSubscription"]
    assert answer["ok"] is False
    assert "no open stream socket has channelId" in answer["error"]


# -- 1,000 subscribers of mixed rights ------------------------------------------------------------


@dataclass
class Sub:
    """One of the 1,000 subscribers: who, what it asks, and what it gets."""

    user: User | None
    action: str
    #: Serializer fields asked for (None: all the user may read).
    fields: tuple[str, ...] | None
    client: Any = None
    refused: bool = False
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def may_subscribe(self) -> bool:
        if self.user is None:
            return False
        return self.user.is_staff or self.fields is None or "secret" not in self.fields

    def user_pk(self) -> int:
        assert self.user is not None
        return self.user.pk

    def sees(self, owner: User) -> bool:
        assert self.user is not None
        return bool(self.user.is_staff or owner.pk == self.user.pk)

    def expected_fields(self) -> tuple[str, ...]:
        assert self.user is not None
        if self.fields is not None:
            return self.fields
        return (
            NOTE_FIELDS
            if self.user.is_staff
            else tuple(f for f in NOTE_FIELDS if f in PUBLIC_NOTE_FIELDS)
        )


@dataclass
class NoteEvent:
    action: str  # create, update, delete
    owner: User
    data: dict[str, Any]
    #: An update's text before it (the rules are asked about the note as it was, too).
    was: str | None = None


async def open_subscriber(protocol: str, sub: Sub, auth: dict[int, Any], index: int) -> None:
    """Connect ``sub`` (by session cookie or by token, alternately) and subscribe it."""
    by_token = index % 2 == 1 and sub.user is not None
    user_auth = auth.get(sub.user.pk) if sub.user is not None else None
    if protocol == "stream":
        path = f"/ws?token={user_auth['token']}" if by_token and user_auth else "/ws"
        headers = user_auth["cookie"] if user_auth and not by_token else None
        client = StreamClient(application, path, headers=headers, timeout=20.0)
        await client.connect()
        sub.client = client
        result = await client.subscribe("notes", sub.action, fields=list(sub.fields or []) or None)
        sub.refused = not result["ok"]
        if sub.refused:
            assert result["error"] in (DENIED_NOTES, DENIED_SECRET), result
    else:
        headers = user_auth["cookie"] if user_auth and not by_token else None
        payload = {"token": user_auth["token"]} if by_token and user_auth else None
        typed = TypedClient(application, headers=headers, connection_params=payload)
        await typed.connect()
        sub.client = typed
        # A typed subscription has no "all I may read": a user's selects exactly those fields.
        selection = " ".join(sub.expected_fields()) if sub.user is not None else "id"
        action = "" if sub.action == "ALL_ACTIONS" else f"(action: {sub.action})"
        await typed.subscribe(
            f"subscription {{ noteChanged{action} {{ action data {{ {selection} }} }} }}",
            operation_id="1",
        )


async def receive_one(protocol: str, sub: Sub) -> None:
    if protocol == "stream":
        frame = await sub.client.receive_event()
        sub.received.append(frame_data(frame))
    else:
        message = await sub.client.receive()
        if message["type"] == "error":
            raise AssertionError(f"unexpected error for {sub}: {message}")
        event = changed(message)
        data = dict(event["data"])
        if "owner" in data:
            data["owner"] = int(data["owner"])
        sub.received.append((event["action"].lower(), data))


async def assert_silent(protocol: str, sub: Sub) -> None:
    if protocol == "stream":
        await sub.client.assert_no_frame(timeout=0.3)
    else:
        await sub.client.assert_no_message(timeout=0.3)


@pytest.mark.parametrize(
    "protocol",
    [
        pytest.param("stream"),
        "typed",
    ],
)
async def test_1000_subscribers_of_mixed_rights_get_exactly_what_each_may_see(
    protocol: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """1,000 sockets in this process, one subscription each, of 50 users (5 staff) and
    anonymous clients; half the users' sockets authenticate by session cookie, half by token.

    Each asks ALL_ACTIONS or UPDATE and some field list; anonymous sockets, and users asking for
    ``secret`` without being staff, are refused. Then 25 changes by 10 owners and one update per
    user (the barrier: each user's sockets see their own) are made, and every socket must have
    received exactly the events it may see, with exactly its fields, in order.
    """
    started = time.perf_counter()
    users = [await make_user(f"user{i}", staff=i < 5) for i in range(50)]
    auth: dict[int, Any] = {}
    for user in users:
        auth[user.pk] = {"cookie": await session_headers(user), "token": await make_token(user)}
    barriers = {u.pk: await Note.objects.acreate(owner=u, text="barrier") for u in users}

    staff_fields = [None, ("id", "secret"), ("id", "owner", "text", "secret", "shared")]
    user_fields = [None, ("id", "text"), ("id", "owner", "shared"), ("id", "secret")]
    subs: list[Sub] = []
    for i in range(1000):
        if i % 10 == 9:
            subs.append(Sub(None, "ALL_ACTIONS", None))  # 100 anonymous sockets
            continue
        user = users[i % 50]
        choices = staff_fields if user.is_staff else user_fields
        subs.append(
            Sub(user, "UPDATE" if i % 3 == 2 else "ALL_ACTIONS", choices[(i // 50) % len(choices)])
        )

    calls: list[tuple[int, int, str]] = []
    original = IsOwner.has_object_permission

    def counting(self: IsOwner, request: Any, view: Any, obj: Any) -> bool:
        calls.append((request.user.pk, obj.id, obj.text))
        return original(self, request, view, obj)

    monkeypatch.setattr(IsOwner, "has_object_permission", counting)
    hub = get_hub()
    timings: list[tuple[float, int]] = []
    dispatch = hub.dispatch

    def timed(event: Any) -> int:
        start = time.perf_counter()
        served = dispatch(event)
        timings.append((time.perf_counter() - start, served))
        return served

    monkeypatch.setattr(hub, "dispatch", timed)

    try:
        for batch in range(0, len(subs), 100):
            # Every socket of the batch is opened (and so closed below) before a failure counts.
            outcomes = await asyncio.gather(
                *(
                    open_subscriber(protocol, sub, auth, index)
                    for index, sub in enumerate(subs[batch : batch + 100], start=batch)
                ),
                return_exceptions=True,
            )
            failures = [o for o in outcomes if isinstance(o, BaseException)]
            if failures:
                raise failures[0]
        accepted = [s for s in subs if s.may_subscribe]
        if protocol == "typed":
            await wait_subscribed("notes", len(accepted))
            for sub in subs:
                if not sub.may_subscribe:
                    message = await sub.client.receive()
                    assert message["type"] == "error", message
                    assert message["payload"][0]["message"] in (DENIED_NOTES, DENIED_SECRET)
                    sub.refused = True
        assert [s.refused for s in subs] == [not s.may_subscribe for s in subs]
        connected = time.perf_counter()

        events: list[NoteEvent] = []
        owners = users[:3] + users[10:17]  # 3 staff and 7 other owners
        for n, owner in enumerate(owners):
            note = await Note.objects.acreate(owner=owner, text=f"n{n}", secret=f"s{n}")
            events.append(NoteEvent("create", owner, note_dict(note)))
            note.text = f"n{n}, edited"
            await note.asave()
            events.append(NoteEvent("update", owner, note_dict(note), was=f"n{n}"))
            if n % 2 == 0:
                data = note_dict(note)
                await note.adelete()
                events.append(NoteEvent("delete", owner, data))
        for user in users:
            barrier = barriers[user.pk]
            barrier.text = f"barrier of {user.pk}"
            await barrier.asave()
            events.append(NoteEvent("update", user, note_dict(barrier), was="barrier"))
        changes_made = time.perf_counter()

        def expected(sub: Sub) -> list[tuple[str, dict[str, Any]]]:
            if sub.refused:
                return []
            wanted = sub.expected_fields()
            return [
                (e.action, {k: v for k, v in e.data.items() if k in wanted})
                for e in events
                if sub.sees(e.owner) and (sub.action == "ALL_ACTIONS" or e.action == "update")
            ]

        expectations = [expected(s) for s in subs]

        async def collect(sub: Sub, count: int) -> None:
            for _ in range(count):
                await receive_one(protocol, sub)

        await asyncio.gather(*(collect(s, len(e)) for s, e in zip(subs, expectations, strict=True)))
        await asyncio.gather(*(assert_silent(protocol, s) for s in subs))
        delivered = time.perf_counter()
        wrong = [(s, e) for s, e in zip(subs, expectations, strict=True) if s.received != e]
        assert not wrong, f"{len(wrong)} subscribers got something else, e.g. {wrong[0]}"

        # The object rule: once per event and user with a matching subscription, and once more
        # for an update's object as it was (did the update hide or show it?), never more.
        matching_users = [
            {s.user_pk() for s in accepted if s.action == "ALL_ACTIONS" or e.action == "update"}
            for e in events
        ]
        wanted_calls = Counter(
            (pk, e.data["id"], text)
            for e, pks in zip(events, matching_users, strict=True)
            for pk in pks
            for text in (e.data["text"], e.was)
            if text is not None
        )
        assert Counter(calls) == wanted_calls
    finally:
        for sub in subs:
            if sub.client is not None:
                await sub.client.disconnect()
        # The sockets did their database work in asgiref's executor thread: close its connection,
        # or PostgreSQL cannot drop the test database at the end of the run.
        await sync_to_async(connections.close_all)()

    frames = sum(len(e) for e in expectations)
    durations = [t for t, _ in timings]
    with capsys.disabled():
        print(
            f"\n[mixed rights, {protocol}] 1000 sockets ({len(accepted)} subscribed, "
            f"{len(subs) - len(accepted)} refused) of {len(users)} users + anonymous; "
            f"{len(events)} events, {frames} deliveries, {len(calls)} object checks; "
            f"setup {connected - started:.2f} s, changes {changes_made - connected:.2f} s, "
            f"delivery {delivered - changes_made:.2f} s; hub.dispatch per event: mean "
            f"{statistics.mean(durations) * 1e3:.3f} ms, median "
            f"{statistics.median(durations) * 1e3:.3f} ms, max {max(durations) * 1e3:.3f} ms "
            f"({len(timings)} events dispatched, up to {max(n for _, n in timings)} sinks each)"
        )


def note_dict(note: Note) -> dict[str, Any]:
    return {
        "id": note.pk,
        "owner": note.owner_id,
        "text": note.text,
        "secret": note.secret,
        "shared": note.shared,
    }


def test_enum_members_of_the_note_fields_exist() -> None:
    """The field names the tests ask for are the stream's (a typo would make tests vacuous)."""
    registration = registration_for_stream("notes")
    assert registration is not None
    assert registration.field_names == NOTE_FIELDS
    fields_enum = registration.fields_enum
    assert issubclass(fields_enum, Enum)
    assert {enum_member(f) for f in NOTE_FIELDS} == {m.name for m in fields_enum}
