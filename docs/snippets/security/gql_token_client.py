# gql_token_client.py: a typed subscription as a user, from a script
import asyncio
import sys

from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport


async def main(token):
    transport = WebsocketsTransport(
        url="ws://127.0.0.1:8000/ws/token",  # the token route: no Origin needed
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"token": token},  # the connection_init payload: project.auth reads it
    )
    async with Client(transport=transport) as session:
        query = gql("subscription { orderChanged { action data { id status } } }")
        async for result in session.subscribe(query):
            print(result["orderChanged"], flush=True)


asyncio.run(main(sys.argv[1]))
