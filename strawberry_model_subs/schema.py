"""``subscription_type()``: the Subscription root type with two fields per registered serializer."""

from __future__ import annotations

import datetime
import inspect
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Optional

import strawberry
from django.apps import apps
from graphql import GraphQLError
from rest_framework import serializers
from strawberry.scalars import JSON
from strawberry.tools import merge_types
from strawberry.types.nodes import SelectedField, Selection
from strawberry.utils.str_converters import to_camel_case

from .auth import Refreshable, Rejected
from .conf import get_settings
from .control import ControlRequest, apply_control
from .cursors import Cursor, parse_cursor
from .events import Action, Event, Operation
from .exceptions import (
    ConfigurationError,
    ControlError,
    CursorError,
    FilterError,
    RegistrationError,
)
from .filters import Where, compile_where, where_spec
from .hub import Hub, Key, Sink, get_hub
from .permissions import allowed_fields, check_subscribe, request_of, request_user, user_key
from .registry import Registration, registration_for_serializer, registrations
from .replay import acurrent_cursor
from .shared import DIRECT, DirectSink, shared_operation
from .typed import EventQueue, HeldEvents, NoEvents, changed_events, direct_events, held, resumed


@strawberry.type(description="The answer to a control operation.")
class SubscriptionResult:
    """``ok``, or the ``error`` that says why not, with the request's stream, operation and
    action."""

    ok: bool
    error: str | None
    stream: str
    operation: Operation
    action: Action


def subscription_type(*serializer_classes: type[serializers.ModelSerializer[Any]]) -> type:
    """The Subscription type for the given decorated serializers (all of them when none given).

    Per serializer it has ``{name}Subscription``, the control operation of the stream protocol,
    and ``{name}Changed``, a typed subscription for graphql-transport-ws and graphql-ws clients.
    Merge it with your own subscription type with ``strawberry.tools.merge_types``.

    Example::

        schema = strawberry.Schema(
            query=Query, subscription=subscription_type(ProductSerializer, ReviewSerializer)
        )
    """
    if not apps.is_installed("strawberry_model_subs"):
        raise ConfigurationError(
            "add 'strawberry_model_subs' (and 'channels') to INSTALLED_APPS: its app connects the "
            "model signals that produce events."
        )
    if serializer_classes:
        chosen = []
        for cls in serializer_classes:
            registration = registration_for_serializer(cls)
            if registration is None:
                raise RegistrationError(
                    f"{getattr(cls, '__name__', cls)} is not decorated with @model_subscription."
                )
            chosen.append(registration)
    else:
        chosen = list(registrations())
        if not chosen:
            raise RegistrationError(
                "subscription_type() found no serializer decorated with @model_subscription; "
                "import your serializers before building the schema."
            )
    types = tuple(_stream_type(r) for r in chosen)
    return types[0] if len(types) == 1 else merge_types("Subscription", types)


def _stream_type(registration: Registration) -> type:
    namespace = {
        registration.control_field: strawberry.subscription(
            resolver=_control_resolver(registration),
            name=registration.control_field,
            description=registration.description
            or f"Subscribe or unsubscribe a stream socket to {registration.stream!r}.",
        ),
        registration.changed_field: strawberry.subscription(
            resolver=_changed_resolver(registration),
            name=registration.changed_field,
            description=f"Every committed change of {registration.model_label} on stream "
            f"{registration.stream!r}, optionally one action or one object.",
        ),
    }
    return strawberry.type(type("Subscription", (), namespace), name="Subscription")


def _control_resolver(registration: Registration) -> Any:
    async def resolve(
        info: strawberry.Info,
        operation: Operation,
        action: Action,
        channel_id: str,
        id: strawberry.ID | None = None,
        data: list[Any] | None = None,
        after: str | None = None,
        where: Any = None,
    ) -> AsyncGenerator[SubscriptionResult, None]:
        error: str | None = None
        try:
            if data is not None and not data:
                raise ControlError(
                    "data names no field: list the fields to receive, or omit data for all"
                )
            fields = None if data is None else [member.value for member in data]
            user = await request_user(info)
            spec = None if where is None else where_spec(where)
            if operation is Operation.SUBSCRIBE:
                check_subscribe(registration, user, fields)
                if spec is not None:
                    check_where(registration, user, spec)
                if fields is None:
                    allowed = allowed_fields(registration, user)
                    fields = None if allowed is None else sorted(allowed)
            request: ControlRequest = {
                "stream": registration.stream,
                "operation": operation.value,
                "action": action.value,
                "pk": None if id is None else registration.parse_id(id),
                "fields": fields,
                "requester": user_key(user),
                "after": after,
                "where": spec,
            }
            if after:
                parse_cursor(after)  # a malformed cursor is refused before the socket is asked
            await apply_control(channel_id, request)
        except ControlError as exc:
            error = str(exc)
        yield SubscriptionResult(
            ok=error is None,
            error=error,
            stream=registration.stream,
            operation=operation,
            action=action,
        )

    resolve.__annotations__ = {
        "info": strawberry.Info,
        "operation": Operation,
        "action": Action,
        "channel_id": str,
        "id": Optional[strawberry.ID],  # noqa: UP045
        "data": Optional[list[registration.fields_enum]],  # type: ignore[name-defined]  # noqa: UP045
        "after": Optional[str],  # noqa: UP045
        "return": AsyncGenerator[SubscriptionResult, None],
    }
    _take_where(resolve, registration)
    return resolve


def _take_where(resolve: Any, registration: Registration) -> None:
    """Give a resolver its ``where: {Name}Filter`` argument (or none, for a stream with no
    filterable field)."""
    if registration.filter_type is None:
        signature = inspect.signature(resolve)
        kept = [p for p in signature.parameters.values() if p.name != "where"]
        resolve.__signature__ = signature.replace(parameters=kept)
    else:
        resolve.__annotations__["where"] = Optional[registration.filter_type]  # noqa: UP045


def check_where(registration: Registration, user: Any, spec: dict[str, Any]) -> Where:
    """Compile a subscription's filter for ``user``: refused (FilterError) when it reads a
    field the user may not receive (``fields_for``) or asks what it cannot run."""
    compiled = compile_where(spec, registration.filter_fields)
    allowed = allowed_fields(registration, user)
    if allowed is not None:
        hidden = sorted(compiled.fields - set(allowed))
        if hidden:
            names = ", ".join(to_camel_case(name) for name in hidden)
            raise FilterError(f"where: permission denied: you may not filter on {names}")
    return compiled


def cursor_field(stream: str) -> Any:
    """A field for a project's Query type whose value is the cursor of ``stream``'s newest
    event (see :func:`~strawberry_model_subs.acurrent_cursor`): query it with the data, then
    subscribe with ``after`` set to it, and nothing committed in between is missed.

    Example::

        @strawberry.type
        class Query:
            products_cursor: str = cursor_field("products")

        # { productsCursor products { id name } }, then
        # subscription { productChanged(after: $productsCursor) { action cursor data { name } } }
    """

    async def resolve() -> str:
        return await acurrent_cursor(stream)

    return strawberry.field(
        resolver=resolve,
        description=f"The cursor of the newest event of the stream {stream!r}: subscribe with "
        "after set to it to miss nothing committed after this query.",
    )


@strawberry.type(description="The answer to refreshConnection.")
class ConnectionRefresh:
    """``ok`` and the connection's new expiry (None: none), or the ``error`` that says why not
    (the connection then keeps its expiry)."""

    ok: bool
    error: str | None
    expires_at: datetime.datetime | None


def refresh_connection_field() -> Any:
    """A field for a project's Mutation type that refreshes the credential of the websocket
    connection it is sent over: the ``AUTHENTICATE`` hook runs again with ``params`` and the
    connection's expiry becomes its answer's (see
    :class:`~strawberry_model_subs.auth.Authenticated`).
    A client sends it, over the same socket, before its connection's expiry (which closes the
    connection with 4403, reason ``expired``).

    Example::

        @strawberry.type
        class Mutation:
            refresh_connection: ConnectionRefresh = refresh_connection_field()

        # mutation { refreshConnection(params: {token: "..."}) { ok error expiresAt } }
    """

    async def resolve(info: strawberry.Info, params: JSON) -> ConnectionRefresh:
        connection = request_of(info)
        if not isinstance(connection, Refreshable):
            return ConnectionRefresh(
                ok=False,
                error="refreshConnection refreshes a websocket connection: send it over the socket",
                expires_at=None,
            )
        if not isinstance(params, dict):
            return ConnectionRefresh(ok=False, error="params: an object", expires_at=None)
        try:
            identity = await connection.refresh_connection(params)
        except Rejected as exc:
            return ConnectionRefresh(ok=False, error=str(exc), expires_at=None)
        return ConnectionRefresh(ok=True, error=None, expires_at=identity.expires_at)

    return strawberry.mutation(
        resolver=resolve,
        description="Refresh the credential of the websocket connection this is sent over (the "
        "AUTHENTICATE hook runs again with params): the connection stays open past its old expiry.",
    )


def selected_data_fields(registration: Registration, info: strawberry.Info) -> list[str]:
    """The serializer fields a typed subscription selects under ``data`` (fragments included)."""
    by_graphql_name = {to_camel_case(name): name for name in registration.field_names}
    names: list[str] = []

    def walk(selections: list[Selection], under_data: bool) -> None:
        for selection in selections:
            if not isinstance(selection, SelectedField):  # a fragment: named or inline
                walk(selection.selections, under_data)
            elif under_data:
                if not selection.name.startswith("__"):  # __typename reads no data
                    names.append(by_graphql_name.get(selection.name, selection.name))
            elif selection.name == "data":
                walk(selection.selections, True)

    for field in info.selected_fields:
        walk(field.selections, False)
    return names


async def _resumed(hub: Hub, stream: str, key: Key, sink: Sink, cursor: Cursor) -> HeldEvents:
    """:func:`~strawberry_model_subs.typed.resumed`, its cursor errors as GraphQL errors."""
    try:
        return await resumed(hub, stream, key, sink, cursor)
    except CursorError as exc:
        raise GraphQLError(str(exc), extensions={"code": exc.code}) from None


def _changed_resolver(registration: Registration) -> Any:
    # A coroutine returning the stream, not an async generator: a bad id is then an error of the
    # subscription's creation, which the protocols answer with their `error` message.
    async def resolve(
        info: strawberry.Info,
        action: Action = Action.ALL_ACTIONS,
        id: strawberry.ID | None = None,
        after: str | None = None,
        where: Any = None,
    ) -> AsyncIterator[Event]:
        user = await request_user(info)
        try:
            pk = None if id is None else registration.parse_id(id)
            check_subscribe(registration, user, selected_data_fields(registration, info))
            compiled = None if where is None else check_where(registration, user, where_spec(where))
            cursor = parse_cursor(after) if after else None
        except CursorError as exc:
            raise GraphQLError(str(exc), extensions={"code": exc.code}) from None
        except ControlError as exc:
            raise GraphQLError(str(exc)) from None
        key = (action, pk, compiled)
        hub, stream = get_hub(), registration.stream
        target = DIRECT.get()
        if target is None or not get_settings().SHARE_TYPED_EXECUTION:
            if cursor is None:
                return changed_events(hub, stream, key, user)
            return await _resumed(hub, stream, key, EventQueue(user), cursor)
        sink = DirectSink(user, target, shared_operation(info.schema, target))
        if cursor is not None:
            events = await _resumed(hub, stream, key, sink, cursor)
        elif target.holdable:
            events = await held(hub, stream, key, sink)
        else:
            return direct_events(hub, stream, key, sink)
        if not target.holdable:
            return events
        # The hub holds the subscription and the sink writes its frames: the operation's task
        # ends with this empty stream (the handler sends no ``complete``), and the operation's
        # end drops the subscription.
        target.hold(events.aclose)
        return NoEvents()

    resolve.__annotations__ = {
        "info": strawberry.Info,
        "action": Action,
        "id": Optional[strawberry.ID],  # noqa: UP045
        "after": Optional[str],  # noqa: UP045
        "return": AsyncGenerator[registration.event_type, None],  # type: ignore[name-defined]
    }
    _take_where(resolve, registration)
    return resolve
