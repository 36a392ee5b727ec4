"""Signals to layer events: on commit, once, in order, nothing on rollback."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete
from rest_framework import serializers

from strawberry_model_subs import (
    Action,
    InvalidNotifyError,
    NotRegisteredError,
    SyncOnlyError,
    anotify,
    model_subscription,
    notify,
)
from strawberry_model_subs.registry import unregister
from strawberry_model_subs.testing import StreamClient
from tests.conftest import Listen
from tests.testapp.models import Category, Product, Tag

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    """Raised inside ``atomic()`` to roll it back."""


async def test_create_update_delete_each_send_one_event(listen: Listen) -> None:
    """Each event shows the object as it is when the event is published (here, after the change
    it announces and before the next one)."""
    receive = await listen("categories")
    category = await Category.objects.acreate(name="a")
    pk = category.pk
    messages = [await receive()]
    category.name = "b"
    await category.asave()
    messages.append(await receive())
    await category.adelete()
    messages.append(await receive())
    assert messages == [
        {
            "stream": "categories",
            "action": action,
            "model": "testapp.category",
            "pk": str(pk),
            "data": {"id": pk, "name": name},
        }
        for action, name in [("create", "a"), ("update", "b"), ("delete", "b")]
    ]


async def test_rolled_back_transaction_sends_nothing(listen: Listen) -> None:
    receive = await listen("categories")

    def rolled_back() -> None:
        with contextlib.suppress(Rollback), transaction.atomic():
            Category.objects.create(name="never")
            raise Rollback

    await sync_to_async(rolled_back)()
    await Category.objects.acreate(name="marker")
    assert (await receive())["data"]["name"] == "marker"


async def test_rolled_back_savepoint_sends_nothing_but_the_outer_commit_does(
    listen: Listen,
) -> None:
    receive = await listen("categories")

    def nested() -> None:
        with transaction.atomic():
            Category.objects.create(name="outer")
            with contextlib.suppress(Rollback), transaction.atomic():
                Category.objects.create(name="inner")
                raise Rollback
            Category.objects.create(name="after")

    await sync_to_async(nested)()
    assert [(await receive())["data"]["name"] for _ in range(2)] == ["outer", "after"]
    await Category.objects.acreate(name="marker")
    assert (await receive())["data"]["name"] == "marker"


async def test_events_wait_for_the_commit_and_keep_save_order(listen: Listen) -> None:
    receive = await listen("categories")
    in_transaction = threading.Event()

    def many_saves() -> None:
        with transaction.atomic():
            for name in ("one", "two", "three"):
                Category.objects.create(name=name)
            in_transaction.set()

    await sync_to_async(many_saves)()
    assert in_transaction.is_set()
    assert [(await receive())["data"]["name"] for _ in range(3)] == ["one", "two", "three"]


@pytest.mark.django_db(transaction=False)
def test_unregistered_models_add_no_on_commit_callback(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        Session.objects.create(session_key="k", session_data="", expire_date="2030-01-01T00:00Z")
    assert callbacks == []


def test_unregistered_models_keep_fast_deletes() -> None:
    assert not post_save.has_listeners(Session)
    assert not pre_delete.has_listeners(Session)
    assert not post_delete.has_listeners(Session)
    assert pre_delete.has_listeners(Category)


async def test_delete_carries_the_data_as_it_was(listen: Listen) -> None:
    receive = await listen("tags")
    tag = await Tag.objects.acreate(code="0", label="zero")
    await receive()
    await tag.adelete()
    message = await receive()
    assert (message["action"], message["pk"], message["data"]) == (
        "delete",
        "0",
        {"code": "0", "label": "zero"},
    )


async def test_create_then_delete_in_one_transaction_sends_nothing(listen: Listen) -> None:
    receive = await listen("categories")

    def save_and_delete() -> None:
        with transaction.atomic():
            category = Category.objects.create(name="short-lived")
            category.delete()
            Category.objects.create(name="marker")

    await sync_to_async(save_and_delete)()
    message = await receive()
    assert (message["action"], message["data"]["name"]) == ("create", "marker")


async def test_a_save_from_a_plain_thread_reaches_subscribers(stream_client: StreamClient) -> None:
    """A thread with no event loop (not sync_to_async's) hands the event to the hub's loop."""
    await stream_client.subscribe("categories", "CREATE", fields=["name"])
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            Category.objects.create(name="threaded")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=in_thread)

    def run_thread() -> None:
        thread.start()
        thread.join()

    await sync_to_async(run_thread)()
    assert not errors
    frame = await stream_client.receive_event()
    assert frame["payload"] == {
        "action": "create",
        "model": "testapp.category",
        "data": {"name": "threaded"},
    }


async def test_notify_sends_what_update_did_not(listen: Listen) -> None:
    receive = await listen("products")
    product = await Product.objects.acreate(name="a")
    await receive()
    await Product.objects.filter(pk=product.pk).aupdate(name="bulk")
    await product.arefresh_from_db()

    await sync_to_async(notify)(product, Action.UPDATE)
    message = await receive()
    assert (message["action"], message["data"]["name"]) == ("update", "bulk")

    await anotify(product, "update")
    assert (await receive())["data"]["name"] == "bulk"


async def test_notify_inside_a_transaction_waits_for_the_commit(listen: Listen) -> None:
    receive = await listen("categories")
    category = await Category.objects.acreate(name="a")
    await receive()

    def notify_then_roll_back() -> None:
        with contextlib.suppress(Rollback), transaction.atomic():
            notify(category, "update")
            raise Rollback

    await sync_to_async(notify_then_roll_back)()
    await sync_to_async(notify)(category, "delete")
    assert (await receive())["action"] == "delete"


async def test_notify_in_async_code_points_to_anotify() -> None:
    with pytest.raises(SyncOnlyError, match="await anotify"):
        notify(Category(pk=1, name="x"), "update")


@pytest.mark.parametrize(
    ("instance", "action", "error", "message"),
    [
        (Category(pk=1, name="x"), "all_actions", InvalidNotifyError, "create, update or delete"),
        (Session(session_key="k"), "update", NotRegisteredError, "has no serializer registered"),
        (Category(name="unsaved"), "update", InvalidNotifyError, "without a primary key"),
        ([Category(pk=1), Product(pk=2)], "update", InvalidNotifyError, "objects of one model"),
    ],
)
def test_notify_refuses_what_it_cannot_send(
    instance: Any, action: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        notify(instance, action)


async def test_a_failing_serializer_logs_and_the_save_still_commits(
    listen: Listen,
    caplog: pytest.LogCaptureFixture,
) -> None:
    @model_subscription(stream="broken-categories", name="BrokenCategory")
    class BrokenSerializer(serializers.ModelSerializer):
        boom = serializers.SerializerMethodField()

        class Meta:
            model = Category
            fields = ("id", "boom")

        def get_boom(self, obj: Category) -> str:
            raise ZeroDivisionError("serializer bug")

    try:
        receive = await listen("categories")
        category = await Category.objects.acreate(name="still saved")
        assert (await receive())["data"]["name"] == "still saved"
        assert await Category.objects.filter(pk=category.pk).aexists()
        assert "BrokenSerializer could not serialize testapp.category" in caplog.text
    finally:
        unregister("broken-categories")
