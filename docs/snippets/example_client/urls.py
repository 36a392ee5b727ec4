# project/urls.py: the page, for staff, at /subscriptions/
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.urls import path
from django.views.decorators.csrf import ensure_csrf_cookie
from strawberry_model_subs.client import ExampleClientView
from strawberry_model_subs.views import GraphQLView

from .schema import schema

urlpatterns = [
    path("admin/", admin.site.urls),
    path("graphql", ensure_csrf_cookie(GraphQLView.as_view(schema=schema))),
    path(
        "subscriptions/",
        staff_member_required(
            ExampleClientView.as_view(
                websocket_path="/ws",  # where GraphQLWSConsumer is routed (or a ws:// / wss:// URL)
                graphql_path="/graphql",  # where GraphQLView is routed
                actions=[  # demo buttons: any GraphQL document, usually a mutation
                    {
                        "label": "Rename product 1",
                        "query": "mutation ($name: String!) { renameProduct(id: 1, name: $name) }",
                        "variables": {"name": "Green tea"},
                    },
                ],
                title="Shop subscriptions",
            )
        ),
    ),
]
