"""The soak (``make soak``): hours of uptime compressed into 30 minutes. Two servers of this
library on PostgreSQL and RedisChannelLayer hold 1,000 subscribers over both protocols while two
writer processes save 20 events/s between them and clients reconnect at random, each resuming
from its last cursor on the other server; the servers' memory, file descriptors and Redis'
memory are sampled every 10 s, and every frame is checked: nothing lost, nothing twice.

One process (this one) holds every socket (``Sub`` and ``Conn`` of ``bench/restarts.py``, which
each keep the cursor of the last event received) and drives the run; its children are the two
servers (uvicorn, ``bench/server.py``), the two writers (``bench/servers/restart_writer.py``,
each saving its own item: writer w writes seq = 2k + w, k = 1, 2, ...) and a private
``redis-server``:

1. the servers start (the Redis database flushed, a fresh PostgreSQL database), the writers
   start, and the subscribers connect: half on each server, on each server half on the stream
   protocol (``itemSubscription(action: UPDATE, after: "")``) and half on graphql-transport-ws
   (``itemChanged(action: UPDATE, after: "")``);
2. for ``--minutes``: every 10 s, each server's RSS and open file descriptors (``/proc``) and
   Redis' ``used_memory`` are sampled, and each subscriber closes its socket with probability
   ``--reconnect-rate`` per minute (1%) and reconnects to the other server with its cursor;
3. the writers stop (their publishers flushed), every subscriber is waited for until it has each
   writer's last event, and each subscriber's seqs of each writer are checked: from its first
   on, every one once, in order.

The RSS growth is that of the median of each server's samples in the last minute over the median
of its samples in the minute after the warm-up (the first 5 minutes, or the first third of a
shorter run). The plot (matplotlib) goes beside the results: ``bench/soak.png``.

    python bench/soak.py                     # 30 minutes; the section "Soak" of bench/RESULTS.md
    python bench/soak.py --minutes 3         # the short form: printed, the plot in the workspace
    make soak SOAK_MINUTES=3                 # the same through make
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import random
import shlex
import signal
import statistics
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import redis
import restarts
import results
import services
import supervise
from client import RunError, raise_open_files_limit
from report import TARGET_HEADERS, table, verdict
from restarts import (
    SMS,
    Sub,
    Writer,
    close_all,
    env_of,
    open_all,
    prepare_database,
    start_server,
)
from server import Server
from supervise import on_signal, rel, stop, workspace

matplotlib.use("Agg")
import matplotlib.pyplot as plt

now = time.monotonic

SOAK_HEADING = "## Soak"
WRITERS = 2
#: Seconds between two samples.
SAMPLE_EVERY = 10.0
#: The RSS growth target after the warm-up, and the warm-up of a full run.
MAX_RSS_GROWTH = 0.02
WARM_UP_MINUTES = 5.0
PLOT = results.RESULTS.parent / "soak.png"


def say(message: str) -> None:
    with contextlib.redirect_stdout(sys.stderr):
        supervise.say(message)


@dataclass(eq=False)
class SoakSub(Sub):
    """A subscriber whose frames are checked as they arrive (a 30-minute run is millions of
    them): per writer, the last k received, and what was lost, repeated or out of order."""

    server: int = 0
    last: list[int] = field(default_factory=lambda: [0] * WRITERS)
    frames: int = 0
    lost: int = 0
    duplicated: int = 0
    reconnects: int = 0

    def record(self, seq: int, cursor: str | None, at: float) -> None:
        self.frames += 1
        if cursor:
            self.cursor = cursor
        writer, k = seq % WRITERS, seq // WRITERS
        last = self.last[writer]
        if last and k <= last:
            self.duplicated += 1  # a repeat, or one that came out of order
            return
        if last:
            self.lost += k - last - 1
        self.last[writer] = k


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def reconnect(sub: SoakSub, servers: Sequence[Server], args: argparse.Namespace) -> None:
    """Close ``sub``'s socket and resume, from its cursor, on the other server."""
    if sub.conn is not None:
        conn = sub.conn
        conn.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(conn.closed), 15)
    sub.server = 1 - sub.server
    sub.reconnects += 1
    await open_all([sub], servers[sub.server].port, 1, args.connect_timeout)


async def start_traced(server: Server, label: str, flush: bool, trace: bool) -> None:
    """Start ``server`` (as ``restarts.start_server``), under tracemalloc with ``trace``."""
    if not trace:
        await start_server(server, label, flush_redis=flush)
        return
    extra = {
        "BENCH_PG": restarts.PG,
        "BENCH_PG_DB": restarts.PG_DB,
        "BENCH_GC_STATS": "1",
        "PYTHONTRACEMALLOC": "1",
    }
    await asyncio.to_thread(server.start, label, extra, flush)


def gc_stats(server: Server) -> dict[str, Any]:
    """The server's ``/gcstats`` (with the lines whose memory grew, under tracemalloc)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/gcstats", timeout=600) as r:
        stats: dict[str, Any] = json.loads(r.read())
    return stats


async def soak(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    servers = [Server(SMS, sys.executable, workdir, None) for _ in range(2)]
    prepare_database(servers[0])
    rng = random.Random(args.seed)
    per_writer = args.rate / WRITERS
    writers = [
        Writer(env_of(servers[0]), per_writer, workdir / f"writer-{w}.log") for w in range(WRITERS)
    ]
    for w, writer in enumerate(writers):
        writer.command += ["--pk", str(100 + w), "--stride", str(WRITERS), "--phase", str(w)]
    subs = [
        SoakSub("stream" if (i // 2) % 2 == 0 else "gtws", i, server=i % 2) for i in range(args.n)
    ]
    data: dict[str, Any] = {"samples": []}
    pending: set[asyncio.Task[None]] = set()
    try:
        for i, server in enumerate(servers):
            await start_traced(server, f"server-{'ab'[i]}", i == 0, args.trace_memory)
        data["server_command"] = servers[0].command
        for writer in writers:
            writer.start()
        python = os.path.relpath(sys.executable, restarts.SERVERS)  # noqa: ASYNC240
        shown = [f"{k}={v}" for k, v in sorted(writers[0].env.items()) if k.startswith("BENCH_")]
        data["writer_commands"] = [
            shlex.join([*shown, "DJANGO_SETTINGS_MODULE=sms_site.settings", python, *w.command[1:]])
            for w in writers
        ]
        for i, server in enumerate(servers):
            group = [s for s in subs if s.server == i]
            await open_all(group, server.port, args.concurrency, args.connect_timeout)
        say(f"soak: {args.n:,} subscribers on 2 servers, {args.rate:g} events/s; sampling")
        client = redis.Redis(host=services.REDIS[0], port=services.REDIS[1])
        started = now()
        end = started + args.minutes * 60
        per_sample = args.reconnect_rate * SAMPLE_EVERY / 60
        tick = 0
        while True:
            sample: dict[str, Any] = {"t_s": round(now() - started, 1)}
            for i, server in enumerate(servers):
                assert server.process is not None
                sample[f"rss_kib_{i}"] = rss_kib(server.process.pid)
                sample[f"fds_{i}"] = open_fds(server.process.pid)
            sample["redis_bytes"] = int(client.info("memory")["used_memory"])
            sample["frames"] = sum(s.frames for s in subs)
            data["samples"].append(sample)
            if tick % 6 == 0:
                say(
                    f"soak: {sample['t_s'] / 60:.1f} min, RSS "
                    f"{sample['rss_kib_0'] / 1024:.1f} / {sample['rss_kib_1'] / 1024:.1f} MiB, "
                    f"{sample['frames']:,} frames"
                )
            if args.trace_memory and tick == 0:
                await asyncio.gather(*(asyncio.to_thread(gc_stats, s) for s in servers))
            if now() >= end:
                if args.trace_memory:
                    stats = [await asyncio.to_thread(gc_stats, s) for s in servers]
                    data["grown"] = [s.get("grown", []) for s in stats]
                break
            for sub in subs:
                if rng.random() < per_sample:
                    task = asyncio.create_task(reconnect(sub, servers, args))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
            tick += 1
            await asyncio.sleep(max(0.0, started + tick * SAMPLE_EVERY - now()))
        if pending:
            await asyncio.wait(pending, timeout=args.connect_timeout)
        lasts = [await asyncio.to_thread(w.stop) for w in writers]
        if not all(flushed for _, flushed in lasts):
            raise RunError("a writer's flush_events() timed out")
        final = [last for last, _ in lasts]
        deadline = now() + args.event_timeout
        while True:
            if all(s.last == final for s in subs) or now() > deadline:
                break
            await asyncio.sleep(0.05)  # a bounded poll of what the sockets received
        await asyncio.sleep(0.5)  # late duplicates
        behind = sum(max(0, f - got) for s in subs for f, got in zip(final, s.last, strict=True))
        data.update(
            written=sum(final),
            lost=sum(s.lost for s in subs) + behind,
            subs_with_loss=sum(1 for s in subs if s.lost or s.last != final),
            duplicated=sum(s.duplicated for s in subs),
            frames=sum(s.frames for s in subs),
            reconnects=sum(s.reconnects for s in subs),
            errors=sorted({s.error for s in subs if s.error})[:5],
        )
        await close_all(subs)
    finally:
        for task in pending:
            task.cancel()
        for writer in writers:
            if writer.process is not None and writer.process.poll() is None:
                stop(writer.process)
        for server in servers:
            server.stop()
    data["server_errors"] = [server.errors()[0] for server in servers]
    return data


# -- the report -------------------------------------------------------------------------------


def growth(samples: Sequence[dict[str, Any]], key: str, warm_s: float) -> float | None:
    """The median of ``key`` in the last minute over its median in the minute after ``warm_s``
    (a quarter of what follows the warm-up, when that is shorter than 4 minutes)."""
    end = samples[-1]["t_s"] if samples else 0
    window = min(60.0, (end - warm_s) / 4)
    after = [s[key] for s in samples if warm_s <= s["t_s"] <= warm_s + window]
    last = [s[key] for s in samples if s["t_s"] >= end - window]
    if not after or not last:
        return None
    return float(statistics.median(last)) / float(statistics.median(after)) - 1


def warm_up_s(minutes: float) -> float:
    return 60 * min(WARM_UP_MINUTES, minutes / 3)


def targets(data: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    warm = warm_up_s(data["minutes"])
    rows: list[tuple[str, str, bool | None]] = []
    for i in range(2):
        g = growth(data.get("samples", []), f"rss_kib_{i}", warm)
        rows.append(
            (
                f"server {'AB'[i]}: RSS growth after the first {warm / 60:.2g} minutes "
                f"< {MAX_RSS_GROWTH:.0%}",
                "not measured" if g is None else f"{g:+.2%}",
                None if g is None else g < MAX_RSS_GROWTH,
            )
        )
    for key, what in (("lost", "events lost: 0"), ("duplicated", "events duplicated: 0")):
        value = data.get(key)
        rows.append((what, "not measured" if value is None else f"{value:,}", value == 0))
    return rows


def plot(data: dict[str, Any], path: Path) -> None:
    samples = data["samples"]
    minutes = [s["t_s"] / 60 for s in samples]
    figure, (memory, other) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for i in range(2):
        memory.plot(minutes, [s[f"rss_kib_{i}"] / 1024 for s in samples], label=f"server {'AB'[i]}")
    memory.axvline(warm_up_s(data["minutes"]) / 60, color="grey", linestyle=":", label="warm-up")
    memory.set_ylabel("RSS, MiB")
    memory.legend()
    memory.set_title(
        f"Soak: {data['n']:,} subscribers, {data['rate']:g} events/s, reconnects "
        f"{data['reconnect_rate']:.0%}/min"
    )
    other.plot(minutes, [s["redis_bytes"] / 2**20 for s in samples], label="Redis used_memory, MiB")
    for i in range(2):
        other.plot(
            minutes, [s[f"fds_{i}"] / 10 for s in samples], label=f"server {'AB'[i]} fds / 10"
        )
    other.set_xlabel("minutes")
    other.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def section(data: dict[str, Any], command: str, image: str | None) -> list[str]:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [SOAK_HEADING, ""]
    if "error" in data:
        return [*lines, f"Not measured: {data['error']}", ""]
    samples = data["samples"]
    first, last = samples[0], samples[-1]
    lines += [
        f"Written by `{command}` on {when}, in {data['duration_s'] / 60:.1f} minutes "
        f"(`make soak`; `make soak SOAK_MINUTES=3` is the short form, which only prints).",
        "",
        f"{data['n']:,} subscribers on two servers of this library (`sms_site`, uvicorn, "
        f"RedisChannelLayer on a private redis-server, PostgreSQL {data['pg']}), on each half on "
        "the stream protocol and half on graphql-transport-ws, every one resumable (`after`); two "
        f"writer processes save {data['rate']:g} events/s between them for "
        f"{data['minutes']:g} min; each subscriber closes its socket with probability "
        f"{data['reconnect_rate']:.0%} a minute and resumes from its cursor on the other server. "
        f"Sampled every {SAMPLE_EVERY:g} s: each server's RSS and open file descriptors, Redis' "
        "`used_memory`. Every frame checked: per writer, from a subscriber's first event on, "
        "every one once, in order.",
        "",
    ]
    rows = []
    for i in range(2):
        rows.append(
            [
                f"server {'AB'[i]}: RSS, MiB (start / end)",
                f"{first[f'rss_kib_{i}'] / 1024:.1f} / {last[f'rss_kib_{i}'] / 1024:.1f}",
            ]
        )
        rows.append(
            [
                f"server {'AB'[i]}: open file descriptors (start / end)",
                f"{first[f'fds_{i}']} / {last[f'fds_{i}']}",
            ]
        )
    rows += [
        [
            "Redis used_memory, MiB (start / end)",
            f"{first['redis_bytes'] / 2**20:.1f} / {last['redis_bytes'] / 2**20:.1f}",
        ],
        ["events written", f"{data['written']:,}"],
        ["frames received", f"{data['frames']:,}"],
        ["reconnects (each a resume on the other server)", f"{data['reconnects']:,}"],
        ["events lost", f"{data['lost']:,}"],
        ["subscribers that lost an event", f"{data['subs_with_loss']:,}"],
        ["events duplicated or out of order", f"{data['duplicated']:,}"],
        ["tracebacks in the servers' logs", " / ".join(map(str, data["server_errors"]))],
    ]
    lines += table(["figure", "measured"], rows)
    lines += ["", *table(TARGET_HEADERS, [[w, m, verdict(ok)] for w, m, ok in targets(data)])]
    if image:
        # A path, not an image link: the docs site includes this file from another folder.
        lines += ["", f"The plot of RSS, Redis memory and file descriptors: `bench/{image}`."]
    for i, grown in enumerate(data.get("grown") or []):
        lines += ["", f"Server {'AB'[i]}, the lines whose memory grew most (tracemalloc):", ""]
        lines += ["```", *grown, "```"]
    lines += [
        "",
        "Its processes, from the repository root:",
        "",
        "```sh",
        data["server_command"],
        *(f"cd bench/servers && {c}" for c in data["writer_commands"]),
        "```",
        "",
    ]
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--n", type=int, default=1000, help="subscribers")
    parser.add_argument("--rate", type=float, default=20.0, help="events/s, both writers")
    parser.add_argument(
        "--reconnect-rate", type=float, default=0.01, help="reconnects per subscriber a minute"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="handshakes in flight")
    parser.add_argument("--connect-timeout", type=float, default=180.0)
    parser.add_argument("--event-timeout", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="run the servers under tracemalloc and report the lines whose memory grew most "
        "(slower servers: a diagnosis, not a measure)",
    )
    parser.add_argument("--pg", default="127.0.0.1:5432", help="PostgreSQL HOST:PORT")
    parser.add_argument(
        "--results",
        type=Path,
        help="the RESULTS.md whose Soak section to rewrite (default: bench/RESULTS.md for a run "
        "of 30 minutes or more; a shorter one only prints)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    if args.results is None and args.minutes >= 30:
        args.results = results.RESULTS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    restarts.PG = args.pg
    raise_open_files_limit()
    signal.signal(signal.SIGTERM, on_signal)
    say(f"Redis: {services.start_private_redis()}")
    if why := services.redis_available():
        print(f"soak: not measured, {why}", file=sys.stderr)
        return 1
    started = now()
    with workspace() as workdir:
        try:
            data = asyncio.run(soak(args, workdir))
        except RunError as exc:
            print(f"soak: {exc}", file=sys.stderr)
            data = {"error": str(exc)}
        data.update(
            minutes=args.minutes,
            n=args.n,
            rate=args.rate,
            reconnect_rate=args.reconnect_rate,
            pg=f"{args.pg}/{restarts.PG_DB}",
            duration_s=now() - started,
        )
        image_path = PLOT if args.results is not None else workdir / "soak.png"
        image = None
        if data.get("samples"):
            plot(data, image_path)
            image = os.path.relpath(image_path, args.results.parent) if args.results else None
            say(f"soak: the plot is {image_path}")
        if args.json:
            args.json.write_text(json.dumps(data, indent=1))
        command = shlex.join(["python", rel(__file__), *(sys.argv[1:] if argv is None else argv)])
        lines = section(data, command, image)
        print("\n".join(lines))
        if args.results is not None:
            text = args.results.read_text() if args.results.exists() else ""
            args.results.write_text(results.replace_section(text, SOAK_HEADING, lines))
            say(f"soak: the section {SOAK_HEADING!r} of {rel(args.results)} rewritten")
        if args.results is None and data.get("samples"):
            # The workspace goes with this process: keep the plot of a short run beside /tmp.
            kept = Path("/tmp") / f"sms-soak-{int(time.time())}.png"
            kept.write_bytes(image_path.read_bytes())
            say(f"soak: the plot kept as {kept}")
    if "error" in data:
        return 1
    return 0 if all(ok for _, _, ok in targets(data)) else 2


if __name__ == "__main__":
    supervise.run_script(main)
