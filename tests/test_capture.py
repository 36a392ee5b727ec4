"""Every kind of write sends its events: coalescing per transaction, many-to-many changes from both
sides, deletes with their relations, bulk ``notify`` and the opt-in QuerySet."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from strawberry_model_subs import Action, Event, NotRegisteredError, flush_events, notify
from strawberry_model_subs.capture import Change, coalesce
from strawberry_model_subs.hub import get_hub
from strawberry_model_subs.registry import registration_for_stream
from tests.conftest import Listen, Receive
from tests.testapp.models import Article, Category, Topic

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


async def received(receive: Receive, count: int) -> list[tuple[str, Any, dict[str, Any]]]:
    messages = [await receive() for _ in range(count)]
    return [(m["action"], m["pk"], m["data"]) for m in messages]


async def marker(receive: Receive, stream_model: Any = Category) -> None:
    """Save a marker and expect it as the next event: nothing else came before it."""
    obj = await stream_model.objects.acreate(name="marker")
    message = await receive()
    assert (message["action"], message["data"]["name"]) == ("create", "marker"), message
    return obj


# -- the rules, on their own ------------------------------------------------------------------


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        (["create", "update", "update"], "create"),
        (["update", "update"], "update"),
        (["create", "delete"], None),
        (["create", "update", "delete"], None),
        (["update", "delete"], "delete"),
        (["delete", "create"], "update"),
        (["delete"], "delete"),
    ],
)
def test_the_changes_of_one_object_coalesce(actions: list[str], expected: str | None) -> None:
    registration = registration_for_stream("categories")
    assert registration is not None
    changes = [Change(registration, 1, Action(a), f'"{i}"') for i, a in enumerate(actions)]
    result = coalesce(changes)
    assert [c.action.value for c in result] == ([expected] if expected else [])
    if expected:
        assert result[0].data == f'"{len(actions) - 1}"'  # the last state


@pytest.mark.django_db(transaction=False)
def test_objects_keep_the_order_they_were_first_changed_in() -> None:
    registration = registration_for_stream("categories")
    assert registration is not None
    changes = [Change(registration, pk, Action.UPDATE) for pk in (3, 1, 3, 2, 1)]
    assert [c.pk for c in coalesce(changes)] == [3, 1, 2]


# -- in transactions ---------------------------------------------------------------------------


async def test_saving_one_object_three_times_in_a_transaction_sends_one_update(
    listen: Listen,
) -> None:
    receive = await listen("categories")
    category = await Category.objects.acreate(name="a")
    await receive()

    def three_saves() -> None:
        with transaction.atomic():
            for name in ("b", "c", "d"):
                category.name = name
                category.save()

    await sync_to_async(three_saves)()
    assert await received(receive, 1) == [
        ("update", str(category.pk), {"id": category.pk, "name": "d"})
    ]
    await marker(receive)


async def test_create_and_updates_in_a_transaction_are_one_create_with_the_final_state(
    listen: Listen,
) -> None:
    receive = await listen("categories")

    def create_then_update() -> int:
        with transaction.atomic():
            category = Category.objects.create(name="first")
            other = Category.objects.create(name="other")
            category.name = "final"
            category.save()
            other.delete()
        return category.pk

    pk = await sync_to_async(create_then_update)()
    assert await received(receive, 1) == [("create", str(pk), {"id": pk, "name": "final"})]
    await marker(receive)


async def test_update_then_delete_in_a_transaction_is_one_delete(listen: Listen) -> None:
    receive = await listen("categories")
    category = await Category.objects.acreate(name="a")
    await receive()
    pk = category.pk

    def update_then_delete() -> None:
        with transaction.atomic():
            category.name = "last"
            category.save()
            category.delete()

    await sync_to_async(update_then_delete)()
    assert await received(receive, 1) == [("delete", str(pk), {"id": pk, "name": "last"})]
    await marker(receive)


async def test_a_rolled_back_savepoint_keeps_the_changes_made_before_it(listen: Listen) -> None:
    receive = await listen("categories")

    def nested() -> int:
        with transaction.atomic():
            category = Category.objects.create(name="kept")
            with contextlib.suppress(Rollback), transaction.atomic():
                category.name = "rolled back"
                category.save()
                Category.objects.create(name="never")
                raise Rollback
        return category.pk

    pk = await sync_to_async(nested)()
    # The create is serialized from the instance, which still holds the rolled-back rename; the
    # publisher finds the committed row differs and sends it after: the last event is committed.
    events = await received(receive, 1)
    if events[0][2]["name"] != "kept":
        assert events[0][:2] == ("create", str(pk))
        events += await received(receive, 1)
    assert events[-1] == (events[-1][0], str(pk), {"id": pk, "name": "kept"})
    await marker(receive)


@pytest.mark.django_db(transaction=False)
def test_capture_on_commit_callbacks_in_a_test_case_sends_the_coalesced_event(
    django_capture_on_commit_callbacks: Any,
) -> None:
    """In a TestCase nothing commits: the events are read on the test's own connection."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    events: queue.Queue[Event] = queue.Queue()

    class Sink:
        user = None

        def push(self, event: Event, fields: object) -> None:
            events.put(event)

    sink = Sink()

    async def join() -> None:
        await get_hub().join("categories", sink, (Action.ALL_ACTIONS, None, None))

    async def leave() -> None:
        hub = get_hub()
        hub.discard(sink, "categories", Action.ALL_ACTIONS, None)
        await hub.leave("categories")

    asyncio.run_coroutine_threadsafe(join(), loop).result(5)
    try:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            category = Category.objects.create(name="x")
            category.name = "y"
            category.save()
        event = events.get(timeout=5)
        assert (event.action, event.data) == (Action.CREATE, {"id": category.pk, "name": "y"})
        assert flush_events(5)
        assert events.empty()
    finally:
        asyncio.run_coroutine_threadsafe(leave(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


# -- many-to-many -------------------------------------------------------------------------------


async def test_m2m_add_remove_clear_and_set_update_both_sides(listen: Listen) -> None:
    articles = await listen("articles")
    topics = await listen("topics")
    article = await Article.objects.acreate(title="a")
    t1 = await Topic.objects.acreate(name="t1")
    t2 = await Topic.objects.acreate(name="t2")
    await articles()
    assert [m[0] for m in await received(topics, 2)] == ["create", "create"]

    await sync_to_async(article.topics.add)(t1, t2)
    assert await received(articles, 1) == [
        ("update", str(article.pk), {"id": article.pk, "title": "a", "topics": [t1.pk, t2.pk]})
    ]
    assert sorted(await received(topics, 2)) == [
        ("update", str(t1.pk), {"id": t1.pk, "name": "t1", "articles": [article.pk]}),
        ("update", str(t2.pk), {"id": t2.pk, "name": "t2", "articles": [article.pk]}),
    ]

    # From the other side of the relation.
    await sync_to_async(t1.articles.remove)(article)
    assert (await received(articles, 1))[0][2]["topics"] == [t2.pk]
    assert await received(topics, 1) == [
        ("update", str(t1.pk), {"id": t1.pk, "name": "t1", "articles": []})
    ]

    await sync_to_async(article.topics.clear)()
    assert (await received(articles, 1))[0][2]["topics"] == []
    assert await received(topics, 1) == [
        ("update", str(t2.pk), {"id": t2.pk, "name": "t2", "articles": []})
    ]

    await sync_to_async(article.topics.set)([t1])
    assert (await received(articles, 1))[0][2]["topics"] == [t1.pk]
    assert (await received(topics, 1))[0][1] == str(t1.pk)


async def test_a_save_and_its_m2m_changes_in_one_transaction_are_one_event(
    listen: Listen,
) -> None:
    """What the admin's form does: save the object, then set its relations."""
    articles = await listen("articles")
    topic = await Topic.objects.acreate(name="t")

    def save_with_relations() -> int:
        with transaction.atomic():
            article = Article.objects.create(title="new")
            article.topics.set([topic])
        return article.pk

    pk = await sync_to_async(save_with_relations)()
    assert await received(articles, 1) == [
        ("create", str(pk), {"id": pk, "title": "new", "topics": [topic.pk]})
    ]
    await sync_to_async(Article.objects.create)(title="marker")
    assert (await received(articles, 1))[0][2]["title"] == "marker"


async def test_a_delete_carries_its_m2m_values(listen: Listen) -> None:
    articles = await listen("articles")
    topic = await Topic.objects.acreate(name="t")
    article = await Article.objects.acreate(title="a")
    await sync_to_async(article.topics.add)(topic)
    await received(articles, 2)
    pk = article.pk
    await article.adelete()
    assert await received(articles, 1) == [
        ("delete", str(pk), {"id": pk, "title": "a", "topics": [topic.pk]})
    ]


async def test_deleting_the_other_side_updates_the_objects_that_lose_it(listen: Listen) -> None:
    articles = await listen("articles")
    topic = await Topic.objects.acreate(name="t")
    article = await Article.objects.acreate(title="a")
    await sync_to_async(article.topics.add)(topic)
    await received(articles, 2)
    await topic.adelete()
    assert await received(articles, 1) == [
        ("update", str(article.pk), {"id": article.pk, "title": "a", "topics": []})
    ]


# -- notify and the opt-in QuerySet ----------------------------------------------------------


async def test_notify_takes_a_queryset_and_sends_one_event_per_object(listen: Listen) -> None:
    receive = await listen("categories")
    made = [await Category.objects.acreate(name=f"c{i}") for i in range(3)]
    await received(receive, 3)
    await Category.objects.filter(pk__in=[c.pk for c in made]).aupdate(name="bulk")
    await sync_to_async(notify)(
        Category.objects.filter(pk__in=[c.pk for c in made]).order_by("pk"), "update"
    )
    assert await received(receive, 3) == [
        ("update", str(c.pk), {"id": c.pk, "name": "bulk"}) for c in made
    ]
    # An iterable of instances: a delete shows the objects as given.
    await Category.objects.filter(pk__in=[c.pk for c in made[:2]]).adelete()
    await received(receive, 2)  # QuerySet.delete() sends its own events
    await sync_to_async(notify)(made[2:], Action.DELETE)
    assert (await received(receive, 1))[0][:2] == ("delete", str(made[2].pk))


@pytest.mark.django_db(transaction=False)
def test_notify_names_the_fix_for_an_unregistered_model() -> None:
    from django.contrib.sessions.models import Session

    with pytest.raises(NotRegisteredError, match="AUTODISCOVER"):
        notify(Session(session_key="k"), "update")


async def test_the_notifying_queryset_sends_bulk_writes(listen: Listen) -> None:
    receive = await listen("articles")

    def bulk_create() -> list[Article]:
        return Article.objects.bulk_create([Article(title="x"), Article(title="y")])

    made = await sync_to_async(bulk_create)()
    assert await received(receive, 2) == [
        ("create", str(a.pk), {"id": a.pk, "title": a.title, "topics": []}) for a in made
    ]

    # update() names the rows it changed, also those that stop matching the filter.
    count = await sync_to_async(lambda: Article.objects.filter(title="x").update(title="z"))()
    assert count == 1
    assert await received(receive, 1) == [
        ("update", str(made[0].pk), {"id": made[0].pk, "title": "z", "topics": []})
    ]

    def bulk_update() -> int:
        for article in made:
            article.title = "w"
        return Article.objects.bulk_update(made, ["title"])

    await sync_to_async(bulk_update)()
    assert [m[2]["title"] for m in await received(receive, 2)] == ["w", "w"]

    # QuerySet.delete() sends its events without the opt-in.
    await sync_to_async(lambda: Article.objects.filter(pk=made[0].pk).delete())()
    assert (await received(receive, 1))[0][:2] == ("delete", str(made[0].pk))


async def test_changes_after_a_rolled_back_savepoint_still_coalesce(listen: Listen) -> None:
    receive = await listen("categories")

    def work() -> int:
        with transaction.atomic():
            first = Category.objects.create(name="a")
            with contextlib.suppress(Rollback), transaction.atomic():
                Category.objects.create(name="never")
                raise Rollback
            second = Category.objects.create(name="b")
            first.name = "a2"
            first.save()
            second.delete()
        return first.pk

    pk = await sync_to_async(work)()
    assert await received(receive, 1) == [("create", str(pk), {"id": pk, "name": "a2"})]
    await marker(receive)


async def test_an_m2m_change_then_a_save_send_two_events(listen: Listen) -> None:
    """Both may reach the publisher in one round: the m2m change, which has no data of its own,
    is read back all the same."""
    articles = await listen("articles")
    topic = await Topic.objects.acreate(name="t")
    article = await Article.objects.acreate(title="a")
    await articles()

    def add_then_save() -> None:
        article.topics.add(topic)
        article.title = "b"
        article.save()

    await sync_to_async(add_then_save)()
    events = await received(articles, 2)
    assert [e[0] for e in events] == ["update", "update"]
    assert events[-1][2] == {"id": article.pk, "title": "b", "topics": [topic.pk]}
    assert events[0][2]["topics"] == [topic.pk]
