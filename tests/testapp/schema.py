"""The test site's schema: queries and mutations that save models through the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import strawberry
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import transaction
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from strawberry_model_subs import (
    ConnectionRefresh,
    flush_events,
    refresh_connection_field,
    subscription_type,
)

from . import serializers  # noqa: F401  (registers the streams)
from .models import Category, Note, Product, Review


@strawberry.type
class ProductNode:
    id: strawberry.ID
    name: str


def _product(product: Product) -> ProductNode:
    return ProductNode(id=strawberry.ID(str(product.pk)), name=product.name)


@strawberry.type
class Query:
    @strawberry.field
    async def product_count(self) -> int:
        return await Product.objects.acount()


@strawberry.type
class Mutation:
    refresh_connection: ConnectionRefresh = refresh_connection_field()

    @strawberry.mutation
    async def create_product(
        self, name: str, price: Decimal = Decimal("0"), category_id: strawberry.ID | None = None
    ) -> ProductNode:
        product = await Product.objects.acreate(name=name, price=price, category_id=category_id)
        return _product(product)

    @strawberry.mutation
    async def update_product(self, id: strawberry.ID, name: str) -> ProductNode:
        product = await Product.objects.aget(pk=id)
        product.name = name
        await product.asave()
        return _product(product)

    @strawberry.mutation
    async def delete_product(self, id: strawberry.ID) -> bool:
        product = await Product.objects.aget(pk=id)
        await product.adelete()
        return True

    @strawberry.mutation
    async def create_category(self, name: str) -> strawberry.ID:
        category = await Category.objects.acreate(name=name)
        return strawberry.ID(str(category.pk))

    @strawberry.mutation
    async def add_review(self, product_id: strawberry.ID, rating: int) -> strawberry.ID:
        review = await Review.objects.acreate(product_id=product_id, rating=rating)
        return strawberry.ID(str(review.pk))

    @strawberry.mutation
    async def create_product_then_fail(self, name: str) -> bool:
        """Saves a product inside a transaction that rolls back: no event may be sent."""

        def work() -> None:
            try:
                with transaction.atomic():
                    Product.objects.create(name=name)
                    raise RuntimeError("rolled back on purpose")
            except RuntimeError:
                pass

        await sync_to_async(work)()
        return False

    @strawberry.mutation
    async def save_note(
        self,
        owner_id: strawberry.ID,
        text: str,
        secret: str = "",
        shared: bool = False,
        id: strawberry.ID | None = None,
    ) -> strawberry.ID:
        """Create a note (no ``id``) or overwrite note ``id``; the test site checks no rights.

        The owner is set as a User, not as ``owner_id=<the ID string>``: the serializer would
        render a string id, and ``IsOwner`` compares it with ``user.pk``, an int.
        """
        owner = await User.objects.aget(pk=owner_id)
        values = {"owner": owner, "text": text, "secret": secret, "shared": shared}
        if id is None:
            note = await Note.objects.acreate(**values)
        else:
            note = await Note.objects.aget(pk=id)
            for name, value in values.items():
                setattr(note, name, value)
            await note.asave()
        return strawberry.ID(str(note.pk))

    @strawberry.mutation
    async def delete_note(self, id: strawberry.ID) -> bool:
        note = await Note.objects.aget(pk=id)
        await note.adelete()
        return True


class PublishedBeforeAnswer(SchemaExtension):
    """Answer a mutation once the events it caused are on the channel layer (saves publish from a
    background thread), so that a test can order what it does next on the answer."""

    async def on_execute(self) -> AsyncIterator[None]:
        yield
        if self.execution_context.operation_type is OperationType.MUTATION:
            await sync_to_async(flush_events, thread_sensitive=False)(10.0)


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=subscription_type(),
    extensions=[PublishedBeforeAnswer],
)
