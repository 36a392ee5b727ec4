"""What a Channels tutorial does for model changes: serialize in post_save, ``group_send`` once."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from benchapp.models import Item
from channels.layers import get_channel_layer
from django.db.models.signals import post_save
from django.dispatch import receiver
from rest_framework import serializers

GROUP = "items"


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = "__all__"


@receiver(post_save, sender=Item)
def item_saved(sender: type[Item], instance: Item, created: bool, **kwargs: Any) -> None:
    message = {
        "type": "item.changed",
        "action": "create" if created else "update",
        "data": dict(ItemSerializer(instance).data),
    }
    async_to_sync(get_channel_layer().group_send)(GROUP, message)
