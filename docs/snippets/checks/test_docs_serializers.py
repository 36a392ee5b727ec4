"""The snippets of docs/serializers.md, in the docs project: what the mapping generates."""

import pytest
from project.asgi import application
from project.schema import schema
from shop.models import Product
from strawberry_model_subs.testing import TypedClient

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


def test_the_generated_types():
    sdl = str(schema)
    assert (
        "type CatalogueItemData {\n  id: BigInt!\n  name: String!\n  cents: Int!\n"
        "  label: String\n  restock: Date\n}"
    ) in sdl
    assert "type ProductData {\n  id: BigInt!\n  name: String!\n  price: Decimal!\n" in sdl
    assert "catalogueItemChanged(action: Action! = ALL_ACTIONS, id: ID = null" in sdl


async def test_a_catalogue_event():
    query = "subscription { catalogueItemChanged { data { cents label restock } } }"
    async with TypedClient(application, "/ws", headers=ORIGIN) as client:
        op = await client.subscribe(query, stream="catalogue")
        await Product.objects.acreate(name="Tea", price="2.50")
        result = await client.receive_next(op)
        assert result["data"]["catalogueItemChanged"]["data"] == {
            "cents": 250,
            "label": "Tea",
            "restock": None,
        }
