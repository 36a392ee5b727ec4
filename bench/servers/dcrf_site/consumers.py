from __future__ import annotations

from typing import Any

from benchapp.models import Item
from djangochannelsrestframework.decorators import action
from djangochannelsrestframework.generics import GenericAsyncAPIConsumer
from djangochannelsrestframework.observer import model_observer
from rest_framework import serializers


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = "__all__"


class ItemConsumer(GenericAsyncAPIConsumer):
    queryset = Item.objects.all()
    serializer_class = ItemSerializer

    @model_observer(Item)
    async def item_activity(
        self,
        message: dict[str, Any],
        observer: Any = None,
        subscribing_request_ids: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        for request_id in subscribing_request_ids or []:
            await self.send_json({"message": message, "request_id": request_id})

    @item_activity.serializer
    def item_activity(self, instance: Item, action: Any, **kwargs: Any) -> dict[str, Any]:
        return dict(ItemSerializer(instance).data)

    @action()
    async def subscribe_to_item_activity(self, request_id: Any, **kwargs: Any) -> None:
        await self.item_activity.subscribe(request_id=request_id)
