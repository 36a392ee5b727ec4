# project/schema.py
import strawberry
from shop.models import Product
from strawberry_model_subs import SyncResolvers, subscription_type


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


@strawberry.type
class Mutation:
    @strawberry.mutation
    def rename_product(self, id: strawberry.ID, name: str) -> str:
        product = Product.objects.get(pk=id)  # plain sync ORM code: SyncResolvers allows it
        product.name = name
        product.save()  # on commit, every subscriber of "products" is sent the update
        return product.name


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=subscription_type(),  # the fields of every @model_subscription serializer
    extensions=[SyncResolvers],
)
