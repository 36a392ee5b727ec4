"""Typed subscriptions executed once per event and written straight to the sockets.

Strawberry runs every subscription as a task of its own: each event wakes every subscriber's
task, executes its selection set and encodes its JSON, one subscriber at a time. When the
operation runs on :class:`~strawberry_model_subs.consumers.GraphQLWSConsumer` (whose protocol
handlers set :data:`DIRECT`), ``{name}Changed`` instead registers a :class:`DirectSink` with the
hub: the subscribers holding the same document, operation name and variables share one
:class:`SharedOperation`, which executes the selection set once per event and encodes its
payload once; each subscriber's frame is that payload spliced after its operation id, queued in
the connection's :class:`~strawberry_model_subs.outbox.Outbox`.

Who receives an event is decided before (the hub's per-user checks), and what a document may
select is checked when it subscribes (``fields_for``), so sharing a result never widens what a
subscriber sees: the generated types resolve nothing but the event's own data.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    VariableNode,
    parse,
)
from graphql.execution import execute_subscription_event

from .events import Event
from .frames import dumps
from .hub import Fields
from .outbox import Outbox

logger = logging.getLogger(__name__)

#: How many events' payloads a shared execution keeps (see ``SharedOperation._recent``).
RECENT_PAYLOADS = 256


@dataclass(eq=False, slots=True)
class DirectTarget:
    """Where the operation running in this task writes its frames (made by the handlers, which
    turn ``active`` off the moment the operation ends: no frame for it is queued after that)."""

    operation_id: str
    #: ``next`` (graphql-transport-ws) or ``data`` (graphql-ws).
    message_type: Literal["next", "data"]
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    outbox: Outbox
    #: Called by :meth:`hold`, when the handler can let the operation's task end once the
    #: hub holds the subscription (None: the task holds it, and :meth:`hold` must not be used).
    on_hold: Callable[[], None] | None = None
    active: bool = True
    #: Every frame of the operation starts with it (its id and type): the payload follows.
    prefix: str = field(init=False)
    #: What drops the subscription the hub holds for the operation (see :meth:`hold`).
    release: Callable[[], Awaitable[None]] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.prefix = f'{{"id":{dumps(self.operation_id)},"type":"{self.message_type}","payload":'

    @property
    def holdable(self) -> bool:
        """Whether the subscription may outlive the operation's task (see :meth:`hold`)."""
        return self.on_hold is not None

    def hold(self, release: Callable[[], Awaitable[None]]) -> None:
        """The hub holds the operation's subscription, its sink writing the frames: the
        operation's task may end (no task, coroutine or executor is kept per subscription),
        and ``release`` drops the subscription when the operation ends (:meth:`end`)."""
        assert self.on_hold is not None, "hold() on a target whose handler cannot hold"
        self.release = release
        self.on_hold()

    def end(self) -> Awaitable[None] | None:
        """The operation is over: queue nothing more, and drop what is queued for it. Returns
        the release of a held subscription, for the caller to await (None: nothing held)."""
        self.active = False
        self.outbox.forget(self.prefix)
        release, self.release = self.release, None
        return None if release is None else release()


#: The target of the operation whose task is running, or None outside GraphQLWSConsumer.
DIRECT: ContextVar[DirectTarget | None] = ContextVar("strawberry_model_subs.direct", default=None)


class SharedOperation:
    """One subscription document with its variables, executed once per event for all the
    subscribers holding it."""

    def __init__(self, schema: Any, target: DirectTarget) -> None:
        self.schema = schema
        # No context: it would keep the first subscriber's connection alive, and the generated
        # types resolve nothing from it.
        executor = schema.execution_context_class.build(
            schema._schema,
            parse(target.query),
            raw_variable_values=target.variables,
            operation_name=target.operation_name,
        )
        if isinstance(executor, list):  # validated when it subscribed: cannot happen
            raise GraphQLError(f"cannot share the execution: {executor[0].message}")
        self.executor = executor
        self._memo: tuple[Event | None, str] = (None, "")
        #: The payloads of the last events by id (each kept with its event, so that an id is
        #: not reused while in it): resumed subscribers replay the same events one after the
        #: other, each subscriber all of them.
        self._recent: dict[int, tuple[Event | None, str]] = {}

    def payload(self, event: Event) -> str:
        """The JSON payload (``{"data": ...}``) of ``event``: executed once per event."""
        # One tuple, read and written whole: safe even when hubs on several threads share it.
        memo = self._memo
        if memo[0] is event:
            return memo[1]
        recent = self._recent
        known = recent.get(id(event))
        if known is not None and known[0] is event:
            self._memo = known
            return known[1]
        try:
            memo = (event, self._execute(event))
        except Exception:  # once per event, not once per subscriber
            logger.exception("the shared execution of a typed subscription failed")
            memo = (event, EXECUTION_FAILED)
        self._memo = memo
        if len(recent) >= RECENT_PAYLOADS:
            recent.clear()
        recent[id(event)] = memo
        return memo[1]

    def _execute(self, event: Event) -> str:
        executor = self.executor.build_per_event_executor(event)
        # graphql-core's per-event executor is a shallow copy sharing its parent's memo of
        # collected subfields, keyed by the identity of lists each execution makes anew: shared,
        # it would keep every event's field lists for as long as the operation has subscribers
        # (2 KB an event). An event's own memo has all the hits there are.
        executor._relevant_sub_fields = {}
        result = execute_subscription_event(executor)
        if not isinstance(result, ExecutionResult):  # a resolver that awaits: not ours
            close = getattr(result, "close", None)
            if close is not None:
                close()
            result = ExecutionResult(
                None, [GraphQLError("an awaitable resolver cannot run in a shared execution")]
            )
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            self.schema.process_errors(result.errors)
            payload["errors"] = [error.formatted for error in result.errors]
        return dumps(payload)


#: The payload of an event whose shared execution raised (the error is logged).
EXECUTION_FAILED = dumps({"data": None, "errors": [{"message": "Unexpected error."}]})

_shared: weakref.WeakValueDictionary[tuple[str, str | None, str], SharedOperation] = (
    weakref.WeakValueDictionary()
)


def shared_operations() -> int:
    """How many typed operations are executed once for all their subscribers now (one per
    document, operation name and variables with a subscriber): for tests and diagnostics."""
    return len(_shared)


@lru_cache(maxsize=256)
def cursor_variables(query: str) -> frozenset[str]:
    """The variables of ``query`` that only say where a subscription resumes (the ``after``
    argument of its root fields): the payload of an event does not depend on them."""
    try:
        document = parse(query)
    except GraphQLSyntaxError:
        return frozenset()
    names = set()
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        for selection in definition.selection_set.selections:
            if not isinstance(selection, FieldNode):
                continue
            for argument in selection.arguments or ():
                if argument.name.value == "after" and isinstance(argument.value, VariableNode):
                    names.add(argument.value.name.value)
    return frozenset(names)


def shared_operation(schema: Any, target: DirectTarget) -> SharedOperation:
    """The SharedOperation of ``target``'s document, operation name and variables (all but the
    resume cursor's: subscribers resumed from different cursors share one execution)."""
    variables = target.variables or {}
    skip = cursor_variables(target.query)
    if skip:
        variables = {name: value for name, value in variables.items() if name not in skip}
    key = (target.query, target.operation_name, json.dumps(variables, sort_keys=True))
    operation = _shared.get(key)
    if operation is None or operation.schema is not schema:
        operation = SharedOperation(schema, target)
        _shared[key] = operation
    return operation


class DirectSink:
    """A hub sink writing one typed subscription's frames to its connection."""

    __slots__ = ("__weakref__", "operation", "target", "user")

    def __init__(self, user: Any, target: DirectTarget, operation: SharedOperation) -> None:
        self.user = user
        self.operation = operation
        self.target = target

    def push(self, event: Event, fields: Fields) -> None:
        """Queue the operation's frame for ``event`` unless the operation has ended. ``fields``
        is unused: the document's selection, checked when it subscribed, shapes the payload."""
        target = self.target
        if target.active:
            target.outbox.push(target.prefix + self.operation.payload(event) + "}")
