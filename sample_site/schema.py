"""The demo schema: queries through strawberry-django, demo mutations, and every stream."""

from __future__ import annotations

import itertools
from decimal import Decimal

import strawberry
import strawberry_django
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.utils import timezone
from strawberry import auto
from strawberry.extensions import ParserCache, ValidationCache

from strawberry_model_subs import subscription_type

from .demo import serializers  # noqa: F401  (registers the streams)
from .demo.models import Gadget, Maker

_names = itertools.cycle(["Kettle", "Lamp", "Radio", "Clock", "Fan", "Toaster"])


@strawberry_django.type(User)
class UserType:
    id: auto
    username: auto
    first_name: auto
    last_name: auto
    email: auto
    is_superuser: auto


@strawberry_django.type(Group)
class GroupType:
    id: auto
    name: auto


@strawberry_django.type(Gadget)
class GadgetType:
    id: auto
    name: auto
    price: auto
    released: auto
    status: auto


@strawberry.type
class Query:
    users: list[UserType] = strawberry_django.field()
    groups: list[GroupType] = strawberry_django.field()
    gadgets: list[GadgetType] = strawberry_django.field()


def _latest_gadget() -> Gadget:
    gadget = Gadget.objects.order_by("-pk").first()
    if gadget is None:
        raise ValueError("there is no gadget: create one first")
    return gadget


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Set a user's first name to the current time.")
    async def touch_user(self, username: str = "alice") -> UserType:
        user = await User.objects.aget(username=username)
        user.first_name = timezone.now().strftime("Alice %H:%M:%S")
        await user.asave()
        return user  # type: ignore[return-value]

    @strawberry.mutation(description="Create a gadget with a made-up name.")
    async def create_gadget(self) -> GadgetType:
        maker, _ = await Maker.objects.aget_or_create(name="Acme")
        gadget = await Gadget.objects.acreate(
            name=next(_names), price=Decimal("19.99"), maker=maker, specs={"watts": 40}
        )
        return gadget  # type: ignore[return-value]

    @strawberry.mutation(description="Raise the price of the latest gadget by one.")
    async def update_gadget(self) -> GadgetType:
        gadget = await sync_to_async(_latest_gadget)()
        gadget.price += 1
        gadget.status = Gadget.Status.ON_SALE
        await gadget.asave()
        return gadget  # type: ignore[return-value]

    @strawberry.mutation(description="Delete the latest gadget; returns its id.")
    async def delete_gadget(self) -> strawberry.ID:
        gadget = await sync_to_async(_latest_gadget)()
        pk = gadget.pk
        await gadget.adelete()
        return strawberry.ID(str(pk))


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=subscription_type(),
    extensions=[ParserCache, ValidationCache],  # each document parsed and validated once
)
