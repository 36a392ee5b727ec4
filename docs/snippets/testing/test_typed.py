# tests/test_typed.py
import pytest
from project.asgi import application
from shop.models import Product
from strawberry_model_subs.testing import TypedClient

ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@pytest.mark.django_db(transaction=True)
async def test_typed_events():
    async with TypedClient(application, "/ws", headers=ORIGIN) as client:
        op = await client.subscribe(
            "subscription { productChanged { action data { name } } }", stream="products"
        )
        await Product.objects.acreate(name="Kettle")
        result = await client.receive_next(op)
        assert result["data"]["productChanged"] == {"action": "CREATE", "data": {"name": "Kettle"}}
        await client.complete(op)
