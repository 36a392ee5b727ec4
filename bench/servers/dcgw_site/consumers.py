from __future__ import annotations

from typing import Any

import channels_graphql_ws

from .schema import schema


class GraphqlWsConsumer(channels_graphql_ws.GraphqlWsConsumer):
    schema = schema

    async def on_connect(self, payload: Any) -> None:
        """Accept every client."""
