# gql_client.py: pip install "gql[websockets]"
import asyncio

from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport


async def main():
    transport = WebsocketsTransport(
        url="ws://127.0.0.1:8000/ws",
        # gql offers ["graphql-ws", "graphql-transport-ws"] by default, and the server takes the
        # first it speaks: the legacy graphql-ws. Name the protocol to use:
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],  # "graphql-transport-ws"
        # A script sends no Origin; AllowedHostsOriginValidator refuses a handshake without one.
        headers={"Origin": "http://127.0.0.1:8000"},
    )
    async with Client(transport=transport) as session:
        query = gql("subscription { productChanged { action data { id name updated } } }")
        async for result in session.subscribe(query):
            print(result["productChanged"], flush=True)


asyncio.run(main())
