# tests/test_products.py
import pytest
from project.asgi import application
from shop.models import Product
from strawberry_model_subs.testing import StreamClient

# The headers of a browser on the site: project/asgi.py's AllowedHostsOriginValidator refuses a
# socket without an Origin in ALLOWED_HOSTS, and the consumer one whose Origin is not its Host.
ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@pytest.mark.django_db(transaction=True)
async def test_product_updates_are_pushed():
    product = await Product.objects.acreate(name="Old name")
    async with StreamClient(application, "/ws", headers=ORIGIN) as client:
        result = await client.subscribe("products", "UPDATE", fields=["id", "name"])
        assert result["ok"], result["error"]
        product.name = "New name"
        await product.asave()
        frame = await client.receive_event()
        assert frame["payload"]["data"] == {"id": product.pk, "name": "New name"}
        await client.assert_no_frame()
