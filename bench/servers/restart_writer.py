"""The writer of ``bench/restarts.py``: a process of its own saving the bench's item at a steady
rate through the Django ORM, while the server its subscribers are on is killed and restarted.

Run in this folder with the server's environment (``DJANGO_SETTINGS_MODULE=sms_site.settings``,
``BENCH_LAYER=redis``, ``BENCH_REDIS_URL``, ``BENCH_PG`` and ``BENCH_PG_DB``): the item is
registered with ``@model_subscription`` there, so this process's publisher thread appends each
save to the stream's history in Redis and sends it to the layer group, as any writer of a
deployment does (web worker, Celery task, management command).

Save k (k = 1, 2, ...) writes ``seq=k`` (``k x --stride + --phase`` with those options, so that
several writers' seqs do not meet; ``--pk`` picks the item, made if missing), each in its own
transaction (autocommit); after its commit the line ``<k> <time.monotonic()>`` goes to stdout
(CLOCK_MONOTONIC: the driver's clock too). A save the database refuses (PostgreSQL restarting:
``OperationalError``, ``InterfaceError``) is not committed, so not an event: the line
``failed <k> <time.monotonic()>`` goes to stdout, the connection is closed (Django opens a new one
on the next query) and save k is tried again 50 ms later. The line ``stop`` on stdin (or its end)
stops the saves; the writer then waits for its publisher (``flush_events``) and prints
``flushed <last k> <ok>``.

    python restart_writer.py --rate 5
"""

from __future__ import annotations

import argparse
import sys
import threading
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, required=True, help="saves per second")
    parser.add_argument("--flush-timeout", type=float, default=60.0)
    parser.add_argument("--pk", type=int, help="the item saved (default: the bench's item)")
    parser.add_argument("--stride", type=int, default=1, help="save k writes k x stride + phase")
    parser.add_argument("--phase", type=int, default=0)
    args = parser.parse_args()

    import django

    django.setup()
    from benchapp.models import Item
    from benchapp.views import ITEM_PK
    from django.db import DatabaseError, InterfaceError, connection
    from sms_site import serializers  # noqa: F401  (registers the stream, as the server does)

    from strawberry_model_subs import flush_events

    pk = ITEM_PK if args.pk is None else args.pk
    Item.objects.get_or_create(pk=pk, defaults={"name": "item-0", "seq": 0})

    stop = threading.Event()

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=read_stdin, name="stdin", daemon=True).start()
    print("ready", flush=True)
    started = time.monotonic()
    k = 0
    while not stop.is_set():
        k += 1
        try:
            # An UPDATE of the existing row, as the trigger view does: post_save, created=False.
            Item(pk=pk, name=f"item-{k}", seq=k * args.stride + args.phase).save()
        except (DatabaseError, InterfaceError):
            print(f"failed {k} {time.monotonic():.6f}", flush=True)
            connection.close()
            k -= 1
            stop.wait(0.05)
            continue
        print(f"{k} {time.monotonic():.6f}", flush=True)
        delay = started + k / args.rate - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        elif delay < -1.0:
            # Behind by more than a second (an outage): go on at the rate, not in a burst.
            started = time.monotonic() - k / args.rate
    ok = flush_events(timeout=args.flush_timeout)
    print(f"flushed {k} {int(bool(ok))}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
