"""``GraphQLView``: Strawberry's async Django view, which also runs control operations.

GraphQL over HTTP runs queries and mutations; this view also answers a control document
(``subscription { productSubscription(...) { ok error stream } }``) with its single result, the
way graphene-django-subscriptions clients send it.

Example::

    urlpatterns = [path("graphql", GraphQLView.as_view(schema=schema))]
"""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from graphql import OperationType
from strawberry.django.views import AsyncGraphQLView
from strawberry.types import ExecutionResult

from .execution import execute_once, is_control_operation, operation_of


class GraphQLView(AsyncGraphQLView):
    """Queries, mutations, GraphiQL, and the stream protocol's control operations over HTTP."""

    async def execute_single(  # type: ignore[override]
        self,
        request: Any,
        request_adapter: Any,
        sub_response: Any,
        context: Any,
        root_value: Any,
        request_data: Any,
    ) -> ExecutionResult:
        query = request_data.query
        operation = operation_of(query, request_data.operation_name) if query else None
        if operation is not None and operation.operation == OperationType.SUBSCRIPTION:
            if request_adapter.method != "POST" or not is_control_operation(operation):
                raise HTTPException(
                    400,
                    "plain HTTP POST runs only the control operations (the *Subscription "
                    "fields) of subscriptions; run other subscriptions over the websocket with "
                    "the graphql-transport-ws subprotocol",
                )
            return await execute_once(
                self.schema,
                query,
                request_data.variables,
                request_data.operation_name,
                context,
                root_value,
            )
        return await super().execute_single(
            request=request,
            request_adapter=request_adapter,
            sub_response=sub_response,
            context=context,
            root_value=root_value,
            request_data=request_data,
        )
