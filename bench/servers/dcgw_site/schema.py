from __future__ import annotations

from typing import Any

import channels_graphql_ws
import graphene
from benchapp.models import Item
from django.db.models.signals import post_save
from django.dispatch import receiver
from graphene_django import DjangoObjectType

GROUP = "items"


class ItemType(DjangoObjectType):
    class Meta:
        model = Item
        fields = ("id", "name", "seq")


class ItemChanged(channels_graphql_ws.Subscription):
    """Sends the changed item to every subscriber of the ``items`` group."""

    item = graphene.Field(ItemType)

    @staticmethod
    def subscribe(root: Any, info: Any) -> list[str]:
        return [GROUP]

    @staticmethod
    def publish(payload: dict[str, Any], info: Any) -> ItemChanged:
        # The payload carries the serialized fields: no database query per subscriber.
        return ItemChanged(item=Item(**payload))


class Query(graphene.ObjectType):
    hello = graphene.String(default_value="world")


class Subscription(graphene.ObjectType):
    item_changed = ItemChanged.Field()


schema = graphene.Schema(query=Query, subscription=Subscription)


@receiver(post_save, sender=Item)
def item_saved(sender: type[Item], instance: Item, **kwargs: Any) -> None:
    ItemChanged.broadcast(
        group=GROUP, payload={"id": instance.pk, "name": instance.name, "seq": instance.seq}
    )
