from __future__ import annotations

import strawberry
from strawberry.extensions import ParserCache, ValidationCache

from strawberry_model_subs import subscription_type

from . import serializers  # noqa: F401  (registers the stream before the schema is built)


@strawberry.type
class Query:
    hello: str = "world"


# The caches Strawberry recommends in production: each document is parsed and validated once.
schema = strawberry.Schema(
    query=Query, subscription=subscription_type(), extensions=[ParserCache, ValidationCache]
)
