"""The typed ``{name}Changed`` subscriptions driven by a real third-party client: Python's ``gql``.

gql's ``WebsocketsTransport`` speaks both protocols of ``GraphQLWSConsumer``: its
``GRAPHQLWS_SUBPROTOCOL`` is ``graphql-transport-ws`` and its ``APOLLO_SUBPROTOCOL`` the legacy
``graphql-ws`` (subscriptions-transport-ws). Models change through the server's mutations over
HTTP, as in the rest of the suite; absence is proven by ordering (a later marker change that must
arrive first), never by sleeping.

Synchronisation: neither protocol acknowledges a subscription, so :meth:`Connection.subscribe`
waits for gql to have sent the subscribe message, then for a round trip on the same socket
(:meth:`Connection.barrier`): see its docstring for why the answer proves the subscription is
in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import enum
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportError, TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from gql.utilities import build_client_schema, update_schema_enum, update_schema_scalars
from graphql import GraphQLScalarType, GraphQLSchema, get_introspection_query

from .clients import Arrivals, OpenSocket
from .conftest import CheckedServer
from .harness import (
    FRAME_TIMEOUT,
    LiveServer,
    LogWatch,
    ack,
    control_request,
    create_category,
    create_product,
    delete_product,
    log_problems,
    post_graphql,
    product_event,
    update_product,
)

pytestmark = pytest.mark.e2e

TRANSPORT_WS = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL  # "graphql-transport-ws"
LEGACY_WS = WebsocketsTransport.APOLLO_SUBPROTOCOL  # "graphql-ws"
PROTOCOLS = [TRANSPORT_WS, LEGACY_WS]

#: The payload message of each protocol ("next" / "data").
DATA_MESSAGE = {TRANSPORT_WS: "next", LEGACY_WS: "data"}

#: A one-shot subscription that fails (malformed channelId) without side effects: the round
#: trip of the legacy protocol, which refuses queries.
LEGACY_BARRIER = (
    'subscription { productSubscription(operation: UNSUBSCRIBE, action: DELETE, channelId: "-") '
    "{ ok } }"
)

Item = tuple[str, Any]  # ("data", dict) | ("error", exception) | ("end", None)


class RecordingTransport(WebsocketsTransport):
    """gql's websockets transport, recording what it receives and when it sends an operation."""

    def __init__(self, url: str, protocol: str) -> None:
        super().__init__(
            url=url,
            subprotocols=[protocol],
            connect_timeout=FRAME_TIMEOUT,
            close_timeout=FRAME_TIMEOUT,
            ack_timeout=FRAME_TIMEOUT,
        )
        #: What gql received on the socket, in order.
        self.received = Arrivals(f"gql {protocol} connection")
        #: Resolved with the operation id by the next operation gql sends (see Connection).
        self.on_sent: asyncio.Future[int] | None = None

    async def _receive(self) -> str:
        text = await super()._receive()
        self.received.add(json.loads(text))
        return text

    async def _send_query(self, request: GraphQLRequest) -> int:
        query_id = await super()._send_query(request)
        future, self.on_sent = self.on_sent, None
        if future is not None and not future.done():
            future.set_result(query_id)
        return query_id


class Subscription:
    """One gql subscription running in a task; its results, error and end wait in a queue."""

    def __init__(self, connection: Connection, request: GraphQLRequest, parse: bool) -> None:
        self.connection = connection
        self.items: asyncio.Queue[Item] = asyncio.Queue()
        self.query_id = -1
        self.task = asyncio.create_task(self._pump(request, parse))

    async def _pump(self, request: GraphQLRequest, parse: bool) -> None:
        try:
            async for data in self.connection.session.subscribe(request, parse_result=parse):
                self.items.put_nowait(("data", data))
        except (TransportError, OSError) as exc:
            self.items.put_nowait(("error", exc))
        else:
            self.items.put_nowait(("end", None))

    async def _item(self, what: str) -> Item:
        try:
            return await asyncio.wait_for(self.items.get(), FRAME_TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"nothing arrived within {FRAME_TIMEOUT} s on subscription {self.query_id}; "
                f"expected {what}"
            ) from None

    async def next(self, what: str) -> dict[str, Any]:
        kind, value = await self._item(what)
        assert kind == "data", f"expected {what}, got {kind}: {value!r}"
        result: dict[str, Any] = value
        return result

    async def failure(self, what: str) -> BaseException:
        kind, value = await self._item(what)
        assert kind == "error", f"expected {what}, got {kind}: {value!r}"
        exception: BaseException = value
        return exception

    async def end(self, what: str) -> None:
        kind, value = await self._item(what)
        assert kind == "end", f"expected {what}, got {kind}: {value!r}"

    async def stop(self) -> None:
        """Leave the subscription as gql does (``complete``, or ``stop`` in graphql-ws), then
        wait until the server has processed it."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.connection.barrier()


class Connection:
    """A gql session over one websocket, with the subscriptions started on it."""

    def __init__(self, session: AsyncClientSession, transport: RecordingTransport) -> None:
        self.session = session
        self.transport = transport
        self.protocol: str = transport.subprotocol
        self.subscriptions: list[Subscription] = []

    async def subscribe(
        self,
        document: str,
        variables: dict[str, Any] | None = None,
        *,
        parse: bool = False,
        barrier: bool = True,
    ) -> Subscription:
        """Start a subscription; with ``barrier``, return once the server holds it."""
        sent: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.transport.on_sent = sent
        subscription = Subscription(
            self, GraphQLRequest(document, variable_values=variables), parse
        )
        self.subscriptions.append(subscription)
        waiting: set[asyncio.Future[Any]] = {sent, subscription.task}
        done, _ = await asyncio.wait(
            waiting, timeout=FRAME_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if sent not in done:
            self.transport.on_sent = None
            sent.cancel()
            ended = subscription.items.get_nowait() if done else "nothing within the timeout"
            raise AssertionError(f"gql sent no subscribe message for {document!r}: {ended}")
        subscription.query_id = sent.result()
        if barrier:
            await self.barrier()
        return subscription

    async def barrier(self) -> None:
        """A round trip on this socket after every message sent on it so far.

        Its answer proves that the server holds each subscription started before it (and has
        dropped each one stopped before it). Neither protocol acknowledges a subscription, but
        Strawberry's handlers read a socket's messages one at a time, in order, and start one
        asyncio task per operation, so an earlier operation's task is created, and first runs,
        before a later one's (the event loop runs ready tasks in FIFO order). In its first run a
        ``{name}Changed`` task goes from Strawberry's ``schema.stream`` through the resolver into
        ``typed.changed_events``, which joins the hub's group and adds its sink to the hub's
        index before its first real suspension (``await queue.get()``): nothing on that path
        hands the loop over (the e2e server runs the in-memory channel layer, whose
        ``group_add`` does not suspend). So the subscription is indexed before the barrier's
        task even starts, let alone answers. Likewise a ``complete`` cancels the operation's
        task before the barrier's task exists, so the cancelled generator's ``finally`` (which
        leaves the index) runs first; graphql-ws's ``stop`` even awaits it.

        The barrier is ``{ productCount }`` on graphql-transport-ws (a query on the same socket);
        Strawberry's graphql-ws refuses queries, so there it is a one-shot control operation
        that fails harmlessly (a malformed channelId).
        """
        if self.protocol == TRANSPORT_WS:
            result = await self.execute("{ productCount }")
            assert isinstance(result["productCount"], int), result
        else:
            result = await self.execute(LEGACY_BARRIER)
            assert result == {"productSubscription": {"ok": False}}, result

    async def execute(self, document: str, variables: dict[str, Any] | None = None) -> Any:
        return await self.session.execute(GraphQLRequest(document, variable_values=variables))

    def messages_for(self, subscription: Subscription, start: int = 0) -> list[dict[str, Any]]:
        """The protocol messages received for ``subscription`` from index ``start`` on."""
        wanted = str(subscription.query_id)
        return [m for m in self.transport.received.messages[start:] if m.get("id") == wanted]


OpenConnection = Callable[..., Awaitable[Connection]]


@pytest.fixture
async def open_connection(e2e_server: LiveServer) -> AsyncIterator[OpenConnection]:
    """Open gql connections (``protocol``, optional client ``schema``), closed at the end."""
    async with contextlib.AsyncExitStack() as stack:

        async def factory(
            protocol: str, schema: GraphQLSchema | None = None, url: str | None = None
        ) -> Connection:
            transport = RecordingTransport(url or e2e_server.ws_url, protocol)
            client = Client(transport=transport, schema=schema, execute_timeout=FRAME_TIMEOUT)
            session = await stack.enter_async_context(client)
            assert isinstance(session, AsyncClientSession)
            assert transport.subprotocol == protocol, "the server chose another subprotocol"
            connection = Connection(session, transport)
            stack.push_async_callback(_cancel_all, connection)
            return connection

        yield factory


async def _cancel_all(connection: Connection) -> None:
    for subscription in connection.subscriptions:
        subscription.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await subscription.task


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def conn(open_connection: OpenConnection, protocol: str) -> Connection:
    return await open_connection(protocol)


def changed(selection: str = "action data { id name }", **arguments: str) -> str:
    """A ``productChanged`` subscription document with inline ``arguments``."""
    args = ", ".join(f"{key}: {value}" for key, value in arguments.items())
    return f"subscription {{ productChanged{f'({args})' if args else ''} {{ {selection} }} }}"


def product(action: str, pk: int, name: str) -> dict[str, Any]:
    return {"productChanged": {"action": action, "data": {"id": pk, "name": name}}}


# -- what arrives -----------------------------------------------------------------------------


async def test_without_arguments_every_create_update_and_delete_arrives_in_order(
    conn: Connection, http: httpx.AsyncClient
) -> None:
    sub = await conn.subscribe(changed("action model stream data { id name }"))
    pk = await create_product(http, "Kettle")
    await update_product(http, pk, "Kettle, renamed")
    await delete_product(http, pk)
    results = [await sub.next(what) for what in ("the create", "the update", "the delete")]
    event = {"model": "testapp.product", "stream": "products"}
    assert results == [
        {"productChanged": {"action": "CREATE", **event, "data": {"id": pk, "name": "Kettle"}}},
        {
            "productChanged": {
                "action": "UPDATE",
                **event,
                "data": {"id": pk, "name": "Kettle, renamed"},
            }
        },
        {
            "productChanged": {
                "action": "DELETE",
                **event,
                "data": {"id": pk, "name": "Kettle, renamed"},
            }
        },
    ]


async def test_result_holds_exactly_the_selected_fields(
    conn: Connection, http: httpx.AsyncClient
) -> None:
    sub = await conn.subscribe(changed("data { price inStock }", action="CREATE"))
    await create_product(http, "Selected", price="7.25")
    assert await sub.next("the create") == {
        "productChanged": {"data": {"price": "7.25", "inStock": True}}
    }


class ProductStatus(enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"


def _scalar(name: str, parse: Callable[[Any], Any]) -> GraphQLScalarType:
    return GraphQLScalarType(name, serialize=str, parse_value=parse)


@pytest.fixture(scope="module")
def typed_schema(live: CheckedServer) -> GraphQLSchema:
    """The server's schema as gql's client sees it, with Python types for its custom scalars
    and the product status enum (so ``parse_result`` turns wire values into those types)."""
    response = httpx.post(
        f"{live.server.http_url}/graphql", json={"query": get_introspection_query()}, timeout=10
    )
    assert response.status_code == 200, response.text
    schema = build_client_schema(response.json()["data"])
    update_schema_scalars(
        schema,
        [
            _scalar("Decimal", Decimal),
            _scalar("DateTime", datetime.datetime.fromisoformat),
            _scalar("BigInt", int),
        ],
    )
    update_schema_enum(schema, "ProductStatusChoice", ProductStatus)
    return schema


TYPED_SELECTION = "action data { id name price inStock created tags status category }"


async def test_values_are_typed_on_the_wire_and_parse_as_decimal_datetime_and_enum(
    protocol: str,
    open_connection: OpenConnection,
    typed_schema: GraphQLSchema,
    http: httpx.AsyncClient,
) -> None:
    conn = await open_connection(protocol, schema=typed_schema)
    raw = await conn.subscribe(changed(TYPED_SELECTION, action="CREATE"))
    parsed = await conn.subscribe(changed(TYPED_SELECTION, action="CREATE"), parse=True)
    category = await create_category(http, "Typed things")
    before = datetime.datetime.now(datetime.timezone.utc)
    pk = await create_product(http, "Typed", price="12.3", category_id=category)
    after = datetime.datetime.now(datetime.timezone.utc)

    wire = (await raw.next("the raw create"))["productChanged"]
    assert isinstance(wire["data"]["created"], str)
    assert wire == {
        "action": "CREATE",
        "data": {
            "id": pk,  # BigInt: a JSON number
            "name": "Typed",
            "price": "12.30",  # Decimal: a string, never a lossy float
            "inStock": True,
            "created": wire["data"]["created"],
            "tags": [],  # JSON
            "status": "DRAFT",  # the enum's name
            "category": str(category),  # ID: a string
        },
    }
    data = (await parsed.next("the parsed create"))["productChanged"]["data"]
    created = data.pop("created")
    assert isinstance(created, datetime.datetime)
    assert created.tzinfo is not None, f"DateTime without a time zone: {wire['data']['created']}"
    assert before - datetime.timedelta(seconds=1) <= created <= after, (before, created, after)
    assert data == {
        "id": pk,
        "name": "Typed",
        "price": Decimal("12.30"),
        "inStock": True,
        "tags": [],
        "status": ProductStatus.DRAFT,
        "category": str(category),
    }


# -- which changes a subscription matches -----------------------------------------------------


async def test_id_argument_limits_the_subscription_to_one_object(
    conn: Connection, http: httpx.AsyncClient
) -> None:
    watched = await create_product(http, "Watched")
    other = await create_product(http, "Other")
    sub = await conn.subscribe(changed(id=f'"{watched}"'))
    await update_product(http, other, "Other, changed")
    await delete_product(http, other)
    await update_product(http, watched, "Watched, changed")
    assert await sub.next("the watched object's update") == product(
        "UPDATE", watched, "Watched, changed"
    )


async def test_integer_id_literal_is_accepted_like_the_string_one(
    conn: Connection, http: httpx.AsyncClient
) -> None:
    watched = await create_product(http, "Watched by number")
    other = await create_product(http, "Not watched")
    sub = await conn.subscribe(changed(action="UPDATE", id=str(watched)))
    await update_product(http, other, "Not watched, changed")
    await update_product(http, watched, "Watched by number, changed")
    assert await sub.next("the watched object's update") == product(
        "UPDATE", watched, "Watched by number, changed"
    )


async def test_action_argument_limits_the_subscription_to_one_action(
    conn: Connection, http: httpx.AsyncClient
) -> None:
    pk = await create_product(http, "Doomed")
    sub = await conn.subscribe(changed(action="DELETE"))
    await create_product(http, "Created meanwhile")
    await update_product(http, pk, "Doomed, renamed")
    await delete_product(http, pk)
    assert await sub.next("the delete") == product("DELETE", pk, "Doomed, renamed")


async def test_action_and_id_together_match_only_that_action_on_that_object(
    conn: Connection, http: httpx.AsyncClient
) -> None:
    watched = await create_product(http, "Both")
    other = await create_product(http, "Neither")
    sub = await conn.subscribe(
        changed("action data { id name }", action="$action", id="$id").replace(
            "subscription {", "subscription ($action: Action!, $id: ID) {"
        ),
        {"action": "DELETE", "id": str(watched)},
    )
    await update_product(http, watched, "Both, renamed")
    await delete_product(http, other)
    await delete_product(http, watched)
    assert await sub.next("the watched object's delete") == product(
        "DELETE", watched, "Both, renamed"
    )


# -- several subscriptions on one connection --------------------------------------------------


async def test_several_subscriptions_on_one_connection_each_get_only_their_own_results(
    conn: Connection, http: httpx.AsyncClient
) -> None:
    watched = await create_product(http, "Watched")
    creates = await conn.subscribe(changed("data { name }", action="CREATE"))
    updates = await conn.subscribe(changed("data { id price }", action="UPDATE", id=f'"{watched}"'))
    categories = await conn.subscribe(
        "subscription { categoryChanged(action: CREATE) { model data { name } } }"
    )
    other = await create_product(http, "Other")
    await update_product(http, other, "Other, changed")
    await create_category(http, "Kitchen")
    await update_product(http, watched, "Watched, changed")
    assert await creates.next("the product create") == {
        "productChanged": {"data": {"name": "Other"}}
    }
    assert await categories.next("the category create") == {
        "categoryChanged": {"model": "testapp.category", "data": {"name": "Kitchen"}}
    }
    assert await updates.next("the watched object's update") == {
        "productChanged": {"data": {"id": watched, "price": "0.00"}}
    }
    # One marker per subscription, made after everything above: each one's next result must be
    # its marker, so none of them received another subscription's change.
    await create_product(http, "Marker")
    await create_category(http, "Marker category")
    await update_product(http, watched, "Watched, marker")
    assert await creates.next("the marker create") == {
        "productChanged": {"data": {"name": "Marker"}}
    }
    assert await categories.next("the marker category") == {
        "categoryChanged": {"model": "testapp.category", "data": {"name": "Marker category"}}
    }
    assert await updates.next("the marker update") == {
        "productChanged": {"data": {"id": watched, "price": "0.00"}}
    }


@pytest.mark.parametrize("sibling_filter", ["same-arguments", "wider-arguments"])
async def test_complete_stops_one_subscription_and_its_sibling_on_the_group_keeps_receiving(
    sibling_filter: str, conn: Connection, http: httpx.AsyncClient
) -> None:
    pk = await create_product(http, "Watched twice")
    leaving = await conn.subscribe(changed(action="UPDATE", id=f'"{pk}"'))
    sibling_args = (
        {"action": "UPDATE", "id": f'"{pk}"'} if sibling_filter == "same-arguments" else {}
    )
    staying = await conn.subscribe(changed(**sibling_args))
    await update_product(http, pk, "First")
    assert await leaving.next("the first update") == product("UPDATE", pk, "First")
    assert await staying.next("the first update") == product("UPDATE", pk, "First")

    await leaving.stop()
    stopped_at = len(conn.transport.received.messages)
    await update_product(http, pk, "Second")
    assert await staying.next("the update after the complete") == product("UPDATE", pk, "Second")
    await update_product(http, pk, "Marker")
    assert await staying.next("the marker update") == product("UPDATE", pk, "Marker")
    after_stop = conn.messages_for(leaving, stopped_at)
    assert [m for m in after_stop if m["type"] == DATA_MESSAGE[conn.protocol]] == [], after_stop
    assert leaving.items.empty(), "the stopped subscription yielded again"


# -- queries, mutations and the control operation on the same socket --------------------------


async def test_query_and_mutation_over_the_graphql_transport_ws_socket_work_beside_a_subscription(
    open_connection: OpenConnection, http: httpx.AsyncClient
) -> None:
    conn = await open_connection(TRANSPORT_WS)
    sub = await conn.subscribe(changed(action="CREATE"))
    created = await conn.execute(
        'mutation { createProduct(name: "Made over the socket", price: "1.5") { id name } }'
    )
    pk = int(created["createProduct"]["id"])
    assert created == {"createProduct": {"id": str(pk), "name": "Made over the socket"}}
    assert await sub.next("the create made over the socket") == product(
        "CREATE", pk, "Made over the socket"
    )
    over_socket = await conn.execute("{ productCount }")
    over_http = await post_graphql(http, "{ productCount }")
    assert over_socket == over_http["data"], (over_socket, over_http)


async def test_query_and_mutation_over_the_legacy_graphql_ws_socket_work_beside_a_subscription(
    open_connection: OpenConnection, http: httpx.AsyncClient, server_log: LogWatch
) -> None:
    conn = await open_connection(LEGACY_WS)
    sub = await conn.subscribe(changed(action="CREATE"))
    count = await conn.execute("{ productCount }")
    assert count == (await post_graphql(http, "{ productCount }"))["data"]
    created = await conn.execute('mutation { createProduct(name: "Legacy") { id } }')
    pk = int(created["createProduct"]["id"])
    assert await sub.next("the create") == product("CREATE", pk, "Legacy")


async def test_control_operation_is_a_one_shot_next_then_complete_and_acks_the_stream_socket(
    conn: Connection,
    http: httpx.AsyncClient,
    open_socket: OpenSocket,
) -> None:
    sock = await open_socket()
    request = control_request(sock.channel_id, action="CREATE", data=["ID", "NAME"])
    one_shot = await conn.subscribe(request["query"], request["variables"], barrier=False)
    assert await one_shot.next("the control answer") == {
        "productSubscription": {"ok": True, "error": None, "stream": "products"}
    }
    await one_shot.end("the end of the one-shot (complete)")
    complete = {"id": str(one_shot.query_id), "type": "complete"}
    assert complete in conn.transport.received.messages
    assert await sock.next_frame("the ack") == ack("SUBSCRIBE", "CREATE")
    pk = await create_product(http, "Via the one-shot")
    assert await sock.next_frame("the create") == product_event(
        "create", {"id": pk, "name": "Via the one-shot"}
    )


# -- protocol details -------------------------------------------------------------------------


async def test_client_ping_is_answered_with_a_pong_on_graphql_transport_ws(
    open_connection: OpenConnection,
) -> None:
    conn = await open_connection(TRANSPORT_WS)
    start = len(conn.transport.received.messages)
    await conn.transport.send_ping({"probe": 1})
    await conn.transport.received.wait_for(lambda m: m["type"] == "pong", "the pong", start=start)


async def test_legacy_graphql_ws_server_sends_keep_alive_after_the_ack(
    open_connection: OpenConnection, http: httpx.AsyncClient
) -> None:
    conn = await open_connection(LEGACY_WS)
    # gql reads the ack itself (not recorded); the first "ka" follows it right away.
    await conn.transport.received.wait_for(lambda m: m["type"] == "ka", "the first ka")
    sub = await conn.subscribe(changed(action="CREATE"))
    pk = await create_product(http, "After ka")
    assert await sub.next("the create") == product("CREATE", pk, "After ka")


async def test_graphql_path_serves_the_same_subscriptions_as_ws(
    open_connection: OpenConnection, protocol: str, e2e_server: LiveServer, http: httpx.AsyncClient
) -> None:
    url = e2e_server.ws_url.removesuffix("/ws") + "/graphql"
    conn = await open_connection(protocol, url=url)
    sub = await conn.subscribe(changed(action="CREATE"))
    pk = await create_product(http, "Via /graphql")
    assert await sub.next("the create") == product("CREATE", pk, "Via /graphql")


# -- invalid arguments ------------------------------------------------------------------------

INVALID = {
    "unknown-enum-value": (
        changed(action="SOMETIMES"),
        "Value 'SOMETIMES' does not exist in 'Action' enum",
    ),
    "id-of-the-wrong-type": (
        changed(id='"abc"'),
        "id 'abc' is not a valid primary key of testapp.product",
    ),
    "unknown-field": (
        changed("data { colour }"),
        "Cannot query field 'colour' on type 'ProductData'",
    ),
    "unknown-argument": (changed(colour='"red"'), "Unknown argument 'colour'"),
}


@pytest.mark.parametrize("case", list(INVALID))
async def test_invalid_subscription_gets_the_protocols_error_message_and_the_connection_goes_on(
    case: str, conn: Connection, http: httpx.AsyncClient, server_log: LogWatch
) -> None:
    # Strawberry logs the resolver's GraphQLError with a traceback: expected for the bad id.
    server_log.allow("is not a valid primary key of testapp.product")
    document, reason = INVALID[case]
    before = await conn.subscribe(changed(action="CREATE"))
    bad = await conn.subscribe(document, barrier=False)
    error = await bad.failure("the error")
    assert isinstance(error, TransportQueryError), repr(error)
    assert error.errors is not None
    assert len(error.errors) == 1, error.errors
    assert reason in error.errors[0]["message"], error.errors
    assert "Traceback" not in error.errors[0]["message"]
    # The protocol's own error message, not a result with errors.
    messages = conn.messages_for(bad)
    assert [m["type"] for m in messages] == ["error"], messages
    if conn.protocol == TRANSPORT_WS:
        assert isinstance(messages[0]["payload"], list), messages  # a list of GraphQL errors
    else:
        assert isinstance(messages[0]["payload"], dict), messages  # one GraphQL error
    # The connection stays open: the earlier subscription and a new one both receive.
    after = await conn.subscribe(changed(action="CREATE"))
    pk = await create_product(http, f"After {case}")
    assert await before.next("the create") == product("CREATE", pk, f"After {case}")
    assert await after.next("the create") == product("CREATE", pk, f"After {case}")


# -- a server restart -------------------------------------------------------------------------


async def test_client_reconnects_after_a_server_restart_and_receives_later_changes(
    tmp_path: Path,
) -> None:
    server = LiveServer(tmp_path)
    server.migrate()
    server.start()
    first_log = ""
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10.0) as http:
            transport = RecordingTransport(server.ws_url, TRANSPORT_WS)
            client = Client(transport=transport, execute_timeout=FRAME_TIMEOUT)
            async with client as session:
                conn = Connection(session, transport)
                sub = await conn.subscribe(changed(action="CREATE"))
                before = await create_product(http, "Before the restart")
                assert await sub.next("the create") == product(
                    "CREATE", before, "Before the restart"
                )
                server.stop()
                failure = await sub.failure("the connection's failure when the server stops")
                assert isinstance(failure, TransportError), repr(failure)
            first_log = server.log_text()

            server.start()  # the same port and the same database
            async with client as session:
                conn = Connection(session, transport)
                sub = await conn.subscribe(changed(action="CREATE"))
                after = await create_product(http, "After the restart")
                assert after > before, "the restarted server lost the database"
                assert await sub.next("the create after the restart") == product(
                    "CREATE", after, "After the restart"
                )
    finally:
        server.stop()
    for text in (first_log, server.log_text()):
        problems = log_problems(text)
        assert not problems, "the restarted server logged errors:\n" + "\n\n".join(problems)
