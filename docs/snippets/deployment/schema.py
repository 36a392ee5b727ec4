# project/schema.py: with the extensions of a public endpoint
# --8<-- [start:imports]
import strawberry
from shop.models import Product
from strawberry.extensions import ParserCache, QueryDepthLimiter, ValidationCache
from strawberry_model_subs import SyncResolvers, subscription_type

# --8<-- [end:imports]


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


# --8<-- [start:refresh]
from strawberry_model_subs import ConnectionRefresh, refresh_connection_field  # noqa: E402


@strawberry.type
class Mutation:
    refresh_connection: ConnectionRefresh = refresh_connection_field()
    # --8<-- [end:refresh]

    @strawberry.mutation
    def rename_product(self, id: strawberry.ID, name: str) -> str:
        product = Product.objects.get(pk=id)
        product.name = name
        product.save()
        return product.name


# --8<-- [start:schema]
schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=subscription_type(),
    extensions=[
        SyncResolvers,
        ParserCache,  # each distinct document is parsed once, not on every subscribe
        ValidationCache,  # and validated once
        lambda: QueryDepthLimiter(max_depth=10),  # a factory: a fresh extension per request
    ],
)
# --8<-- [end:schema]
