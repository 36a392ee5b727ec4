from __future__ import annotations

from typing import Any, ClassVar

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .signals import GROUP


class ItemConsumer(AsyncJsonWebsocketConsumer):
    groups: ClassVar[list[str]] = [GROUP]  # joined on connect, left on disconnect

    async def item_changed(self, message: dict[str, Any]) -> None:
        await self.send_json({"action": message["action"], "data": message["data"]})
