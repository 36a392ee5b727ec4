"""``GraphQLView``: Strawberry's async Django view, which also runs control operations.

GraphQL over HTTP runs queries and mutations; this view also answers a control document
(``subscription { productSubscription(...) { ok error stream } }``) with its single result, the
way graphene-django-subscriptions clients send it.

Example::

    urlpatterns = [path("graphql", GraphQLView.as_view(schema=schema))]
"""

from __future__ import annotations

import json
from typing import Any

from cross_web import HTTPException
from django.http import HttpRequest, HttpResponse
from strawberry.django.views import AsyncGraphQLView
from strawberry.types import ExecutionResult

from .exceptions import ConfigurationError
from .execution import execute_once, operation_kind

#: The line of Strawberry's GraphiQL page that points subscriptions at the page's own URL.
_GRAPHIQL_SUBSCRIPTION_URL = "const subscriptionUrl = httpUrlToWebSockeUrl(fetchURL);"


class GraphQLView(AsyncGraphQLView):
    """Queries, mutations, GraphiQL, and the stream protocol's control operations over HTTP.

    GraphiQL runs subscriptions over a websocket at the view's own path, so either route
    ``GraphQLWSConsumer`` at that path too, or pass ``subscriptions_path="/ws"`` (a path, or a
    full ``ws://``/``wss://`` URL) to point GraphiQL at the consumer's route.
    """

    subscriptions_path: str | None = None

    def __init__(self, *args: Any, subscriptions_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if subscriptions_path is not None:
            self.subscriptions_path = subscriptions_path

    async def render_graphql_ide(self, request: HttpRequest) -> HttpResponse:
        """Strawberry's GraphiQL page, its subscriptions pointed at ``subscriptions_path`` when
        set; ConfigurationError if this Strawberry version's page has no line to point."""
        response = await super().render_graphql_ide(request)
        if self.subscriptions_path is None:
            return response
        page = response.content.decode()
        if _GRAPHIQL_SUBSCRIPTION_URL not in page:
            raise ConfigurationError(
                "subscriptions_path cannot be applied: this Strawberry version's GraphiQL page "
                "has no subscriptionUrl line to point elsewhere; route the websocket consumer "
                "at the view's own path instead"
            )
        target = json.dumps(self.subscriptions_path)
        page = page.replace(
            _GRAPHIQL_SUBSCRIPTION_URL,
            f"const subscriptionUrl = httpUrlToWebSockeUrl(new URL({target}, fetchURL).href);",
        )
        return HttpResponse(page)

    async def execute_single(
        self,
        request: Any,
        request_adapter: Any,
        sub_response: Any,
        context: Any,
        root_value: Any,
        request_data: Any,
    ) -> ExecutionResult:
        """Run one request: a control document (POST only) to its single result, another
        subscription refused with a 400 (it needs the websocket), the rest as Strawberry does."""
        query = request_data.query
        kind = operation_kind(query, request_data.operation_name) if query else "other"
        if kind != "other":
            if request_adapter.method != "POST" or kind != "control":
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
