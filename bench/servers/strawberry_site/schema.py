from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from channels_site.signals import GROUP
from strawberry.extensions import ParserCache, ValidationCache


@strawberry.type
class ItemType:
    id: strawberry.ID
    name: str
    seq: int


@strawberry.type
class Query:
    hello: str = "world"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def item_changed(self, info: strawberry.Info) -> AsyncGenerator[ItemType, None]:
        ws = info.context["ws"]
        async with ws.listen_to_channel("item.changed", groups=[GROUP]) as messages:
            async for message in messages:
                data = message["data"]
                yield ItemType(
                    id=strawberry.ID(str(data["id"])), name=data["name"], seq=data["seq"]
                )


# As for this library's server: each document is parsed and validated once.
schema = strawberry.Schema(
    query=Query, subscription=Subscription, extensions=[ParserCache, ValidationCache]
)
