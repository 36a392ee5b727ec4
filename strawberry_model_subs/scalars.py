"""Scalars the generated types need beyond GraphQL's own."""

from __future__ import annotations

import warnings
from typing import NewType

import strawberry
from strawberry.scalars import JSON

__all__ = ["JSON", "BigInt"]


def _to_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"BigInt cannot represent {value!r}")
    return int(value)


# GraphQL's Int is 32-bit, and graphql-core refuses larger values; BigAutoField primary keys and
# BigIntegerField values pass through this scalar as plain JSON numbers instead. Strawberry
# deprecates wrapping a type in place in favour of the schema's scalar_map, which would make every
# user configure their schema by hand, so the warning is silenced for this one definition.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    BigInt = strawberry.scalar(
        NewType("BigInt", int),
        name="BigInt",
        description="An integer that may not fit in 32 bits, sent as a JSON number.",
        serialize=_to_int,
        parse_value=_to_int,
    )
