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
from django.core.exceptions import SynchronousOnlyOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from graphql import GraphQLError
from strawberry.django.views import AsyncGraphQLView
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from .exceptions import ConfigurationError
from .execution import execute_once, operation_kind

#: What a sync resolver that used the ORM on the event loop is told to do instead.
SYNC_RESOLVER_HINT = (
    "a sync resolver used the ORM on the event loop of the async GraphQLView or the websocket "
    "(Django: 'You cannot call this from an async context'): add "
    "strawberry_model_subs.SyncResolvers to the schema's extensions, or make the resolver "
    "async (await Model.objects.aget(...))"
)

#: The line of Strawberry's GraphiQL page that points subscriptions at the page's own URL.
_GRAPHIQL_SUBSCRIPTION_URL = "const subscriptionUrl = httpUrlToWebSockeUrl(fetchURL);"


class GraphQLView(AsyncGraphQLView):
    """Queries, mutations, GraphiQL, and the stream protocol's control operations over HTTP.

    GraphiQL runs subscriptions over a websocket at the view's own path, so either route
    ``GraphQLWSConsumer`` at that path too, or pass ``subscriptions_path="/ws"`` (a path, or a
    full ``ws://``/``wss://`` URL) to point GraphiQL at the consumer's route.
    """

    subscriptions_path: str | None = None

    # Django's stubs type dispatch as sync; an async view's is a coroutine (as Strawberry's).
    async def dispatch(  # type: ignore[override]
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        """Strawberry's dispatch; a request it refuses (a 4xx) is answered with a GraphQL error
        in JSON (``{"data": null, "errors": [{"message": ...}]}``), which every GraphQL client
        and GraphiQL can show, rather than plain text."""
        try:
            return await self.run(request=request)
        except HTTPException as exc:
            body = {"data": None, "errors": [{"message": exc.reason}]}
            return JsonResponse(body, status=exc.status_code)

    async def process_result(
        self, request: HttpRequest, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """Strawberry's result, an error from a sync resolver's ORM use on the event loop
        told what to do about it (:data:`SYNC_RESOLVER_HINT`)."""
        if result.errors:
            result.errors = [_with_hint(error) for error in result.errors]
        return await super().process_result(request, result)

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


def _with_hint(error: GraphQLError) -> GraphQLError:
    if not isinstance(error.original_error, SynchronousOnlyOperation):
        return error
    return GraphQLError(
        f"{SYNC_RESOLVER_HINT}.",
        nodes=error.nodes,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )
