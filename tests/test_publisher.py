"""The publisher and the hub's ordering: versions, registration in every process, Redis as users
configure it, and outages that lose nothing."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.db.backends.signals import connection_created
from rest_framework import serializers

from strawberry_model_subs import Action, Event, capture, flush_events, model_subscription
from strawberry_model_subs.hub import Hub
from strawberry_model_subs.publisher import get_publisher
from strawberry_model_subs.registry import unregister
from tests.conftest import NO_LAYER, Listen
from tests.e2e.scale_out import RedisServer
from tests.testapp.models import Category

ROOT = Path(__file__).resolve().parent.parent
PUBLISHER_THREAD = "strawberry-model-subs publisher"


def event(
    pk: str,
    version: int | None,
    epoch: str | None = "0001-a",
    name: str = "x",
    followup: bool = False,
) -> Event:
    data = {"id": int(pk), "name": name}
    raw = json.dumps(data)
    return Event(
        "categories", Action.UPDATE, "testapp.category", pk, data, raw, epoch, version, followup
    )


def test_the_hub_drops_an_event_older_than_one_it_dispatched() -> None:
    hub = Hub(layer=NO_LAYER)
    assert not hub.is_stale(event("1", 2))
    assert hub.is_stale(event("1", 1))  # crossed on its way: the later state is shown already
    assert hub.is_stale(event("1", 2))  # the same event twice
    assert not hub.is_stale(event("2", 1))  # versions are per object
    assert not hub.is_stale(event("1", 3))
    assert not hub.is_stale(event("1", None, None))  # sent by hand: never dropped
    # A new epoch (the versions' store was lost) starts afresh; the old one is over.
    assert not hub.is_stale(event("1", 1, "0002-b"))
    assert hub.is_stale(event("1", 9, "0001-a"))


def test_the_hub_drops_an_update_that_repeats_a_follow_up() -> None:
    """A writer that read the row another process had just committed sends it as a follow-up;
    that process's own event, with the same data, then says nothing new (and vice versa)."""
    hub = Hub(layer=NO_LAYER)
    assert not hub.is_stale(event("1", 1, name="a"))
    assert not hub.is_stale(event("1", 2, name="b", followup=True))
    assert hub.is_stale(event("1", 3, name="b"))
    assert not hub.is_stale(event("1", 5, name="c"))
    assert hub.is_stale(event("1", 6, name="c", followup=True))
    # Two plain saves with the same data are two events.
    assert not hub.is_stale(event("1", 7, name="c"))


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serializers_modules_are_registered_in_every_process_that_sets_django_up() -> None:
    """A plain script imports neither URLs nor the schema: django.setup() is enough."""
    result = run_python(
        "import django; django.setup()\n"
        "from strawberry_model_subs.registry import registration_for_stream\n"
        "print(registration_for_stream('categories') is not None)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_autodiscovery_can_be_turned_off() -> None:
    code = (
        "from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['django.contrib.contenttypes', 'django.contrib.auth',"
        " 'channels', 'rest_framework', 'strawberry_model_subs', 'tests.testapp'],"
        " DATABASES={'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': ':memory:'}},"
        " STRAWBERRY_MODEL_SUBS={'AUTODISCOVER': []})\n"
        "import django; django.setup()\n"
        "from strawberry_model_subs.registry import registration_for_stream\n"
        "print(registration_for_stream('categories') is None)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_a_serializer_registered_after_startup_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "strawberry_model_subs"):

        @model_subscription(stream="late-categories", name="LateCategory")
        class LateSerializer(serializers.ModelSerializer):
            class Meta:
                model = Category
                fields = ("id",)

    try:
        assert "registered after Django started" in caplog.text
        assert "AUTODISCOVER" in caplog.text
    finally:
        unregister("late-categories")


# -- Redis as users configure it -------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_layer(request: pytest.FixtureRequest, redis_server: RedisServer, settings: Any) -> str:
    """A RedisChannelLayer on the private server, its host written in the form ``param``: as
    the Channels docs show it (redis-py's 5 s read timeout, the same 5 s that channels_redis
    blocks for) or as the README recommends."""
    form = getattr(request, "param", "readme")
    if form == "channels-docs":
        hosts: list[Any] = [("127.0.0.1", redis_server.port)]
    else:
        hosts = [{"address": redis_server.url, "max_connections": 1000, "socket_timeout": 30}]
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": hosts}}
    }
    return form


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("private_layer", ["channels-docs", "readme"], indirect=True)
async def test_an_idle_redis_layer_logs_nothing_and_delays_nothing(
    private_layer: str, listen: Listen, caplog: pytest.LogCaptureFixture
) -> None:
    receive = await listen("categories")
    with caplog.at_level(logging.INFO, "strawberry_model_subs"):
        await asyncio.sleep(30)  # the idle time under test, not a synchronisation
        loop = asyncio.get_running_loop()
        for name in ("after", "idle"):
            started = loop.time()
            await Category.objects.acreate(name=name)
            message = await receive()
            assert message["data"]["name"] == name
            assert loop.time() - started < 1.0, "an event waited for a read timeout"
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert failures == [], [r.getMessage() for r in failures]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
async def test_saves_during_a_redis_outage_are_published_in_order_when_it_is_back(
    redis_server: RedisServer, private_layer: str, listen: Listen, caplog: pytest.LogCaptureFixture
) -> None:
    receive = await listen("categories")
    await Category.objects.acreate(name="before")
    assert (await receive())["data"]["name"] == "before"
    with caplog.at_level(logging.INFO, "strawberry_model_subs"):
        redis_server.stop()
        loop = asyncio.get_running_loop()
        started = loop.time()
        names = [f"during-{i}" for i in range(5)]
        for name in names:
            await Category.objects.acreate(name=name)
        assert loop.time() - started < 2.0, "saves waited on the Redis that is down"
        assert not await sync_to_async(flush_events)(1.0)
        redis_server.start()
        assert await sync_to_async(flush_events)(20.0), "the kept events were not published"
        got = [(await receive())["data"]["name"] for _ in names]
    assert got == names
    text = caplog.text
    assert text.count("event(s) kept") == 1, text
    assert "publishing resumed" in text


class HeldHandOver:
    """Saves made in a thread named "held" commit, set ``waiting``, then wait for ``release``
    before handing their change to the publisher (a thread descheduled between the two)."""

    def __init__(self) -> None:
        self.waiting = threading.Event()
        self.release = threading.Event()


@pytest.fixture
def held_hand_over() -> Iterator[HeldHandOver]:
    original = capture._sink  # test-only seam: the sink set_sink replaces, to wrap and restore
    assert original is not None
    held = HeldHandOver()

    def sink(using: str, changes: list[capture.Change]) -> None:
        if threading.current_thread().name == "held":
            held.waiting.set()
            assert held.release.wait(20), "the held hand-over was never released"
        original(using, changes)

    capture.set_sink(sink)
    try:
        yield held
    finally:
        held.release.set()
        capture.set_sink(original)


@pytest.mark.django_db(transaction=True)
async def test_a_save_handed_over_after_a_later_one_of_another_thread_ends_on_the_row(
    listen: Listen, held_hand_over: HeldHandOver
) -> None:
    """Thread "held" commits "a", thread B then commits "b" and publishes it; "held" hands "a"
    over last. The last event must still be "b", the row: the publisher reads the row back
    because another writer took the object's previous version."""
    receive = await listen("categories")
    pk = (await Category.objects.acreate(name="start")).pk
    assert (await receive())["data"]["name"] == "start"

    def save_held() -> None:
        try:
            Category(pk=pk, name="a").save()
        finally:
            connection.close()

    held = threading.Thread(target=save_held, name="held")
    held.start()
    waiting = await asyncio.to_thread(held_hand_over.waiting.wait, 10)
    assert waiting, "the held save did not commit"

    def save_b() -> None:
        try:
            Category(pk=pk, name="b").save()
            assert flush_events(10)
        finally:
            connection.close()

    await asyncio.to_thread(save_b)
    assert (await receive())["data"]["name"] == "b"
    held_hand_over.release.set()
    await asyncio.to_thread(held.join, 20)
    assert await sync_to_async(flush_events)(10.0)
    marker = await Category.objects.acreate(name="marker")
    assert await sync_to_async(flush_events)(10.0)
    names = []
    while (got := await receive())["pk"] != str(marker.pk):
        names.append(got["data"]["name"])
    row = await Category.objects.aget(pk=pk)
    assert row.name == "b"
    assert names[-1:] == ["b"], f"after 'b', the subscriber got {names}"


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
async def test_one_threads_successive_saves_of_an_object_are_not_read_back(listen: Listen) -> None:
    """No other writer took a version of the object in between: nothing to check, no query."""
    receive = await listen("categories")
    pk = (await Category.objects.acreate(name="v0")).pk
    assert (await receive())["data"]["name"] == "v0"
    assert await sync_to_async(get_publisher().release_connections)()
    queries: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(sql)
        return execute(sql, params, many, context)

    def on_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == PUBLISHER_THREAD:
            connection.execute_wrappers.append(record)

    connection_created.connect(on_connection)
    try:
        for version in range(1, 4):
            await Category.objects.filter(pk=pk).aupdate(name="x")  # no event, no version
            await sync_to_async(Category(pk=pk, name=f"v{version}").save)()
            assert await sync_to_async(flush_events)(10.0)
            assert (await receive())["data"]["name"] == f"v{version}"

        # The check is there all the same when another thread wrote the object last.
        def save_and_close() -> None:
            Category(pk=pk, name="other").save()
            connection.close()

        await asyncio.to_thread(save_and_close)
        assert await sync_to_async(flush_events)(10.0)
        assert (await receive())["data"]["name"] == "other"
    finally:
        connection_created.disconnect(on_connection)
    reads = [q for q in queries if "testapp_category" in q]
    assert len(reads) == 1, queries
