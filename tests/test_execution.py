"""Telling control operations from other requests, with a bounded cache."""

from __future__ import annotations

import pytest

from strawberry_model_subs import execution
from strawberry_model_subs.execution import operation_kind
from strawberry_model_subs.testing import control_document


@pytest.mark.parametrize(
    ("query", "operation_name", "kind"),
    [
        (control_document("products"), None, "control"),
        ("subscription { productChanged { action } }", None, "subscription"),
        ("{ productCount }", None, "other"),
        ('mutation { createProduct(name: "x") { id } }', None, "other"),
        ("{", None, "other"),  # left to Strawberry, which reports the syntax error
        (
            "query A { productCount } subscription B { productChanged { action } }",
            "B",
            "subscription",
        ),
        ("query A { productCount } subscription B { productChanged { action } }", None, "other"),
    ],
    ids=["control", "typed", "query", "mutation", "syntax-error", "named", "ambiguous"],
)
def test_operation_kind(query: str, operation_name: str | None, kind: str) -> None:
    assert operation_kind(query, operation_name) == kind


def test_long_documents_are_not_cached() -> None:
    """A key holds the whole document: a client could otherwise pin megabytes in the cache."""
    # Test-only seam: the cache is private; its size is what this test is about.
    execution._cached_kind.cache_clear()
    long_query = "{ productCount " + " " * 10_000 + "}"
    assert operation_kind(long_query, None) == "other"
    assert execution._cached_kind.cache_info().currsize == 0
    assert operation_kind(control_document("products"), None) == "control"
    assert execution._cached_kind.cache_info().currsize == 1
