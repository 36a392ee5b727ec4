"""The dependencies' internals the library builds on, each checked where it is used.

pyproject.toml bounds strawberry-graphql and channels from above because the library subclasses
or relies on parts of them that are not their public API. When a new release changes one of
these, a test here fails and names what changed, before any behaviour test fails obscurely:

* Strawberry's protocol handlers (``ws_protocols``): ``BaseGraphQLTransportWSHandler`` and
  ``BaseGraphQLWSHandler`` still have the methods the library overrides, with the same
  parameters, still call them where the overrides expect it (an operation runs in its own
  ``run_operation`` task, ``shutdown`` cleans every operation up, ``handle_start`` passes
  ``handle_async_results`` its arguments in order...), and still keep the attributes the
  overrides read (``view``, ``websocket``, ``schema``, ``connection_acknowledged``, an
  operation's ``id``, ``query``, ``variables``, ``operation_name``).
* Strawberry's channels consumer (``consumers``): ``GraphQLWSConsumer``'s constructor
  arguments, its handler-class attributes, ``message_queue`` and ``run_task`` (a stream socket
  drops the first; ``disconnect`` reads the second), the methods overridden, and the
  websocket adapter that reads the queue, decodes with ``decode_json`` and sends and closes
  through the consumer. From 0.335 Strawberry's view checks a websocket's origin itself, and
  the consumer overrides that check with its own (``origins``); 0.334, the newest release for
  Python 3.10, checks none.
* Channels: ``AsyncConsumer.__call__`` assigns ``self.channel_receive`` and then receives
  through that attribute (the consumer's property wraps it), the websocket consumer's ``send``,
  ``close``, ``receive``, ``disconnect`` and ``dispatch``.
* The rest of Strawberry the package reaches past its public API: ``Schema.stream``'s
  arguments, the execution context the shared execution builds (``shared``), the field
  back-reference ``SyncResolvers`` reads, the async Django view's overridden methods, its
  ``cross_web.HTTPException`` and the GraphiQL line ``subscriptions_path`` rewrites.
* channels_redis and redis-py: ``decode_hosts``, ``create_pool``, the layers' ``hosts``,
  ``_kwargs`` and ``brpop_timeout`` (``layers``, ``publisher``).
* Channels' session middleware keeps the ``send`` it wraps as ``real_send``, and uvicorn's
  websocket protocol holds its asyncio ``transport`` and hands the app its bound ``send``
  (``transports``: the abort of a peer that takes not even the close frame).
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import datetime as dt
import inspect
import json
import textwrap
from collections.abc import AsyncGenerator, Callable
from importlib.metadata import version
from typing import Any

import pytest
import strawberry
from channels.consumer import AsyncConsumer
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from strawberry.channels import GraphQLWSConsumer as StrawberryGraphQLWSConsumer
from strawberry.channels.handlers.ws_handler import ChannelsWebSocketAdapter
from strawberry.django.views import AsyncGraphQLView
from strawberry.http.async_base_view import AsyncBaseHTTPView, AsyncWebSocketAdapter
from strawberry.schema.schema import Schema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from strawberry_model_subs import SyncResolvers
from strawberry_model_subs.consumers import GraphQLWSConsumer
from strawberry_model_subs.mailbox import Mailbox
from strawberry_model_subs.views import _GRAPHIQL_SUBSCRIPTION_URL, GraphQLView
from strawberry_model_subs.ws_protocols import GraphQLWSHandler, PingingGraphQLTransportWSHandler

#: Whether Strawberry's view checks a websocket's origin itself (0.335 and later: not 0.334, the
#: newest release for Python 3.10), through the method the consumer overrides.
_STRAWBERRY = tuple(int(part) for part in version("strawberry-graphql").split(".")[:2])
STRAWBERRY_CHECKS_ORIGINS = _STRAWBERRY >= (0, 335)

#: The versions installed, for the failure messages.
VERSIONS = ", ".join(
    f"{package} {version(package)}"
    for package in ("strawberry-graphql", "channels", "channels-redis", "redis", "graphql-core")
)


def _where(func: Any) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def _method(cls: type, name: str) -> Any:
    """``cls.<name>``, or a failure naming what the dependency no longer has."""
    if not hasattr(cls, name):
        pytest.fail(f"{_where(cls)} has no {name!r} any more in {VERSIONS}")
    return getattr(cls, name)


def _parameters(func: Callable[..., Any]) -> list[tuple[str, str, bool]]:
    """(name, kind, has a default) of each parameter: what a caller's arguments bind to."""
    return [
        (p.name, p.kind.name, p.default is not inspect.Parameter.empty)
        for p in inspect.signature(func).parameters.values()
    ]


def _describe(func: Callable[..., Any]) -> str:
    return f"{_where(func)}{inspect.signature(func)}"


def _tree(func: Callable[..., Any]) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(func)))


def _dotted(node: ast.AST) -> str:
    """``self.view.on_ws_connect`` for the attribute chain of a call's function, else ""."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _calls(func: Callable[..., Any], name: str) -> list[ast.Call]:
    """The calls of ``name`` (a dotted name such as ``self.run_operation``) in ``func``."""
    return [
        node
        for node in ast.walk(_tree(func))
        if isinstance(node, ast.Call) and _dotted(node.func) == name
    ]


def _assigns(func: Callable[..., Any], target: str) -> bool:
    for node in ast.walk(_tree(func)):
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(_dotted(t) == target for t in targets):
            return True
    return False


def _owners(cls: type, name: str) -> list[type]:
    """The classes of ``cls``'s MRO that define ``name``, nearest first."""
    return [klass for klass in cls.__mro__ if name in vars(klass)]


# --- Overridden methods: the dependency's still exists, with the override's parameters ---------

#: (library class, the methods it overrides in a dependency's class)
OVERRIDES = [
    (
        PingingGraphQLTransportWSHandler,
        [
            "handle_message",
            "on_request_accepted",
            "handle_connection_init",
            "run_operation",
            "shutdown",
            "cleanup_operation",
        ],
    ),
    (GraphQLWSHandler, ["handle_message", "handle_async_results", "cleanup_operation"]),
    (
        GraphQLWSConsumer,
        ["connect", "on_ws_connect", "decode_json", "send", "close", "receive", "disconnect"],
    ),
    (GraphQLWSConsumer, ["dispatch"]),
    *(
        [(GraphQLWSConsumer, ["_check_websocket_origin", "is_websocket_origin_allowed"])]
        if STRAWBERRY_CHECKS_ORIGINS
        else []
    ),
    (GraphQLView, ["dispatch", "process_result", "render_graphql_ide", "execute_single"]),
    (SyncResolvers, ["resolve"]),
]


@pytest.mark.parametrize(
    ("cls", "name"),
    [(cls, name) for cls, names in OVERRIDES for name in names],
    ids=[f"{cls.__name__}.{name}" for cls, names in OVERRIDES for name in names],
)
def test_an_overridden_method_keeps_its_parameters(cls: type, name: str) -> None:
    owners = _owners(cls, name)
    ours = owners[0]
    assert ours.__module__.startswith("strawberry_model_subs."), (
        f"{cls.__qualname__}.{name} is no longer the library's own: this table is stale"
    )
    theirs = [klass for klass in owners if not klass.__module__.startswith("strawberry_model_")]
    assert theirs, (
        f"{cls.__qualname__}.{name} overrides nothing any more: no base class of "
        f"{cls.__qualname__} ({', '.join(_where(k) for k in cls.__mro__[1:])}) defines {name!r}"
        f" in {VERSIONS}, so the library's override is never called"
    )
    override, base = vars(ours)[name], vars(theirs[0])[name]
    assert _parameters(base) == _parameters(override), (
        f"{_where(base)} changed its parameters in {VERSIONS}: it is now "
        f"{_describe(base)}, and the library's override is {_describe(override)}"
    )
    assert inspect.iscoroutinefunction(base) == inspect.iscoroutinefunction(override), (
        f"{_where(base)} is {'now' if inspect.iscoroutinefunction(base) else 'no longer'} a "
        f"coroutine function in {VERSIONS}, unlike the library's override {_where(override)}"
    )


# --- Where the dependency calls what the library overrides or relies on ------------------------

#: (dependency class, its method, the call the method must still make, what the library relies
#: on it for)
CALLS: list[tuple[type, str, str, str]] = [
    (
        BaseGraphQLTransportWSHandler,
        "handle",
        "self.handle_message",
        "every graphql-transport-ws message reaches the shape check and the ping liveness",
    ),
    (
        BaseGraphQLTransportWSHandler,
        "handle",
        "self.shutdown",
        "the server's pings stop when the connection ends",
    ),
    (
        BaseGraphQLTransportWSHandler,
        "handle_message",
        "self.handle_connection_init",
        "pings start once connection_init is acknowledged",
    ),
    (
        BaseGraphQLTransportWSHandler,
        "handle_connection_init",
        "self.view.on_ws_connect",
        "the consumer learns who connects (AUTHENTICATE) in on_ws_connect",
    ),
    (
        BaseGraphQLTransportWSHandler,
        "handle_subscribe",
        "self.run_operation",
        "an operation's shared-execution target is set in run_operation, in its own task",
    ),
    (
        BaseGraphQLTransportWSHandler,
        "shutdown",
        "self.cleanup_operation",
        "each operation's shared-execution target ends with the connection",
    ),
    (
        BaseGraphQLTransportWSHandler,
        "handle_complete",
        "self.cleanup_operation",
        "a completed operation's shared-execution target ends at once",
    ),
    (
        BaseGraphQLWSHandler,
        "handle",
        "self.handle_message",
        "every graphql-ws message reaches the shape check",
    ),
    (
        BaseGraphQLWSHandler,
        "handle_connection_init",
        "self.view.on_ws_connect",
        "the consumer learns who connects (AUTHENTICATE) in on_ws_connect",
    ),
    (
        BaseGraphQLWSHandler,
        "handle_start",
        "self.handle_async_results",
        "an operation's shared-execution target is set in handle_async_results",
    ),
    (
        BaseGraphQLWSHandler,
        "handle_stop",
        "self.cleanup_operation",
        "a stopped operation's shared-execution target ends at once",
    ),
    (
        BaseGraphQLWSHandler,
        "cleanup",
        "self.cleanup_operation",
        "each operation's shared-execution target ends with the connection",
    ),
    (
        BaseGraphQLWSHandler,
        "handle_async_results",
        "self.schema.subscribe",
        "queries and mutations run over graphql-ws through the handler's schema.subscribe",
    ),
    (
        AsyncBaseHTTPView,
        "run",
        "self.graphql_transport_ws_handler_class",
        "the consumer's graphql-transport-ws handler is PingingGraphQLTransportWSHandler",
    ),
    (
        AsyncBaseHTTPView,
        "run",
        "self.graphql_ws_handler_class",
        "the consumer's graphql-ws handler is GraphQLWSHandler",
    ),
    (
        ChannelsWebSocketAdapter,
        "iter_json",
        "self.ws_consumer.message_queue.get",
        "frames reach Strawberry's handlers through the consumer's message_queue",
    ),
    (
        StrawberryGraphQLWSConsumer,
        "receive",
        "self.message_queue.put_nowait",
        "the consumer's Mailbox (put_nowait, get) stands in for Strawberry's asyncio.Queue",
    ),
    (
        StrawberryGraphQLWSConsumer,
        "disconnect",
        "self.message_queue.put_nowait",
        "the consumer's Mailbox (put_nowait, get) stands in for Strawberry's asyncio.Queue",
    ),
    (
        BaseGraphQLTransportWSHandler,
        "handle",
        "self.on_request_accepted",
        "the init's timeout starts (the handler's timer in place of Strawberry's task)",
    ),
    (
        ChannelsWebSocketAdapter,
        "iter_json",
        "self.view.decode_json",
        "JSON nested too deeply is invalid JSON (the consumer's decode_json)",
    ),
    (
        ChannelsWebSocketAdapter,
        "send_json",
        "self.ws_consumer.send",
        "nothing is sent once the socket is closed (the consumer's send)",
    ),
    (
        ChannelsWebSocketAdapter,
        "close",
        "self.ws_consumer.close",
        "a socket is closed once (the consumer's close)",
    ),
    (
        StrawberryGraphQLWSConsumer,
        "connect",
        "self.run",
        "a subprotocol socket runs Strawberry's view (the consumer's connect hands it over)",
    ),
    (
        AsyncWebsocketConsumer,
        "websocket_disconnect",
        "self.disconnect",
        "the consumer ends the socket's handler and subscriptions in disconnect",
    ),
    (
        AsyncBaseHTTPView,
        "execute_operation",
        "self.execute_single",
        "GraphQLView.execute_single runs the control operations over HTTP",
    ),
    (
        AsyncConsumer,
        "dispatch",
        "aclose_old_connections",
        "the consumer's dispatch does what Channels' does before a websocket message's handler "
        "(now and then: close_old_connections_now_and_then)",
    ),
    (
        AsyncConsumer,
        "dispatch",
        "get_handler_name",
        "the consumer's dispatch finds a websocket message's handler as Channels' does",
    ),
]


@pytest.mark.parametrize(
    ("cls", "name", "call", "why"),
    CALLS,
    ids=[f"{cls.__name__}.{name}->{call.removeprefix('self.')}" for cls, name, call, _ in CALLS],
)
def test_the_dependency_still_makes_the_call_the_library_relies_on(
    cls: type, name: str, call: str, why: str
) -> None:
    func = _method(cls, name)
    assert _calls(func, call), (
        f"{_where(func)} no longer calls {call}(...) in {VERSIONS}; the library relies on it: {why}"
    )


def test_strawberry_checks_a_websocket_origin_itself_from_0_335() -> None:
    """The consumer checks every socket's origin itself; from 0.335 Strawberry's view checks a
    subprotocol socket again, and must do so through the consumer's override (its parameters
    are checked above), not a check of its own that could disagree."""
    run = _method(AsyncBaseHTTPView, "run")
    checks = bool(_calls(run, "self._check_websocket_origin"))
    assert checks is STRAWBERRY_CHECKS_ORIGINS, (
        f"{_where(run)} {'calls' if checks else 'no longer calls'} self._check_websocket_origin"
        f" in {VERSIONS}: STRAWBERRY_CHECKS_ORIGINS is stale"
    )


def test_run_operation_is_the_operation_task() -> None:
    """The shared-execution target is a ContextVar set in run_operation: it must run as the
    operation's own task, or another operation would see it."""
    subscribe = _method(BaseGraphQLTransportWSHandler, "handle_subscribe")
    assert any(
        isinstance(arg, ast.Call) and _dotted(arg.func) == "self.run_operation"
        for task in _calls(subscribe, "asyncio.create_task")
        for arg in task.args
    ), (
        f"{_where(subscribe)} no longer runs self.run_operation(...) as its own task "
        f"(asyncio.create_task) in {VERSIONS}: PingingGraphQLTransportWSHandler.run_operation "
        "sets the operation's shared-execution target for that task"
    )


def test_handle_start_passes_handle_async_results_its_arguments_in_order() -> None:
    start = _method(BaseGraphQLWSHandler, "handle_start")
    calls = _calls(start, "self.handle_async_results")
    assert len(calls) == 1, f"{_where(start)} calls handle_async_results {len(calls)} times"
    passed = [ast.unparse(arg) for arg in calls[0].args] + [f"{k.arg}=" for k in calls[0].keywords]
    ours = list(inspect.signature(GraphQLWSHandler.handle_async_results).parameters)[1:]
    assert passed == ours, (
        f"{_where(start)} now calls handle_async_results with {passed} in {VERSIONS}; "
        f"GraphQLWSHandler.handle_async_results takes {ours}"
    )


def test_the_graphql_ws_schema_subscribe_arguments_bind_to_schema_stream() -> None:
    """GraphQLWSHandler's schema runs ``subscribe(**kwargs)`` as ``stream(**kwargs,
    allowed_operation_types=...)``."""
    results = _method(BaseGraphQLWSHandler, "handle_async_results")
    stream = _method(Schema, "stream")
    calls = _calls(results, "self.schema.subscribe")
    assert len(calls) == 1, f"{_where(results)} calls schema.subscribe {len(calls)} times"
    assert not calls[0].args, f"{_where(results)} passes schema.subscribe positional arguments"
    names = [keyword.arg for keyword in calls[0].keywords]
    try:
        inspect.signature(stream).bind(None, **dict.fromkeys(names), allowed_operation_types=())
    except TypeError as exc:
        pytest.fail(
            f"{_where(results)} calls schema.subscribe with {names}, which "
            f"{_describe(stream)} does not take in {VERSIONS}: {exc}"
        )


def test_the_views_handler_arguments_bind_to_the_handlers() -> None:
    """Strawberry constructs the handlers by keyword; the library's pass everything on."""
    run = _method(AsyncBaseHTTPView, "run")
    for attribute, base in (
        ("self.graphql_transport_ws_handler_class", BaseGraphQLTransportWSHandler),
        ("self.graphql_ws_handler_class", BaseGraphQLWSHandler),
    ):
        calls = _calls(run, attribute)
        assert len(calls) == 1, f"{_where(run)} calls {attribute} {len(calls)} times"
        names = [keyword.arg for keyword in calls[0].keywords]
        try:
            inspect.signature(base.__init__).bind(None, *calls[0].args, **dict.fromkeys(names))
        except TypeError as exc:
            pytest.fail(f"{_where(run)} builds {base.__name__} as it no longer takes: {exc}")


def test_execute_operation_calls_execute_single_with_the_overrides_parameter_names() -> None:
    operation = _method(AsyncBaseHTTPView, "execute_operation")
    ours = sorted(
        f"{name}=" for name in list(inspect.signature(GraphQLView.execute_single).parameters)[1:]
    )
    for call in _calls(operation, "self.execute_single"):
        passed = [ast.unparse(arg) for arg in call.args] + sorted(
            f"{k.arg}=" for k in call.keywords
        )
        assert passed == ours, (
            f"{_where(operation)} calls execute_single with {passed} in {VERSIONS}; "
            f"GraphQLView.execute_single takes {ours}, passed on by keyword"
        )


def test_iter_json_treats_a_json_decode_error_as_invalid_json() -> None:
    """The consumer's decode_json turns RecursionError into json.JSONDecodeError."""
    iter_json = _method(ChannelsWebSocketAdapter, "iter_json")
    caught = [
        _dotted(node.type)
        for node in ast.walk(_tree(iter_json))
        if isinstance(node, ast.ExceptHandler) and node.type is not None
    ]
    assert "json.JSONDecodeError" in caught, (
        f"{_where(iter_json)} no longer catches json.JSONDecodeError from decode_json in "
        f"{VERSIONS} (it catches {caught})"
    )


# --- Attributes the overrides read --------------------------------------------------------------


def _schema() -> strawberry.Schema:
    @strawberry.type
    class Query:
        @strawberry.field
        def hello(self) -> str:
            return "world"

    @strawberry.type
    class Subscription:
        @strawberry.subscription
        async def ticks(self) -> AsyncGenerator[int, None]:
            yield 1

    return strawberry.Schema(query=Query, subscription=Subscription)


def _handler_kwargs(base: type) -> dict[str, Any]:
    """The keyword arguments Strawberry's view builds ``base`` with, given stand-in values."""
    attribute = (
        "self.graphql_transport_ws_handler_class"
        if base is BaseGraphQLTransportWSHandler
        else "self.graphql_ws_handler_class"
    )
    (call,) = _calls(_method(AsyncBaseHTTPView, "run"), attribute)
    kwargs: dict[str, Any] = dict.fromkeys(k.arg for k in call.keywords if k.arg)
    kwargs.update(
        view=object(),
        websocket=object(),
        context={},
        schema=_schema(),
        connection_init_wait_timeout=dt.timedelta(minutes=1),
    )
    accepted = inspect.signature(base.__init__).parameters
    return {name: value for name, value in kwargs.items() if name in accepted}


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        (PingingGraphQLTransportWSHandler, BaseGraphQLTransportWSHandler),
        (GraphQLWSHandler, BaseGraphQLWSHandler),
    ],
)
def test_a_handler_keeps_the_attributes_the_library_reads(cls: type, base: type) -> None:
    kwargs = _handler_kwargs(base)
    handler = cls(**kwargs)
    for name in ("view", "websocket", "schema", "connection_acknowledged"):
        assert name in vars(handler), (
            f"{_where(base.__init__)} no longer sets self.{name} in {VERSIONS}; "
            f"{cls.__qualname__} reads it"
        )
    assert handler.view is kwargs["view"]
    assert handler.websocket is kwargs["websocket"]
    assert handler.connection_acknowledged is False
    init = _method(base, "handle_connection_init")
    assert _assigns(init, "self.connection_acknowledged"), (
        f"{_where(init)} no longer sets self.connection_acknowledged in {VERSIONS}"
    )


@pytest.mark.parametrize(
    ("cls", "name", "args", "kwargs"),
    [
        (BaseGraphQLTransportWSHandler, "handle_invalid_message", ("Invalid message",), {}),
        (AsyncWebSocketAdapter, "close", (), {"code": 1001, "reason": "Pong timeout"}),
        (BaseGraphQLWSHandler, "send_message", ({"type": "error"},), {}),
        (BaseGraphQLTransportWSHandler, "send_message", ({"type": "ping"},), {}),
        (AsyncGraphQLView, "run", (), {"request": None}),
        (StrawberryGraphQLWSConsumer, "get_context", (None,), {"response": None}),
        (StrawberryGraphQLWSConsumer, "process_result", (None, None), {}),
        (AsyncWebsocketConsumer, "accept", (), {}),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_a_method_the_library_calls_takes_its_arguments(
    cls: type, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    func = _method(cls, name)
    try:
        inspect.signature(func).bind(None, *args, **kwargs)
    except TypeError as exc:
        pytest.fail(f"the library calls {_describe(func)} in a way {VERSIONS} refuses: {exc}")


def test_an_operation_keeps_the_attributes_run_operation_reads() -> None:
    handler = BaseGraphQLTransportWSHandler(**_handler_kwargs(BaseGraphQLTransportWSHandler))
    operation = Operation(handler, "1", "subscription { ticks }", {"a": 1}, "Ticks")
    read = {
        "id": operation.id,
        "query": operation.query,
        "variables": operation.variables,
        "operation_name": operation.operation_name,
    }
    assert read == {
        "id": "1",
        "query": "subscription { ticks }",
        "variables": {"a": 1},
        "operation_name": "Ticks",
    }, f"{_where(Operation)} holds its arguments differently in {VERSIONS}: {read}"


async def test_a_completed_operation_sends_nothing_more_and_stays_registered() -> None:
    """ws_protocols marks an operation whose subscription the hub holds completed: Strawberry
    then sends nothing for it (the ``complete`` at its stream's end included) and keeps it, so
    its id and the subscription limit still count it until the client completes it."""
    handler = BaseGraphQLTransportWSHandler(**_handler_kwargs(BaseGraphQLTransportWSHandler))
    sent: list[Any] = []

    async def send_message(message: Any) -> None:
        sent.append(message)

    handler.send_message = send_message  # type: ignore[method-assign]
    operation = Operation(handler, "1", "subscription { ticks }", None, None)
    handler.operations["1"] = operation
    operation.completed = True
    await operation.send_operation_message({"id": "1", "type": "complete"})
    assert sent == [], f"{_where(Operation)} sends for a completed operation in {VERSIONS}"
    assert "1" in handler.operations, (
        f"{_where(Operation)} forgets a completed operation's id in {VERSIONS}"
    )


# --- Strawberry's channels consumer ------------------------------------------------------------


def test_the_strawberry_consumer_takes_the_arguments_the_library_passes_on() -> None:
    init = StrawberryGraphQLWSConsumer.__init__
    try:
        inspect.signature(init).bind(
            None,
            _schema(),
            keep_alive=True,
            keep_alive_interval=15.0,
            connection_init_wait_timeout=dt.timedelta(seconds=5),
            max_subscriptions_per_connection=100,
        )
    except TypeError as exc:
        pytest.fail(
            f"{_describe(init)} no longer takes what GraphQLWSConsumer passes on and documents, "
            f"in {VERSIONS}: {exc}"
        )


def test_the_strawberry_consumer_keeps_its_queue_and_run_task() -> None:
    init = StrawberryGraphQLWSConsumer.__init__
    connect = _method(StrawberryGraphQLWSConsumer, "connect")
    schema = _schema()
    theirs = vars(StrawberryGraphQLWSConsumer(schema))
    assert isinstance(theirs.get("message_queue"), asyncio.Queue), (
        f"{_where(init)} no longer sets self.message_queue (an asyncio.Queue) in {VERSIONS}: "
        "GraphQLWSConsumer replaces it with a Mailbox, and a stream socket deletes it"
    )
    consumer = GraphQLWSConsumer(schema)
    state = vars(consumer)
    assert isinstance(state.get("message_queue"), Mailbox)
    assert state.get("run_task", "missing") is None, (
        f"{_where(init)} no longer sets self.run_task = None in {VERSIONS}: "
        "GraphQLWSConsumer.disconnect reads it to tell a socket refused before Strawberry ran"
    )
    assert _assigns(connect, "self.run_task"), (
        f"{_where(connect)} no longer sets self.run_task in {VERSIONS}"
    )
    assert consumer.schema is schema


def test_the_view_attributes_the_consumer_sets_are_strawberrys() -> None:
    for name in ("graphql_transport_ws_handler_class", "graphql_ws_handler_class"):
        assert name in vars(AsyncBaseHTTPView), (
            f"{_where(AsyncBaseHTTPView)} no longer has {name} in {VERSIONS}: the consumer's "
            "handlers would never be used"
        )
    assert GraphQLWSConsumer.graphql_transport_ws_handler_class is (
        PingingGraphQLTransportWSHandler
    )
    assert GraphQLWSConsumer.graphql_ws_handler_class is GraphQLWSHandler


# --- Channels: AsyncConsumer.__call__ and channel_receive --------------------------------------


async def test_channels_receives_through_the_channel_receive_attribute(settings: Any) -> None:
    """GraphQLWSConsumer.channel_receive is a property whose setter wraps the layer's receive
    (a Redis outage must not end every socket): channels must assign the attribute and then
    receive through it, not through a local variable."""
    settings.CHANNEL_LAYERS = {
        **settings.CHANNEL_LAYERS,
        "internals-probe": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    }
    call = _where(AsyncConsumer.__call__)
    assigned: list[Callable[[], Any]] = []
    wrapper_awaited = asyncio.Event()

    class Probe(AsyncConsumer):
        channel_layer_alias = "internals-probe"

        @property  # type: ignore[override]
        def channel_receive(self) -> Callable[[], Any]:
            return self._wrapped

        @channel_receive.setter
        def channel_receive(self, receive: Callable[[], Any]) -> None:
            assigned.append(receive)

            async def wrapped() -> Any:
                wrapper_awaited.set()
                return await receive()

            self._wrapped = wrapped

        async def dispatch(self, message: Any) -> None:
            raise StopConsumer

    async def client_receive() -> dict[str, Any]:
        await wrapper_awaited.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Any) -> None:
        pass

    probe = Probe()
    try:
        await asyncio.wait_for(probe({"type": "websocket"}, client_receive, send), 5)
    except asyncio.TimeoutError:
        pytest.fail(
            f"{call} no longer receives through self.channel_receive in {VERSIONS} (assigned: "
            f"{bool(assigned)}): the wrapper that GraphQLWSConsumer's channel_receive setter "
            "installs would never be awaited"
        )
    assert len(assigned) == 1, (
        f"{call} assigned self.channel_receive {len(assigned)} times in {VERSIONS}, not once"
    )
    # What was assigned is the receive of this consumer's own layer channel.
    await probe.channel_layer.send(probe.channel_name, {"type": "probe.message"})
    received = await asyncio.wait_for(assigned[0](), 5)
    assert received == {"type": "probe.message"}, (
        f"the channel_receive that {call} assigns is not the receive of the consumer's layer "
        f"channel in {VERSIONS}"
    )


# --- The rest of Strawberry that the package reaches into --------------------------------------


def test_schema_stream_takes_what_the_library_passes() -> None:
    """execution.execute_once and ws_protocols._AnyOperationSchema call ``schema.stream``."""
    stream = _method(Schema, "stream")
    try:
        inspect.signature(stream).bind(
            None,
            "subscription { ticks }",
            variable_values=None,
            context_value=None,
            root_value=None,
            operation_name=None,
            allowed_operation_types=(),
        )
    except TypeError as exc:
        pytest.fail(f"{_describe(stream)} changed in {VERSIONS}: {exc}")


def test_the_shared_execution_can_build_its_executor() -> None:
    """shared.SharedOperation: ``schema.execution_context_class.build(schema._schema,
    document, raw_variable_values=..., operation_name=...)``, then per event
    ``build_per_event_executor(event)`` and graphql-core's ``execute_subscription_event``."""
    from graphql import GraphQLSchema, parse
    from graphql.execution import execute_subscription_event

    schema = _schema()
    assert isinstance(schema._schema, GraphQLSchema), (
        f"strawberry's Schema._schema is no longer graphql-core's GraphQLSchema in {VERSIONS}"
    )
    executor = schema.execution_context_class.build(
        schema._schema,
        parse("subscription { ticks }"),
        raw_variable_values=None,
        operation_name=None,
    )
    assert not isinstance(executor, list), executor
    assert callable(getattr(executor, "build_per_event_executor", None)), (
        f"{type(executor).__qualname__} has no build_per_event_executor in {VERSIONS}"
    )
    assert callable(execute_subscription_event)
    inspect.signature(schema.process_errors).bind([])
    # Each event's executor gets a memo of its own (shared.SharedOperation._execute).
    per_event = executor.build_per_event_executor({"ticks": 1})
    assert isinstance(getattr(per_event, "_relevant_sub_fields", None), dict), (
        f"graphql-core's per-event executor has no _relevant_sub_fields dict in {VERSIONS}"
    )
    assert per_event._relevant_sub_fields is executor._relevant_sub_fields, (
        f"graphql-core's per-event executor no longer shares its parent's memo in {VERSIONS}: "
        "shared.SharedOperation's own memo per event may be dropped"
    )


def test_a_strawberry_field_is_found_from_its_graphql_field() -> None:
    """SyncResolvers reads ``field.extensions[GraphQLCoreConverter.DEFINITION_BACKREF]``, a
    StrawberryField whose ``base_resolver.is_async`` tells a sync resolver."""
    from strawberry.schema.schema_converter import GraphQLCoreConverter
    from strawberry.types.field import StrawberryField

    schema = _schema()
    field = schema._schema.query_type.fields["hello"]  # type: ignore[union-attr]
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    assert isinstance(definition, StrawberryField), (
        f"a GraphQL field's extensions[GraphQLCoreConverter.DEFINITION_BACKREF] is {definition!r}"
        f" in {VERSIONS}, not its StrawberryField: SyncResolvers would move no resolver"
    )
    assert definition.base_resolver is not None
    assert definition.base_resolver.is_async is False


def test_the_async_view_raises_the_http_exception_the_view_catches() -> None:
    """GraphQLView.dispatch catches ``cross_web.HTTPException`` (``.reason``, ``.status_code``):
    the exception Strawberry's view raises."""
    import cross_web
    import strawberry.django.views
    import strawberry.http.async_base_view

    for module in (strawberry.http.async_base_view, strawberry.django.views):
        raised = getattr(module, "HTTPException", None)
        assert raised is cross_web.HTTPException, (
            f"{module.__name__} raises {raised!r} in {VERSIONS}, not cross_web.HTTPException, "
            "which GraphQLView.dispatch catches"
        )
    exc = cross_web.HTTPException(400, "refused")
    assert (exc.status_code, exc.reason) == (400, "refused")


def test_the_request_data_has_the_fields_execute_single_reads() -> None:
    from strawberry.http import GraphQLRequestData

    fields = {field.name for field in dataclasses.fields(GraphQLRequestData)}
    missing = {"query", "variables", "operation_name"} - fields
    assert not missing, f"GraphQLRequestData has no {sorted(missing)} in {VERSIONS}"


def test_the_graphiql_page_has_the_line_subscriptions_path_rewrites() -> None:
    page = AsyncGraphQLView(schema=_schema()).graphql_ide_html
    assert _GRAPHIQL_SUBSCRIPTION_URL in page, (
        f"Strawberry's GraphiQL page has no line {_GRAPHIQL_SUBSCRIPTION_URL!r} in {VERSIONS}: "
        "GraphQLView(subscriptions_path=...) raises ConfigurationError"
    )


def test_the_strawberry_helpers_the_package_imports_exist() -> None:
    from strawberry.schema.exceptions import CannotGetOperationTypeError
    from strawberry.tools import merge_types
    from strawberry.types.graphql import OperationType
    from strawberry.types.nodes import SelectedField, Selection
    from strawberry.utils.aio import aclosing
    from strawberry.utils.str_converters import to_camel_case

    assert to_camel_case("user_changed") == "userChanged"
    assert {"QUERY", "MUTATION", "SUBSCRIPTION"} <= {member.name for member in OperationType}
    assert callable(CannotGetOperationTypeError.as_http_error_reason)
    assert all(callable(thing) for thing in (merge_types, aclosing))
    assert SelectedField is not None
    assert Selection is not None


# --- channels_redis and redis-py ---------------------------------------------------------------

HOST = {"address": "redis://127.0.0.1:6379/0", "socket_timeout": 30}


async def test_channels_redis_keeps_the_host_settings_the_library_reads() -> None:
    """layers.redis_host reads RedisChannelLayer.hosts, or RedisPubSubChannelLayer._kwargs'
    hosts through decode_hosts (on a server's loop: the pubsub layer makes one per loop);
    layers.tune_blocking_reads sets brpop_timeout. No connection is made."""
    import redis.asyncio as aioredis
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer
    from channels_redis.utils import create_pool, decode_hosts

    from strawberry_model_subs.layers import redis_host, tune_blocking_reads

    core = RedisChannelLayer(hosts=[HOST])
    assert isinstance(core.hosts, list), f"RedisChannelLayer.hosts is {core.hosts!r}"
    assert core.hosts[0].get("socket_timeout") == 30, (
        f"RedisChannelLayer.hosts is {core.hosts!r} in {VERSIONS}"
    )
    assert isinstance(RedisChannelLayer.brpop_timeout, (int, float)), (
        f"RedisChannelLayer.brpop_timeout is gone in {VERSIONS}: tune_blocking_reads cannot "
        "keep the blocking read below redis-py's socket timeout"
    )
    assert "self.brpop_timeout" in inspect.getsource(RedisChannelLayer), (
        f"RedisChannelLayer no longer reads self.brpop_timeout in {VERSIONS}"
    )
    untuned = RedisChannelLayer(hosts=[{"address": HOST["address"]}])
    tune_blocking_reads(untuned)
    assert untuned.brpop_timeout == 2.0, (
        "tune_blocking_reads left RedisChannelLayer.brpop_timeout at "
        f"{untuned.brpop_timeout} in {VERSIONS}"
    )
    pubsub = RedisPubSubChannelLayer(hosts=[HOST])
    assert pubsub._kwargs.get("hosts") == [HOST], (
        f"RedisPubSubChannelLayer keeps its arguments differently in {VERSIONS}"
    )
    for layer in (core, pubsub):
        host = redis_host(layer)
        assert host["address"] == HOST["address"], (type(layer).__name__, host)
    assert decode_hosts([HOST])[0]["address"] == HOST["address"]
    client = aioredis.Redis(connection_pool=create_pool(dict(HOST)))
    assert callable(client.eval)


def test_redis_py_times_a_read_out_with_the_exception_the_library_expects() -> None:
    from redis.exceptions import TimeoutError as RedisTimeout

    from strawberry_model_subs.layers import is_benign_timeout

    assert is_benign_timeout(RedisTimeout("Timeout reading from socket"))
    assert not is_benign_timeout(json.JSONDecodeError("x", "", 0))


def test_the_send_wrappers_and_the_protocol_transports_aborts_reach_are_there() -> None:
    # transports.transport_abort: Channels' session middleware keeps the send it wraps as
    # ``real_send``; uvicorn's websocket protocols hand the app a bound ``send`` and hold the
    # asyncio transport as ``transport``.
    from channels.sessions import InstanceSessionWrapper
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    from strawberry_model_subs.transports import transport_abort

    source = inspect.getsource(InstanceSessionWrapper.__init__)
    assert "self.real_send = send" in source, "channels' session wrapper keeps no real_send"
    assert "self.transport" in inspect.getsource(WebSocketsSansIOProtocol.connection_made)
    assert "self.send)" in inspect.getsource(WebSocketsSansIOProtocol.run_asgi)

    class Transport:
        aborted = False

        def abort(self) -> None:
            Transport.aborted = True

    protocol = WebSocketsSansIOProtocol.__new__(WebSocketsSansIOProtocol)
    protocol.transport = Transport()  # type: ignore[assignment]
    wrapper = InstanceSessionWrapper({"type": "websocket", "cookies": {}}, protocol.send)
    abort = transport_abort(wrapper.send)
    assert abort is not None
    abort()
    assert Transport.aborted
