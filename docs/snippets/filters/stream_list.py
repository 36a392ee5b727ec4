# stream_list.py: keep the list of products whose name starts with "Green", from the events alone
import asyncio
import json

import websockets

SUBSCRIBE = """subscription ($channel: String!, $where: ProductFilter) {
  productSubscription(
    operation: SUBSCRIBE, action: ALL_ACTIONS, channelId: $channel, where: $where
  ) { ok error }
}"""
WHERE = {"name": {"startsWith": "Green"}}


async def main():
    products = {}  # load the list with a query first (see Resumable streams: the handoff)
    async with websockets.connect("ws://127.0.0.1:8000/ws", origin="http://127.0.0.1:8000") as ws:
        channel_id = json.loads(await ws.recv())["channel_id"]
        variables = {"channel": channel_id, "where": WHERE}
        await ws.send(json.dumps({"query": SUBSCRIBE, "variables": variables}))
        async for text in ws:
            payload = json.loads(text).get("payload")
            if payload is None:  # the ack and the GraphQL response
                continue
            product = payload["data"]
            if payload["action"] == "delete":  # deleted, or no longer matching ("moved")
                products.pop(product["id"], None)
            else:  # created or entered (a create), or changed (an update)
                products[product["id"]] = product["name"]
            print(json.dumps({"moved": payload["moved"], "products": products}), flush=True)


asyncio.run(main())
