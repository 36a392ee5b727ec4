"""Running a control operation as a one-shot: a subscription document that answers once.

GraphQL over HTTP does not run subscriptions, and a stream socket has no subscription protocol, but
the stream protocol's control operation is sent both ways. A document is a control document when
its operation is a subscription whose root fields are all control fields (``{name}Subscription``);
it then runs to its first result, which is returned like a query's.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperationType
from strawberry.utils.aio import aclosing

from .registry import registrations


@lru_cache(maxsize=256)
def operation_of(query: str, operation_name: str | None) -> OperationDefinitionNode | None:
    """The operation a request would run, or None when the document does not parse or pick one.

    Cached: a stream socket sends the same control document again and again (the channel id
    and the rest are variables). The node is shared: read it, never change it."""
    try:
        document = parse(query)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    return operations[0] if len(operations) == 1 else None


def is_control_operation(operation: OperationDefinitionNode | None) -> bool:
    if operation is None or operation.operation != OperationType.SUBSCRIPTION:
        return False
    control_fields = {r.control_field for r in registrations()}
    selections = operation.selection_set.selections
    return bool(selections) and all(
        isinstance(s, FieldNode) and s.name.value in control_fields for s in selections
    )


async def execute_once(
    schema: Any,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    context: Any,
    root_value: Any = None,
) -> ExecutionResult:
    """Run a subscription document to its first result and stop it."""
    stream = await schema.stream(
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
