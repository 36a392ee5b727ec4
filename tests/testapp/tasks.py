"""The Celery app of ``tests/e2e/test_writers.py``: a real worker whose pool processes save.

``celery -A tests.testapp.tasks worker --pool prefork ...`` with ``DJANGO_SETTINGS_MODULE`` set:
Celery's Django fixup calls ``django.setup()`` in the worker before it forks its pool, so the
library's autodiscovery registers the serializers there (with ``CELERY_SKIP_CHECKS=1`` no system
check imports the URLconf, and through it the serializers, first), and its flush is connected to
``worker_process_shutdown``, which each pool process sends before it exits.

Broker and results: ``SMS_CELERY_BROKER`` (Redis database 9 on 127.0.0.1:6379 by default). Each
test's worker consumes a queue of its own (``-Q``; tasks are sent with ``queue=``), so that runs
of the suite at the same time on one machine never take each other's tasks.

Models are imported inside the task: this module is imported before Django is set up.
"""

from __future__ import annotations

import io
import json
import os
import time
from typing import Any

import redis
from celery import Celery

BROKER_URL = os.environ.get("SMS_CELERY_BROKER", "redis://127.0.0.1:6379/9")

app = Celery("sms_tests")
app.conf.update(
    broker_url=BROKER_URL,
    result_backend=BROKER_URL,
    result_expires=600,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    # One task at a time per pool process, none reserved ahead: two tasks sent together run in
    # the two pool processes.
    worker_prefetch_multiplier=1,
    task_acks_late=True,
)


@app.task(name="tests.save_products")
def save_products(
    ops: str,
    barrier: str | None = None,
    parties: int = 1,
    flush: bool = False,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Run ``save_products`` operations (a JSON list) in this pool process.

    With ``barrier`` (a Redis key of its own), first wait until ``parties`` tasks have started,
    each in a pool process of its own (a task waiting holds its process), so that they save at
    the same time. With ``flush``, return only once the events are published
    (``flush_events``); otherwise they go out in the background, or when the pool process exits.
    Returns the command's report with this process's pid and the wall-clock times around the
    saves.
    """
    from django.core.management import call_command

    from strawberry_model_subs import flush_events

    if barrier is not None:
        _wait_for_parties(barrier, parties, timeout)
    out = io.StringIO()
    started = time.time()
    call_command("save_products", ops, stdout=out)
    finished = time.time()
    if flush and not flush_events(timeout):
        raise TimeoutError(f"the events were not published within {timeout} s")
    report: dict[str, Any] = json.loads(out.getvalue().splitlines()[-1])
    return {**report, "pid": os.getpid(), "started": started, "finished": finished}


def _wait_for_parties(key: str, parties: int, timeout: float) -> None:
    """A barrier on Redis: the last party to arrive lets every party go (no polling)."""
    with redis.Redis.from_url(BROKER_URL, socket_timeout=timeout + 10) as client:
        go = f"{key}:go"
        arrived = int(client.incr(key))
        client.expire(key, 600)
        if arrived == parties:
            client.rpush(go, *["go"] * parties)
            client.expire(go, 600)
        if client.blpop([go], timeout=timeout) is None:
            raise TimeoutError(
                f"{client.get(key)!r} of {parties} tasks started within {timeout} s (each needs "
                "a pool process of its own)"
            )
