"""The write path: saves per second of a registered model against the same model unregistered.

One process per channel layer (``contenders.WRITE_LAYERS``; the layer is chosen by settings, so
each runs in a child process of its own, ``BENCH_WRITE_LAYER`` naming it), on PostgreSQL. In each,
two models of the same shape (``bench/write_app``): ``Item``, registered with
``@model_subscription(stream="bench-items")``, and ``PlainItem``, not. Each has ``--rows`` rows;
a measure is ``--saves`` updates (``Model.save()``, autocommit: each save its own transaction and
its own event) of those rows, round-robin, every save changing the row. Plain and registered
measures alternate (``--rounds`` rounds, the order swapped every round) so that machine noise hits
both; the figures are the medians.

A registered save hands its change to the library's publisher thread and returns; the timed region
of a registered measure ends only after ``flush_events()`` returned True, so it holds all of that
work (versions, read-back, serialization, the send). One subscriber counts what arrives, so the
events go somewhere: on the in-memory layer a sink joined to this process's hub
(``get_hub().join``, in a thread with an event loop of its own); on the Redis layers a process of
its own (``--receiver``, as a deployment's servers are), whose receiver joined the group
``<GROUP_PREFIX>.bench-items`` and counts the events of each ``sms.events`` message. When a
layer misses its target, one more registered measure runs under cProfile (the saving thread, and
the publisher thread's rounds).

    python bench/write_path.py              # every layer (about a minute)
    python bench/write_path.py --quick      # a smoke run
    python bench/write_path.py --layers memory --json /tmp/write.json

``make bench`` runs it too (``make bench BENCH_ARGS=--write-path-only`` for only this), and writes
its table to bench/RESULTS.md, "Write path".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import os
import pstats
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import write_report
from contenders import WRITE_LAYERS, WRITE_LAYERS_BY_NAME, WriteLayer
from supervise import run_script

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SETTINGS = "write_app.settings"
#: Defaults: the shared services of the machine, with a database, a Redis database and a prefix
#: of this benchmark's own (nothing else sees its events; the Redis keys of the prefix are
#: deleted before each layer's run).
PG = "127.0.0.1:5432"
DB = "sms_bench_write"
REDIS = "127.0.0.1:6379"
REDIS_DB = 7
PREFIX = "smsbenchwrite"
#: Seconds to wait for the subscriber to have received a measure's events.
RECEIVE_TIMEOUT = 20.0
#: Rows of cProfile's table.
PROFILE_TOP = 15

perf = time.perf_counter
#: The running child processes (killed if this process is interrupted).
_children: list[subprocess.Popen[str]] = []


def say(message: str) -> None:
    print(f"[write path] {message}", file=sys.stderr, flush=True)


# -- the child: one layer ---------------------------------------------------------------------


def reset_database(pg: str, name: str, create: bool = True) -> None:
    """Drop and create the benchmark's own database (trust auth, user postgres)."""
    import psycopg

    host, _, port = pg.rpartition(":")
    with psycopg.connect(
        host=host, port=int(port), user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def reset_redis(url: str, prefix: str) -> int:
    """Delete the keys of this benchmark's prefix (left by an earlier run); how many."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


class Receiver:
    """The one subscriber: counts the events that arrive, in a thread with its own loop."""

    def __init__(self, layer: WriteLayer, stream: str, prefix: str) -> None:
        self.layer = layer
        self.stream = stream
        self.group = f"{prefix}.{stream}"
        #: Events received (written by the receiver's thread only).
        self.events = 0
        #: Layer messages received (Redis layers; one message carries a batch of events).
        self.messages = 0
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="bench receiver", daemon=True)

    # The hub's Sink protocol (in-memory layer).
    user = None

    def push(self, event: Any, fields: Any) -> None:
        self.events += 1

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the receiver did not join {self.group} in {timeout:.0f} s")
        if self.error is not None:
            raise RuntimeError(f"the receiver failed: {self.error!r}")

    def stop(self) -> None:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)

    def wait_for(self, count: int, timeout: float = RECEIVE_TIMEOUT) -> int:
        """Wait until ``count`` events arrived in all (or ``timeout``); the count then."""
        deadline = perf() + timeout
        while self.events < count and perf() < deadline and self.error is None:
            time.sleep(0.002)
        return self.events

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._task = loop.create_task(self._main())
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        if self.layer.redis:
            await self._layer_main()
        else:
            await self._hub_main()

    async def _hub_main(self) -> None:
        from strawberry_model_subs import Action
        from strawberry_model_subs.hub import get_hub

        hub = get_hub()
        await hub.join(self.stream, self, (Action.ALL_ACTIONS, None, None))
        self._ready.set()
        try:
            await asyncio.Event().wait()
        finally:
            hub.discard(self, self.stream, Action.ALL_ACTIONS, None)
            await hub.leave(self.stream)

    async def _layer_main(self) -> None:
        from channels.layers import channel_layers

        from strawberry_model_subs.events import BATCH_MESSAGE_TYPE

        # A layer instance of its own: the publisher's runs on the publisher's thread and loop.
        layer = channel_layers.make_backend("default")
        channel = await layer.new_channel()
        await layer.group_add(self.group, channel)
        self._ready.set()
        try:
            while True:
                message = await layer.receive(channel)
                if message.get("type") == BATCH_MESSAGE_TYPE:
                    self.messages += 1
                    self.events += len(message["events"])
        finally:
            with contextlib.suppress(Exception):
                await layer.group_discard(self.group, channel)


class RemoteReceiver:
    """The subscriber of a Redis layer, in a process of its own (as the servers that receive a
    deployment's events are): a ``--receiver`` child running :class:`Receiver`, asked for its
    counts over a pipe, so that its receiving and decoding are not measured with the saves."""

    def __init__(self, argv: list[str]) -> None:
        self._argv = argv
        self._process: subprocess.Popen[str] | None = None
        self.events = 0
        self.messages = 0

    def start(self, timeout: float = 30.0) -> None:
        self._process = subprocess.Popen(
            self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        _children.append(self._process)
        line = self._reply(timeout)
        if line != "ready":
            raise RuntimeError(f"the receiver process did not start: {line!r}")

    def _reply(self, timeout: float) -> str:
        assert self._process is not None
        assert self._process.stdout is not None
        stdout = self._process.stdout
        done = threading.Event()
        out: list[str] = []

        def read() -> None:
            out.append(stdout.readline().strip())
            done.set()

        threading.Thread(target=read, daemon=True).start()
        if not done.wait(timeout):
            raise RuntimeError(f"the receiver process did not answer in {timeout:.0f} s")
        return out[0]

    def count(self) -> int:
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write("count\n")
        self._process.stdin.flush()
        events, messages = self._reply(10.0).split()
        self.events, self.messages = int(events), int(messages)
        return self.events

    def wait_for(self, count: int, timeout: float = RECEIVE_TIMEOUT) -> int:
        """Wait until ``count`` events arrived in all (or ``timeout``); the count then."""
        deadline = perf() + timeout
        while self.count() < count and perf() < deadline:
            time.sleep(0.01)
        return self.events

    def stop(self) -> None:
        if self._process is None:
            return
        with contextlib.suppress(Exception):
            self.count()
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()


def receiver_main(layer_name: str, prefix: str) -> int:
    """The ``--receiver`` child: join the stream's group, then answer ``count`` on stdin with
    ``<events> <layer messages>`` until stdin closes."""
    import django

    django.setup()
    from write_app.serializers import STREAM

    receiver = Receiver(WRITE_LAYERS_BY_NAME[layer_name], STREAM, prefix)
    receiver.start()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            if receiver.error is not None:
                print(f"error {receiver.error!r}", flush=True)
                return 1
            print(f"{receiver.events} {receiver.messages}", flush=True)
    receiver.stop()
    return 0


#: Prices the saves cycle through (each save changes name, price and in_stock).
PRICES = [Decimal(f"{k}.{k % 100:02d}") for k in range(1, 998)]


def save_loop(objects: list[Any], n: int, start: int) -> None:
    """``n`` updates of ``objects`` round-robin; save k writes values of its own."""
    count = len(objects)
    for k in range(start, start + n):
        obj = objects[k % count]
        obj.name = f"item-{k}"
        obj.price = PRICES[k % len(PRICES)]
        obj.in_stock = bool(k & 1)
        obj.save()


def measure(objects: list[Any], n: int, start: int, registered: bool) -> dict[str, float]:
    """One timed measure: wall and process CPU seconds (every thread) of ``n`` saves, and for
    the registered model the ``flush_events()`` that follows them."""
    from strawberry_model_subs import flush_events

    gc.collect()
    wall, cpu = perf(), time.process_time()
    save_loop(objects, n, start)
    if registered:
        flushed = flush_events(timeout=60)
        if not flushed:
            raise RuntimeError("flush_events(timeout=60) returned False: events not published")
    return {"wall_s": perf() - wall, "cpu_s": time.process_time() - cpu}


def profile_rows(
    profiler: cProfile.Profile, top: int = PROFILE_TOP, only: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The ``top`` functions by cumulative time (of the files whose path has one of ``only``
    in it, if given), as rows for the report."""
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    if only:
        entries = {k: v for k, v in entries.items() if any(part in k[0] for part in only)}
    rows = []
    for (path, line, name), (cc, nc, tt, ct, _callers) in sorted(
        entries.items(), key=lambda item: item[1][3], reverse=True
    )[:top]:
        rows.append(
            {
                "function": f"{short_path(path)}:{line}({name})" if line else name,
                "ncalls": f"{nc}/{cc}" if nc != cc else str(nc),
                "tottime_s": tt,
                "cumtime_s": ct,
            }
        )
    return rows


def short_path(path: str) -> str:
    """A profiled file's path: inside site-packages, the standard library or the repository."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    stdlib = re.match(r".*/lib/python3\.\d+/(.*)", path)
    if stdlib:
        return stdlib.group(1)
    with contextlib.suppress(ValueError):
        return str(Path(path).resolve().relative_to(ROOT))
    return path


def profiled_measure(objects: list[Any], n: int, start: int) -> dict[str, Any]:
    """One more registered measure under cProfile: the saving thread's loop and flush, and the
    publisher thread's publishing rounds (its ``_publish``, wrapped for this measure only)."""
    from strawberry_model_subs import flush_events
    from strawberry_model_subs.publisher import get_publisher

    publisher = get_publisher()
    background = cProfile.Profile()
    original = getattr(publisher, "_publish", None)
    if original is not None:

        def traced(*args: Any, **kwargs: Any) -> Any:
            background.enable()
            try:
                return original(*args, **kwargs)
            finally:
                background.disable()

        publisher._publish = traced  # type: ignore[method-assign]
    main = cProfile.Profile()
    gc.collect()
    wall = perf()
    try:
        main.enable()
        save_loop(objects, n, start)
        flushed = flush_events(timeout=60)
        main.disable()
    finally:
        if original is not None:
            del publisher._publish
    wall = perf() - wall
    return {
        "saves": n,
        "wall_s": wall,
        "flushed": flushed,
        "main": profile_rows(main),
        # What the registered save itself runs: the post_save dispatch and the library's receiver.
        "main_library": profile_rows(main, 8, ("strawberry_model_subs", "django/dispatch")),
        "publisher": profile_rows(background) if original is not None else [],
        "publisher_note": ""
        if original is not None
        else "the publisher has no _publish method any more: its thread was not profiled",
    }


def summarize(rounds: list[dict[str, Any]], saves: int) -> dict[str, Any]:
    plain = statistics.median(r["plain"]["wall_s"] for r in rounds)
    registered = statistics.median(r["registered"]["wall_s"] for r in rounds)
    ratios = [r["registered"]["wall_s"] / r["plain"]["wall_s"] for r in rounds]
    return {
        "plain_per_s": saves / plain,
        "registered_per_s": saves / registered,
        "plain_us": plain * 1e6 / saves,
        "registered_us": registered * 1e6 / saves,
        "plain_cpu_us": statistics.median(r["plain"]["cpu_s"] for r in rounds) * 1e6 / saves,
        "registered_cpu_us": statistics.median(r["registered"]["cpu_s"] for r in rounds)
        * 1e6
        / saves,
        "ratio": registered / plain,
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "received": sum(r["received"] for r in rounds),
        "expected": sum(r["expected"] for r in rounds),
    }


def child(args: argparse.Namespace) -> dict[str, Any]:
    layer = WRITE_LAYERS_BY_NAME[args.child]
    redis_url = f"redis://{args.redis}/{args.redis_db}"
    reset_database(args.pg, args.db)
    if layer.redis:
        reset_redis(redis_url, args.prefix)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    from django.db import connection
    from write_app.models import Item, PlainItem
    from write_app.serializers import STREAM

    from strawberry_model_subs import flush_events

    def rows(model: Any) -> list[Any]:
        # bulk_create sends no post_save: no event for the rows themselves.
        model.objects.bulk_create(
            model(name=f"item-{k}", price=PRICES[k], in_stock=True) for k in range(args.rows)
        )
        return list(model.objects.order_by("pk"))

    plain_objects, registered_objects = rows(PlainItem), rows(Item)
    receiver: Receiver | RemoteReceiver
    if layer.redis:
        receiver = RemoteReceiver(
            [
                sys.executable,
                str(BENCH / "write_path.py"),
                "--receiver",
                layer.name,
                "--prefix",
                args.prefix,
            ]
        )
    else:
        receiver = Receiver(layer, STREAM, args.prefix)
    receiver.start()
    try:
        # Warm-up: connections (the publisher thread's too), lazy imports, caches.
        start = 0
        measure(plain_objects, args.warmup, start, registered=False)
        measure(registered_objects, args.warmup, start, registered=True)
        start += args.warmup
        expected = args.warmup
        warm = receiver.wait_for(expected)
        if warm != expected:
            raise RuntimeError(f"warm-up: the subscriber received {warm} of {expected} events")
        rounds = []
        for k in range(args.rounds):
            result: dict[str, Any] = {}
            order = (False, True) if k % 2 == 0 else (True, False)
            for registered in order:
                objects = registered_objects if registered else plain_objects
                key = "registered" if registered else "plain"
                result[key] = measure(objects, args.saves, start, registered)
            start += args.saves
            before = expected
            expected += args.saves
            result["received"] = receiver.wait_for(expected) - before
            result["expected"] = args.saves
            rounds.append(result)
            say(
                f"{layer.name} round {k + 1}/{args.rounds}: plain "
                f"{args.saves / result['plain']['wall_s']:,.0f}/s, registered "
                f"{args.saves / result['registered']['wall_s']:,.0f}/s, received "
                f"{result['received']}/{result['expected']}"
            )
        summary = summarize(rounds, args.saves)
        profile = None
        if args.profile == "always" or (
            args.profile == "auto" and summary["ratio"] > layer.max_ratio
        ):
            say(f"{layer.name}: profiling one more registered measure")
            profile = profiled_measure(registered_objects, args.saves, start)
            start += args.saves
            expected += args.saves
            profile["received"] = receiver.wait_for(expected) - (expected - args.saves)
        flush_events(timeout=60)
    finally:
        receiver.stop()
    return {
        "layer": layer.name,
        "saves": args.saves,
        "warmup": args.warmup,
        "rows": args.rows,
        "rounds": rounds,
        "summary": summary,
        "profile": profile,
        "redis_messages": receiver.messages,
        "postgres": connection.cursor().connection.info.server_version,
    }


# -- the parent: every layer ------------------------------------------------------------------


def redis_down(address: str) -> str | None:
    """None when the Redis at ``address`` answers PING, else why not."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return f"Redis at {address} does not answer ({exc})"
    return None if reply.startswith(b"+PONG") else f"Redis at {address} answered {reply!r}"


def child_argv(args: argparse.Namespace, layer: WriteLayer) -> list[str]:
    return [
        sys.executable,
        str(BENCH / "write_path.py"),
        "--child",
        layer.name,
        "--saves",
        str(args.saves),
        "--warmup",
        str(args.warmup),
        "--rounds",
        str(args.rounds),
        "--rows",
        str(args.rows),
        "--pg",
        args.pg,
        "--db",
        args.db,
        "--redis",
        args.redis,
        "--redis-db",
        str(args.redis_db),
        "--prefix",
        args.prefix,
        "--profile",
        args.profile,
    ]


def run_layer(args: argparse.Namespace, layer: WriteLayer) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "DJANGO_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE=SETTINGS,
        BENCH_WRITE_LAYER=layer.name,
        BENCH_WRITE_DB=args.db,
        BENCH_WRITE_PG=args.pg,
        BENCH_WRITE_REDIS=f"redis://{args.redis}/{args.redis_db}",
        BENCH_WRITE_PREFIX=args.prefix,
    )
    argv = child_argv(args, layer)
    shown_env = [f"{k}={env[k]}" for k in sorted(env) if k.startswith(("BENCH_", "DJANGO_"))]
    command = shlex.join(
        [*shown_env, os.path.relpath(argv[0], ROOT), os.path.relpath(argv[1], ROOT), *argv[2:]]
    )
    say(f"{layer.name}: {layer.title} ...")
    with tempfile.TemporaryFile("w+") as out:
        # The child's progress (stderr) is shown as it comes; its last lines explain a failure.
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.PIPE, text=True
        )
        _children.append(process)
        tail: list[str] = []
        deadline = perf() + args.timeout
        assert process.stderr is not None
        for line in process.stderr:
            sys.stderr.write(line)
            tail = [*tail[-19:], line.rstrip()]
            if perf() > deadline:
                break
        try:
            process.wait(max(1.0, deadline - perf()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return {"layer": layer.name, "error": f"ran over {args.timeout:.0f} s"}
        finally:
            _children.remove(process)
        out.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        last = next((line for line in reversed(tail) if line.strip()), "")
        return {
            "layer": layer.name,
            "error": f"exited with {process.returncode}" + (f": {last.strip()}" if last else ""),
            "command": command,
        }
    result: dict[str, Any] = json.loads(lines[-1])
    result["command"] = command
    s = result["summary"]
    say(
        f"{layer.name}: plain {s['plain_per_s']:,.0f}/s, registered {s['registered_per_s']:,.0f}/s"
        f", {s['ratio']:.2f}x, received {s['received']}/{s['expected']}"
    )
    return result


def library_revision() -> str:
    """The commit the library was measured at, and whether its files had changes on top."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "strawberry_model_subs"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} with uncommitted changes" if dirty else head


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every chosen layer, one child process each; everything the report needs."""
    chosen = [WRITE_LAYERS_BY_NAME[name] for name in args.layers.split(",") if name]
    results: dict[str, Any] = {}
    down = redis_down(args.redis) if any(layer.redis for layer in chosen) else None
    started, load, revision = perf(), os.getloadavg()[0], library_revision()
    for layer in chosen:
        if layer.redis and down:
            results[layer.name] = {"layer": layer.name, "skipped": down}
            continue
        results[layer.name] = run_layer(args, layer)
    # Leave nothing behind on the shared services: the database, the Redis keys of the prefix.
    with contextlib.suppress(Exception):
        reset_database(args.pg, args.db, create=False)
    if any(layer.redis for layer in chosen) and not down:
        with contextlib.suppress(Exception):
            reset_redis(f"redis://{args.redis}/{args.redis_db}", args.prefix)
    return {
        "options": {
            "saves": args.saves,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "rows": args.rows,
            "pg": args.pg,
            "db": args.db,
            "redis": f"{args.redis}/{args.redis_db}",
            "prefix": args.prefix,
            "quick": args.quick,
        },
        "layers": results,
        "duration_s": perf() - started,
        # The machine's 1-minute load average before and after: other work competing for it.
        "load": [load, os.getloadavg()[0]],
        "cores": os.cpu_count(),
        "library": revision,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="layers: " + ", ".join(f"{w.name} ({w.title})" for w in WRITE_LAYERS),
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run (3 rounds of 500)")
    parser.add_argument(
        "--layers", default=",".join(w.name for w in WRITE_LAYERS), help="comma-separated"
    )
    parser.add_argument("--saves", type=int, default=1000, help="saves per measure")
    parser.add_argument("--warmup", type=int, default=200, help="saves of each model before")
    parser.add_argument("--rounds", type=int, default=10, help="plain/registered rounds")
    parser.add_argument("--rows", type=int, default=200, help="rows of each model")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="cProfile one more registered measure: where the target is missed (auto)",
    )
    parser.add_argument("--pg", default=PG, help="PostgreSQL host:port (user postgres, trust)")
    parser.add_argument("--db", default=DB, help="the database (dropped and created)")
    parser.add_argument("--redis", default=REDIS, help="Redis host:port")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB)
    parser.add_argument("--prefix", default=PREFIX, help="GROUP_PREFIX and layer key prefix")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per layer")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--child", choices=list(WRITE_LAYERS_BY_NAME), help=argparse.SUPPRESS)
    parser.add_argument("--receiver", choices=list(WRITE_LAYERS_BY_NAME), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.layers.split(",")) - set(WRITE_LAYERS_BY_NAME) - {""}
    if unknown:
        parser.error(f"unknown layers: {', '.join(sorted(unknown))}")
    if args.quick and args.child is None:
        args.saves, args.warmup, args.rounds = min(args.saves, 500), min(args.warmup, 100), 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.receiver:
        return receiver_main(args.receiver, args.prefix)
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return 0
    data = run(args)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))
    command = shlex.join(["python", "bench/write_path.py", *(argv or sys.argv[1:])])
    print("\n".join(write_report.write_path_section(data, command, heading=False)))
    return 0


def kill_children() -> None:
    for process in _children:
        process.kill()


if __name__ == "__main__":
    run_script(main, kill_children)
