# project/schema.py
import strawberry
from strawberry_model_subs import SyncResolvers, subscription_type


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


schema = strawberry.Schema(
    query=Query, subscription=subscription_type(), extensions=[SyncResolvers]
)
