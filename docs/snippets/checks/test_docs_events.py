"""The snippets of docs/events.md and docs/deployment.md (Celery), in the docs project."""

import pytest
from asgiref.sync import sync_to_async
from project.asgi import application
from project.celery import app as celery_app
from shop.coupons import expire_all, issue
from shop.models import Product
from shop.pricing import announce, discount_cheap_products
from shop.restock import create_and_rename
from shop.tasks import rename_product
from strawberry_model_subs.testing import StreamClient

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


async def test_notify_announces_a_queryset_update():
    cheap = await Product.objects.acreate(name="Tea", price=5)
    await Product.objects.acreate(name="Caviar", price=500)
    async with StreamClient(application, "/ws", headers=ORIGIN) as client:
        assert (await client.subscribe("products", "UPDATE", fields=["id", "name"]))["ok"]
        await sync_to_async(discount_cheap_products)()
        frame = await client.receive_event()
        assert frame["payload"]["data"] == {"id": cheap.pk, "name": "Sale"}
        await client.assert_no_frame()
        await announce(cheap)
        assert (await client.receive_event())["payload"]["action"] == "update"


async def test_one_transaction_sends_one_event_per_object():
    async with StreamClient(application, "/ws", headers=ORIGIN) as client:
        assert (await client.subscribe("products", fields=["name"]))["ok"]
        await sync_to_async(create_and_rename)("Kettle", "Blue kettle")
        frame = await client.receive_event()
        assert frame["payload"]["action"] == "create"
        assert frame["payload"]["data"] == {"name": "Blue kettle"}
        await client.assert_no_frame()


async def test_a_notifying_manager_announces_bulk_writes():
    async with StreamClient(application, "/ws", headers=ORIGIN) as client:
        assert (await client.subscribe("coupons", fields=["code", "active"]))["ok"]
        await sync_to_async(issue)("A", "B")
        created = [await client.receive_event() for _ in range(2)]
        assert {f["payload"]["data"]["code"] for f in created} == {"A", "B"}
        assert {f["payload"]["action"] for f in created} == {"create"}
        await sync_to_async(expire_all)()
        updated = [await client.receive_event() for _ in range(2)]
        assert [f["payload"]["data"]["active"] for f in updated] == [False, False]


async def test_a_celery_task_publishes_its_save():
    assert celery_app.main == "project"
    product = await Product.objects.acreate(name="Tea")
    async with StreamClient(application, "/ws", headers=ORIGIN) as client:
        assert (await client.subscribe("products", "UPDATE", fields=["name"]))["ok"]
        await sync_to_async(rename_product.apply)(args=(product.pk, "Green tea"))
        assert (await client.receive_event())["payload"]["data"] == {"name": "Green tea"}


def test_the_admin_registers_products():
    from django.contrib import admin

    assert admin.site.is_registered(Product)
