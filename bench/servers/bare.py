"""The bare limit: a plain ASGI app, no Django or Channels.

``POST /trigger?seq=N[&pad=K]`` encodes one frame (the same bytes as the stream protocol's frame
for the same change) and hands that one string to every connected socket; each socket has its own
queue and writer, so a socket that stops reading holds up only itself. ``GET /health`` answers ok.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import gcstats

gcstats.install()

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: One queue per open socket.
queues: set[asyncio.Queue[str]] = set()


def encode(seq: int, pad: int) -> str:
    name = "x" * pad if pad else f"item-{seq}"
    data = json.dumps({"id": 1, "name": name, "seq": seq}, separators=(",", ":"))
    head = '{"stream":"items","payload":{"action":"update","model":"benchapp.item","data":'
    return f"{head}{data}}}}}"


async def writer(queue: asyncio.Queue[str], send: Send) -> None:
    while True:
        text = await queue.get()
        await send({"type": "websocket.send", "text": text})


async def websocket(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    queue: asyncio.Queue[str] = asyncio.Queue()
    queues.add(queue)
    task = asyncio.get_running_loop().create_task(writer(queue, send))
    try:
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        queues.discard(queue)
        task.cancel()


async def http(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):
        pass
    status, body = 200, b"ok"
    if scope["path"] == "/gcstats" and gcstats.enabled():
        body = json.dumps(gcstats.snapshot()).encode()
    elif scope["path"] == "/trigger" and scope["method"] == "POST":
        query = parse_qs(scope["query_string"].decode())
        text = encode(int(query["seq"][0]), int(query.get("pad", ["0"])[0]))
        for queue in queues:
            queue.put_nowait(text)
    elif scope["path"] != "/health":
        status = 404
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)
