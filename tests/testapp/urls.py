from __future__ import annotations

from django.urls import path

from strawberry_model_subs.views import GraphQLView

from . import views
from .schema import schema

urlpatterns = [
    path("graphql", GraphQLView.as_view(schema=schema)),
    path("graphiql-ws", GraphQLView.as_view(schema=schema, subscriptions_path="/ws")),
    # A plain sync view (tests/test_atomic_requests.py).
    path("sync/products", views.create_products),
]
