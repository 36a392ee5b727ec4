# subscribe.py: print every change of a product
import asyncio
import json

import websockets

SUBSCRIBE = """subscription ($channel: String!) {
  productSubscription(operation: SUBSCRIBE, action: ALL_ACTIONS, channelId: $channel) {
    ok error stream
  }
}"""


async def main():
    # Browsers send an Origin header; a script names the site's own (see Security: origins).
    async with websockets.connect("ws://127.0.0.1:8000/ws", origin="http://127.0.0.1:8000") as ws:
        channel_id = json.loads(await ws.recv())["channel_id"]
        await ws.send(json.dumps({"query": SUBSCRIBE, "variables": {"channel": channel_id}}))
        async for frame in ws:  # the ack, the GraphQL response, then every change
            print(frame, flush=True)


asyncio.run(main())
