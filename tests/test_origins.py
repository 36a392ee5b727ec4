"""The consumer's websocket origin check (``origins``): Strawberry's rules since 0.335, and the
same answers as Strawberry's own check wherever Strawberry has one (not 0.334, on Python 3.10)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from strawberry.channels import GraphQLWSConsumer as StrawberryGraphQLWSConsumer

from strawberry_model_subs.consumers import GraphQLWSConsumer
from strawberry_model_subs.origins import (
    is_same_origin,
    normalize_allowed_origins,
    normalize_origin,
)
from tests.testapp.schema import schema

#: (headers, allowed_origins, let in)
HANDSHAKES: list[tuple[dict[str, str], tuple[str, ...], bool]] = [
    ({}, (), True),
    ({"host": "testserver"}, (), True),
    ({"origin": "http://testserver", "host": "testserver"}, (), True),
    ({"origin": "https://example.com", "host": "example.com:443"}, (), True),
    ({"origin": "http://Example.com", "host": "example.com"}, (), True),
    ({"origin": "http://[::1]:8000", "host": "[::1]:8000"}, (), True),
    ({"origin": "http://example.com:8000", "host": "example.com"}, (), False),
    ({"origin": "https://example.com", "host": "example.com:80"}, (), False),
    ({"origin": "http://evil.example", "host": "testserver"}, (), False),
    ({"origin": "http://evil.example"}, (), False),
    ({"origin": "null", "host": "testserver"}, (), False),
    ({"origin": "http://testserver:99999", "host": "testserver"}, (), False),
    (
        {"origin": "http://evil.example", "host": "testserver", "sec-fetch-site": "same-origin"},
        (),
        True,
    ),
    ({"origin": "http://evil.example", "host": "testserver"}, ("*",), True),
    ({"origin": "null", "host": "testserver"}, ("*",), True),
    ({"origin": "https://Partner.example:443", "host": "t"}, ("https://partner.example",), True),
    ({"origin": "https://partner.example", "host": "t"}, ("https://partner.example:8443",), False),
    ({"origin": "http://partner.example", "host": "t"}, ("https://partner.example",), False),
    ({"origin": "null", "host": "testserver"}, ("https://partner.example",), False),
]


def _scope(headers: dict[str, str]) -> Any:
    return {
        "type": "websocket",
        "headers": [
            (name.encode("latin1"), value.encode("latin1")) for name, value in headers.items()
        ],
    }


def _ours(headers: dict[str, str], allowed: tuple[str, ...]) -> bool:
    consumer = GraphQLWSConsumer(schema, allowed_origins=allowed)
    consumer.scope = _scope(headers)
    return consumer._check_websocket_origin(consumer)


@pytest.mark.parametrize(("headers", "allowed", "let_in"), HANDSHAKES)
def test_a_handshake_is_let_in_by_its_origin_host_and_the_allowed_origins(
    headers: dict[str, str], allowed: tuple[str, ...], let_in: bool
) -> None:
    assert _ours(headers, allowed) is let_in


def test_a_refusal_is_logged_where_strawberry_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "strawberry.ws"):
        assert not _ours({"origin": "http://evil.example", "host": "testserver"}, ())
    (record,) = caplog.records
    assert record.name == "strawberry.ws"
    assert record.getMessage() == (
        "Rejected WebSocket connection from origin 'http://evil.example' to host 'testserver'. "
        "If pages on this origin should be able to connect, add it to `allowed_origins`."
    )


def test_a_subclass_may_decide_a_cross_origin_handshake() -> None:
    class Subdomains(GraphQLWSConsumer):
        def is_websocket_origin_allowed(
            self, request: StrawberryGraphQLWSConsumer, origin: str
        ) -> bool:
            return origin.endswith(".example.com")

    consumer = Subdomains(schema)
    consumer.scope = _scope({"origin": "https://app.example.com", "host": "api.example.org"})
    assert consumer._check_websocket_origin(consumer)
    consumer.scope = _scope({"origin": "https://example.org", "host": "api.example.org"})
    assert not consumer._check_websocket_origin(consumer)


@pytest.mark.parametrize(
    ("origin", "normalized"),
    [
        ("https://Example.com:443", "https://example.com"),
        ("HTTP://example.com:80", "http://example.com"),
        ("http://example.com:8080", "http://example.com:8080"),
        (" https://example.com ", "https://example.com"),
        ("http://[::1]:80", "http://[::1]"),
        ("null", None),
        ("https://[", None),
        ("http://example.com:99999", None),
        ("example.com", None),
    ],
)
def test_an_origin_is_normalized_as_browsers_send_it(origin: str, normalized: str | None) -> None:
    assert normalize_origin(origin) == normalized


def test_allowed_origins_are_normalized_and_checked() -> None:
    allowed = normalize_allowed_origins(["https://App.example.com:443", "http://localhost:8000"])
    assert allowed == {"https://app.example.com", "http://localhost:8000"}
    assert normalize_allowed_origins(["*"]) == {"*"}
    with pytest.raises(TypeError, match="not a string"):
        normalize_allowed_origins("https://app.example.com")
    for invalid in ("https://app.example.com/path", "null", "https://user@app.example.com"):
        with pytest.raises(ValueError, match="Invalid origin"):
            normalize_allowed_origins([invalid])
    with pytest.raises(ValueError, match="Invalid origin"):
        GraphQLWSConsumer(schema, allowed_origins=["app.example.com"])


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("https://example.com", "example.com:443", True),
        ("http://example.com:8000", "example.com:8000", True),
        ("http://example.com", "example.com:8000", False),
        ("http://example.com", None, False),
        ("http://example.com", "", False),
        ("http://example.com:99999", "example.com", False),
    ],
)
def test_same_origin_is_the_same_host_and_port(origin: str, host: str | None, same: bool) -> None:
    assert is_same_origin(origin, host) is same


# -- the same answers as Strawberry's own check, where it has one ---------------------------------


def _strawberry_origins() -> Any:
    return pytest.importorskip(
        "strawberry.http.websocket_origin",
        reason="Strawberry before 0.335 (0.334 on Python 3.10) has no origin check of its own",
    )


@pytest.mark.parametrize(("headers", "allowed", "let_in"), HANDSHAKES)
def test_strawberrys_check_lets_in_the_same_handshakes(
    headers: dict[str, str], allowed: tuple[str, ...], let_in: bool
) -> None:
    _strawberry_origins()
    theirs = StrawberryGraphQLWSConsumer(schema, allowed_origins=allowed)
    theirs.scope = _scope(headers)
    assert StrawberryGraphQLWSConsumer._check_websocket_origin(theirs, theirs) is let_in
    assert _ours(headers, allowed) is let_in


@pytest.mark.parametrize(
    "value",
    [
        "https://Example.com:443",
        "http://example.com:8080",
        "http://[::1]:80",
        "null",
        "https://[",
        "http://example.com:99999",
        "",
    ],
)
def test_strawberrys_helpers_give_the_same_answers(value: str) -> None:
    theirs = _strawberry_origins()
    assert normalize_origin(value) == theirs.normalize_origin(value)
    for host in ("example.com", "example.com:443", "example.com:8080", "[::1]", None):
        assert is_same_origin(value, host) == theirs.is_same_origin(value, host)
    try:
        expected: object = theirs.normalize_allowed_origins([value])
    except ValueError as exc:
        expected = str(exc)
    try:
        got: object = normalize_allowed_origins([value])
    except ValueError as exc:
        got = str(exc)
    assert got == expected
