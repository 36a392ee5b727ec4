# control_over_http.py: a script that subscribes a stream socket by HTTP POST (pip install httpx)
import asyncio
import json

import httpx
import websockets

SITE = "http://127.0.0.1:8000"
SUBSCRIBE = """subscription ($channel: String!) {
  productSubscription(operation: SUBSCRIBE, action: UPDATE, channelId: $channel, data: [ID, NAME]) {
    ok error stream
  }
}"""


async def main():
    async with (
        websockets.connect("ws://127.0.0.1:8000/ws", origin=SITE) as ws,
        httpx.AsyncClient(base_url=SITE) as http,
    ):
        channel_id = json.loads(await ws.recv())["channel_id"]
        # A GET of the view sets the CSRF cookie (ensure_csrf_cookie in project/urls.py); the
        # POST sends it back, with the same token in X-CSRFToken, as a page of the site would.
        await http.get("/graphql", params={"query": "{ hello }"})
        response = await http.post(
            "/graphql",
            json={"query": SUBSCRIBE, "variables": {"channel": channel_id}},
            headers={"X-CSRFToken": http.cookies["csrftoken"]},
        )
        print(response.json(), flush=True)  # {'data': {'productSubscription': {'ok': True, ...
        async for frame in ws:  # the ack, then every update
            print(frame, flush=True)


asyncio.run(main())
