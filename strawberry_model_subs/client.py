"""``ExampleClientView``: a web page to watch and drive subscriptions from a browser.

The page ships with the package (a template and static files, no build step, nothing loaded
from the internet). It reads the streams from the schema by introspection, then:

* opens a stream-protocol socket, shows its ``channel_id`` and logs every frame;
* builds control operations (stream, action, operation, id, fields) and sends them as a text
  frame on that socket or by HTTP POST;
* runs the configured demo mutations with one click, so notifications show up at once;
* runs a typed ``{name}Changed`` subscription over graphql-transport-ws.

Example::

    from strawberry_model_subs.client import ExampleClientView

    urlpatterns = [
        path("graphql", GraphQLView.as_view(schema=schema)),
        path(
            "subscriptions/",
            ExampleClientView.as_view(
                websocket_path="/ws",
                graphql_path="/graphql",
                actions=[
                    {"label": "Create a gadget", "query": "mutation { createGadget { id } }"},
                    {
                        "label": "Rename gadget 1",
                        "query": "mutation($name: String!) { renameGadget(id: 1, name: $name) }",
                        "variables": {"name": "Lamp"},
                    },
                ],
                title="Shop subscriptions",
            ),
        ),
    ]

Its static files are served like any app's (``django.contrib.staticfiles``): ``runserver`` and
``staticfiles_urlpatterns()`` do it in development, ``collectstatic`` and your web server (or
WhiteNoise) in production. The page POSTs to ``graphql_path`` with the CSRF token in an
``X-CSRFToken`` header, so it works behind ``CsrfViewMiddleware`` too. It is a tool for
developers: mount it only where those who can open it may also run the configured mutations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from django.middleware.csrf import get_token
from django.utils.decorators import classonlymethod
from django.views.generic import TemplateView

from .exceptions import ConfigurationError

__all__ = ["ExampleClientView"]


class ExampleClientView(TemplateView):
    """Render the example client page with its configuration.

    Attributes (pass them to ``as_view()``):
        websocket_path: where ``GraphQLWSConsumer`` is routed: a path (``"/ws"``, resolved
            against the page's address, ``wss://`` on HTTPS pages) or a full ``ws://`` or
            ``wss://`` URL.
        graphql_path: where ``GraphQLView`` is routed: a path or a full URL. The page POSTs its
            introspection query, the demo mutations and (when chosen) control operations there.
        actions: the demo buttons, each ``{"label": str, "query": str}`` with an optional
            ``"variables"`` dict; ``query`` is a GraphQL document, usually a mutation.
        title: the page's title and heading.
    """

    template_name = "strawberry_model_subs/client.html"
    websocket_path: str = "/ws"
    graphql_path: str = "/graphql"
    actions: Sequence[Mapping[str, Any]] = ()
    title: str = "strawberry-model-subs client"

    #: The keys an action may have.
    ACTION_KEYS: ClassVar[frozenset[str]] = frozenset({"label", "query", "variables"})

    @classonlymethod
    def as_view(cls, **initkwargs: Any) -> Any:
        """The view function; the configuration is checked here, when the URLconf loads."""
        cls.check_config(
            websocket_path=initkwargs.get("websocket_path", cls.websocket_path),
            graphql_path=initkwargs.get("graphql_path", cls.graphql_path),
            actions=initkwargs.get("actions", cls.actions),
            title=initkwargs.get("title", cls.title),
        )
        return super().as_view(**initkwargs)

    @classmethod
    def check_config(
        cls,
        *,
        websocket_path: object,
        graphql_path: object,
        actions: object,
        title: object,
    ) -> None:
        """Raise :class:`ConfigurationError` naming what is wrong with the configuration."""
        for name, value in (
            ("websocket_path", websocket_path),
            ("graphql_path", graphql_path),
            ("title", title),
        ):
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(
                    f"ExampleClientView: {name} must be a non-empty string, got {value!r}"
                )
        if isinstance(actions, (str, bytes)) or not isinstance(actions, Sequence):
            raise ConfigurationError(
                "ExampleClientView: actions must be a list of "
                '{"label": ..., "query": ...} dicts, got ' + repr(actions)
            )
        for index, action in enumerate(actions):
            where = f"ExampleClientView: actions[{index}]"
            if not isinstance(action, Mapping):
                raise ConfigurationError(f"{where} must be a dict, got {action!r}")
            unknown = set(action) - cls.ACTION_KEYS
            if unknown:
                raise ConfigurationError(
                    f"{where} has unknown keys {sorted(unknown)}; "
                    f"allowed: {sorted(cls.ACTION_KEYS)}"
                )
            for key in ("label", "query"):
                if not isinstance(action.get(key), str) or not action[key].strip():
                    raise ConfigurationError(f"{where} needs a non-empty string {key!r}")
            variables = action.get("variables")
            if variables is not None and not isinstance(variables, Mapping):
                raise ConfigurationError(f"{where}: variables must be a dict or None")

    def get_config(self) -> dict[str, Any]:
        """The configuration the page's script reads (JSON-encoded into the page)."""
        return {
            "websocketPath": self.websocket_path,
            "graphqlPath": self.graphql_path,
            "title": self.title,
            "csrfToken": get_token(self.request),
            "actions": [
                {
                    "label": action["label"],
                    "query": action["query"],
                    "variables": dict(action.get("variables") or {}),
                }
                for action in self.actions
            ],
        }

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """The template's context: ``title``, and ``config`` from :meth:`get_config`."""
        context = super().get_context_data(**kwargs)
        context["title"] = self.title
        context["config"] = self.get_config()
        return context
