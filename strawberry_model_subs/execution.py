"""Running a control operation as a one-shot: a subscription document that answers once.

GraphQL over HTTP does not run subscriptions, and a stream socket has no subscription protocol, but
the stream protocol's control operation is sent both ways. A document is a control document when
its operation is a subscription whose root fields are all control fields (``{name}Subscription``);
it then runs to its first result, which is returned like a query's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import lru_cache
from typing import Any, Literal

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperationType
from strawberry.utils.aio import aclosing

from .registry import registrations

#: What a request runs: a control operation, another subscription, or anything else (a query,
#: a mutation, or a document that does not parse or pick one operation: left to Strawberry).
OperationKind = Literal["control", "subscription", "other"]

#: Longer documents are classified without the cache: a key holds its whole text.
_CACHED_QUERY_LENGTH = 4096


def operation_kind(query: str, operation_name: str | None) -> OperationKind:
    """What the request ``query`` (with ``operation_name``) runs.

    Cached for short documents: a stream socket sends the same control document again and
    again (the channel id and the rest are variables).

    >>> operation_kind("subscription { productChanged { action } }", None)
    'subscription'
    """
    control_fields = frozenset(r.control_field for r in registrations())
    if len(query) > _CACHED_QUERY_LENGTH:
        return _kind(query, operation_name, control_fields)
    return _cached_kind(query, operation_name, control_fields)


def _kind(query: str, operation_name: str | None, control_fields: frozenset[str]) -> OperationKind:
    try:
        document = parse(query, no_location=True)
    except GraphQLError:
        return "other"
    return _kind_of(document, operation_name, control_fields)


def _kind_of(
    document: DocumentNode, operation_name: str | None, control_fields: frozenset[str]
) -> OperationKind:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation != OperationType.SUBSCRIPTION:
        return "other"
    selections = operations[0].selection_set.selections
    if selections and all(
        isinstance(s, FieldNode) and s.name.value in control_fields for s in selections
    ):
        return "control"
    return "subscription"


_cached_kind = lru_cache(maxsize=256)(_kind)


def is_library_subscription(document: DocumentNode, operation_name: str | None) -> bool:
    """Whether ``document`` is a subscription whose root fields are all the library's: control
    fields (``{name}Subscription``) and typed ones (``{name}Changed``)."""
    fields = frozenset(name for r in registrations() for name in (r.control_field, r.changed_field))
    # _kind_of says "control" when every root field of a subscription is among those given.
    return _kind_of(document, operation_name, fields) == "control"


#: The library's subscription documents parsed and validated, by schema, text and parse
#: options: the document, the validation rules it was validated with, and their errors. The
#: oldest is dropped beyond the size.
_prepared: dict[tuple[Any, ...], tuple[DocumentNode, tuple[Any, ...], list[GraphQLError]]] = {}
_PREPARED_SIZE = 256


class DocumentCache(SchemaExtension):
    """Parses and validates each of the library's subscription documents once (see
    :func:`is_library_subscription`): clients send the same few over and over (what differs
    is in their variables), and parsing and validating one cost more than the rest of a
    subscribe (a control operation: 2.2 of 2.9 ms; a typed subscribe 1.4 ms). Other documents
    are left as they are. Added to their schema by the consumer and :func:`execute_once` (see
    :func:`prepared_schema`).
    """

    _key: tuple[Any, ...] | None = None
    _hit: tuple[DocumentNode, tuple[Any, ...], list[GraphQLError]] | None = None

    def on_parse(self) -> Iterator[None]:
        """The document prepared before, if this is one."""
        context = self.execution_context
        query = context.query
        if (
            query is not None
            and context.graphql_document is None
            and len(query) <= _CACHED_QUERY_LENGTH
        ):
            options = tuple(sorted(context.parse_options.items()))
            self._key = (context.schema, query, options)
            self._hit = _prepared.get(self._key)
            if self._hit is not None:
                context.graphql_document = self._hit[0]
        yield

    def on_validate(self) -> Iterator[None]:
        """Its errors, if validated before with the same rules; else kept once validated, if
        it is one of the library's."""
        context = self.execution_context
        rules = tuple(context.validation_rules)
        hit = self._hit
        if hit is not None and hit[1] == rules and context.pre_execution_errors is None:
            context.pre_execution_errors = list(hit[2])
        yield
        key, document, errors = self._key, context.graphql_document, context.pre_execution_errors
        if hit is not None or key is None or document is None or errors is None:
            return
        if not is_library_subscription(document, context.operation_name):
            return
        if len(_prepared) >= _PREPARED_SIZE:
            del _prepared[next(iter(_prepared))]
        _prepared[key] = (document, rules, list(errors))


def prepared_schema(schema: Any) -> Any:
    """``schema``, with :class:`DocumentCache` among its extensions (added once)."""
    if DocumentCache not in schema.extensions:
        schema.extensions = (*schema.extensions, DocumentCache)
    return schema


async def execute_once(
    schema: Any,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    context: Any,
    root_value: Any = None,
) -> ExecutionResult:
    """Run a subscription document to its first result and stop it."""
    stream: AsyncIterator[ExecutionResult] = await prepared_schema(schema).stream(
        query,
        variable_values=variables,
        context_value=context,
        root_value=root_value,
        operation_name=operation_name,
        allowed_operation_types=(StrawberryOperationType.SUBSCRIPTION,),
    )
    async with aclosing(stream):
        async for result in stream:
            return result
    return ExecutionResult(
        data=None, errors=[GraphQLError("the subscription ended without a result")]
    )
