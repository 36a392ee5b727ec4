from __future__ import annotations

from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import path

from strawberry_model_subs.client import ExampleClientView
from strawberry_model_subs.views import GraphQLView

from .schema import schema

#: The demo mutations the example client page offers as buttons.
DEMO_ACTIONS = [
    {"label": "Update user alice", "query": 'mutation { touchUser(username: "alice") { id } }'},
    {"label": "Create a gadget", "query": "mutation { createGadget { id } }"},
    {"label": "Update the latest gadget", "query": "mutation { updateGadget { id } }"},
    {"label": "Delete the latest gadget", "query": "mutation { deleteGadget }"},
]

urlpatterns = [
    path(
        "",
        ExampleClientView.as_view(
            websocket_path="/ws",
            graphql_path="/graphql",
            actions=DEMO_ACTIONS,
            title="strawberry-model-subs demo",
        ),
        name="client",
    ),
    path("graphql", GraphQLView.as_view(schema=schema), name="graphql"),
    *staticfiles_urlpatterns(),
]
