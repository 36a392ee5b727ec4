"""ExampleClientView: the page renders with its configuration, escaped, and its own assets."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import path

import strawberry_model_subs
from strawberry_model_subs.client import ExampleClientView
from strawberry_model_subs.exceptions import ConfigurationError

PACKAGE = Path(strawberry_model_subs.__file__).resolve().parent
TEMPLATE = PACKAGE / "templates" / "strawberry_model_subs" / "client.html"
STATIC = PACKAGE / "static" / "strawberry_model_subs"

HOSTILE = '</script><script>alert("x")</script> & <!-- "quotes" \u2028'

ACTIONS: list[dict[str, Any]] = [
    {"label": "Create a product", "query": 'mutation { createProduct(name: "Tea") { id } }'},
    {
        "label": HOSTILE,
        "query": "mutation($name: String!) { createProduct(name: $name) { id } }",
        "variables": {"name": HOSTILE},
    },
]

urlpatterns = [
    path("client/", ExampleClientView.as_view()),
    path(
        "custom/",
        ExampleClientView.as_view(
            websocket_path="wss://example.test/subscriptions",
            graphql_path="/api/graphql",
            actions=ACTIONS,
            title="<Shop> & co",
        ),
    ),
]

pytestmark = pytest.mark.urls(__name__)


def page_config(html: str) -> dict[str, Any]:
    match = re.search(
        r'<script id="sms-client-config" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, "the page has no configuration script"
    config: dict[str, Any] = json.loads(match.group(1))
    return config


def get(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


def test_defaults(client: Client) -> None:
    html = get(client, "/client/")
    config = page_config(html)
    assert config["websocketPath"] == "/ws"
    assert config["graphqlPath"] == "/graphql"
    assert config["actions"] == []
    assert config["title"] == "strawberry-model-subs client"
    assert config["csrfToken"]
    assert "<title>strawberry-model-subs client</title>" in html


def test_configuration_reaches_the_page(client: Client) -> None:
    config = page_config(get(client, "/custom/"))
    assert config["websocketPath"] == "wss://example.test/subscriptions"
    assert config["graphqlPath"] == "/api/graphql"
    assert config["actions"] == [
        {"label": "Create a product", "query": ACTIONS[0]["query"], "variables": {}},
        {"label": HOSTILE, "query": ACTIONS[1]["query"], "variables": {"name": HOSTILE}},
    ]


def test_configuration_is_escaped(client: Client) -> None:
    html = get(client, "/custom/")
    # The hostile text cannot close the script element or open a comment in it...
    assert "</script><script>alert" not in html
    assert "<!--" not in html.split('id="sms-client-config"')[1].split("</script>")[0]
    # ...and still decodes to exactly what was configured.
    assert page_config(html)["actions"][1]["label"] == HOSTILE
    # The title is HTML-escaped where it is text.
    assert "<title>&lt;Shop&gt; &amp; co</title>" in html
    assert "<h1>&lt;Shop&gt; &amp; co</h1>" in html
    assert "<Shop>" not in html


def test_page_references_its_static_files(client: Client) -> None:
    html = get(client, "/client/")
    for name in ("client.js", "client.css"):
        assert f"{settings.STATIC_URL}strawberry_model_subs/{name}" in html
        assert (STATIC / name).is_file()


def test_the_only_inline_script_is_the_configuration(client: Client) -> None:
    html = get(client, "/client/")
    scripts = re.findall(r"<script\b([^>]*)>", html)
    inline = [attributes for attributes in scripts if "src=" not in attributes]
    assert inline == [' id="sms-client-config" type="application/json"']
    assert not re.search(r"<[^>]*\son[a-z]+=", html), "no inline event handlers"


def test_nothing_is_loaded_from_the_internet() -> None:
    for asset in (TEMPLATE, STATIC / "client.js", STATIC / "client.css"):
        text = asset.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), asset.name
        assert "@import" not in text, asset.name


def test_every_element_the_script_uses_is_in_the_template() -> None:
    script = (STATIC / "client.js").read_text()
    template = TEMPLATE.read_text()
    used = set(re.findall(r'\$\("([\w-]+)"\)', script))
    used.add("sms-client-config")
    present = set(re.findall(r'\bid="([\w-]+)"', template)) | {"sms-client-config"}
    assert used, "the script looks elements up with $(...)"
    assert used <= present, f"missing from the template: {sorted(used - present)}"


def test_every_form_control_has_a_label() -> None:
    template = TEMPLATE.read_text()
    labelled = set(re.findall(r'<label for="([\w-]+)"', template))
    for tag, attributes in re.findall(r"<(select|input)\b([^>]*)>", template):
        control_id = re.search(r'\bid="([\w-]+)"', attributes)
        if control_id is not None:
            assert control_id.group(1) in labelled, f"<{tag} id={control_id.group(1)}> has no label"


@override_settings(
    MIDDLEWARE=[*settings.MIDDLEWARE, "django.middleware.csrf.CsrfViewMiddleware"],
)
def test_csrf_token_for_the_posts(client: Client) -> None:
    response = client.get("/client/")
    token = page_config(response.content.decode())["csrfToken"]
    assert token
    assert settings.CSRF_COOKIE_NAME in response.cookies


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"websocket_path": ""}, "websocket_path must be a non-empty string"),
        ({"graphql_path": None}, "graphql_path must be a non-empty string"),
        ({"title": 3}, "title must be a non-empty string"),
        ({"actions": "mutation { x }"}, "actions must be a list"),
        ({"actions": ["mutation { x }"]}, r"actions\[0\] must be a dict"),
        ({"actions": [{"label": "x"}]}, r"actions\[0\] needs a non-empty string 'query'"),
        ({"actions": [{"query": "mutation { x }"}]}, "needs a non-empty string 'label'"),
        (
            {"actions": [{"label": "x", "query": "y", "headers": {}}]},
            r"unknown keys \['headers'\]",
        ),
        ({"actions": [{"label": "x", "query": "y", "variables": [1]}]}, "variables must be"),
    ],
)
def test_configuration_mistakes_are_reported_early(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ExampleClientView.as_view(**kwargs)


def test_unknown_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="websocket_url"):
        ExampleClientView.as_view(websocket_url="/ws")
