from __future__ import annotations

import strawberry

from strawberry_model_subs import subscription_type

from . import serializers  # noqa: F401  (registers the stream before the schema is built)


@strawberry.type
class Query:
    hello: str = "world"


schema = strawberry.Schema(query=Query, subscription=subscription_type())
