"""Restarts and storms: N subscribers on one server that is killed (SIGKILL) while another process
keeps saving, restarted, and resumed from by every client; nothing lost, nothing twice, and what
connecting and subscribing cost against the bare app's connects in the same run.

One process (this one) holds every socket (asyncio + the sans-I/O protocol of ``websockets``: the
``Socket`` of ``bench/client.py``) and drives the run; its children are the servers (uvicorn, one
process each, as ``bench/server.py`` starts them) and the writer
(``bench/servers/restart_writer.py``):

1. the bare limit (``bench/servers/bare.py``): ``--bare-rounds`` times, N/2 sockets connected
   (timed), N/2 more with those still open (timed), all closed: the connect time of N/2 sockets
   is the median of those measures, of N the median of their sums;
2. this library (``bench/servers/sms_site``) on ``RedisChannelLayer`` (the history is in Redis)
   and PostgreSQL, whose item the writer, a process of its own, saves at ``--rate`` per second
   (each save its own transaction, ``seq`` = 1, 2, ...; by default 4,000/N, at most 20: see
   ``RATE_FRAMES``) from before the first socket connects until the end; N/2 stream-protocol
   sockets connect and subscribe (``after: ""``, timed), then N/2 graphql-transport-ws sockets
   (``itemChanged(after: "")``, timed); every socket keeps the cursor of the last event it
   received;
3. once every socket received an event and ``--steady`` s more, the server is killed with
   SIGKILL; ``--down`` s later it is started again (on the same Redis, not flushed) and, once its
   ``/health`` answers ("ready"), the stream sockets reconnect and resubscribe with their cursors
   (timed), then the graphql-transport-ws ones (timed): each gets what it missed, then the live
   events;
4. ``--tail`` s later the writer stops (its publisher flushed), every socket is waited for until
   it has the last event, and each socket's sequence of ``seq`` values is checked against what was
   written: from its first event on, every seq once, in order.

64 handshakes in flight at a time (``--concurrency``), as ``bench/client.py``. A stream socket is
subscribed when the answer to its control operation arrived (``ok: true``); a
graphql-transport-ws socket when its ``subscribe`` message was sent (the protocol has no answer to
it). "Resume included": a resumed socket counts as done once it has also received the last event
committed before its subscribe was sent, i.e. its replay.

With ``--profile-dir``, when a target is missed, one more cycle of steps 2-4 runs (its figures
are not the measured ones) with py-spy on the server during each connect and resume phase; the
summaries go in the JSON and the report. A phase that times out leaves ``py-spy dump`` of the
server beside the kept logs.

    python bench/restarts.py                 # N=4,000 (about 1.5 minutes), the table printed
    python bench/restarts.py --quick         # N=200, 20 events/s
    python bench/restarts.py --n 1000 --json /tmp/restarts.json --profile-dir auto

``make bench`` runs it (``bench/run.py``: its table goes to bench/RESULTS.md, "Restarts and
storms"; ``--restarts-only`` runs only it, ``--no-restarts`` leaves it out).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import profile_summary
import restarts_report
import services
import supervise
from client import Profiler, RunError, Socket, raise_open_files_limit
from contenders import BY_NAME, Contender
from server import SERVERS, Server
from supervise import forget, on_signal, rel, spawn, stop, workspace
from websockets.protocol import State
from websockets.uri import parse_uri

#: One clock for this process and the writer's: CLOCK_MONOTONIC, the same in every process.
now = time.monotonic

PG = "127.0.0.1:5432"
PG_DB = "sms_bench_restarts"

#: This library's server of the run: the stream protocol and the typed subscriptions on one
#: ``GraphQLWSConsumer``, RedisChannelLayer.
SMS = Contender(
    "sms-restarts",
    "this library on RedisChannelLayer and PostgreSQL, both protocols on one server",
    "ours",
    "sms_site.asgi:application",
    "stream",
    "sms_site.settings",
    layer="redis",
)

#: The stream protocol's control operation, resumable: ``after`` is "" the first time, then the
#: cursor of the last frame received.
STREAM_SUBSCRIBE = (
    "subscription ($c: String!, $a: String) { itemSubscription(operation: SUBSCRIBE,"
    " action: UPDATE, channelId: $c, data: [ID, NAME, SEQ], after: $a) { ok error } }"
)
#: The typed subscription, resumable the same way.
TYPED_SUBSCRIBE = (
    "subscription ($a: String) { itemChanged(action: UPDATE, after: $a)"
    " { cursor data { id name seq } } }"
)
#: The writer's default rate is this many frames a second over the N subscribers (at most 20
#: events/s): a resumed socket's replay costs the server in proportion to the events it missed,
#: which grow while the storm lasts, so the storm's length grows as exp(N x rate x the cost of
#: one replayed event); at 20 events/s and N=1,000 it did not end within 180 s.
RATE_FRAMES = 4000.0
CURSOR_KEY = b'"cursor":'


def say(message: str) -> None:
    """A progress line, on stderr: bench/run.py shows this process's stderr, not its stdout."""
    with contextlib.redirect_stdout(sys.stderr):
        supervise.say(message)


# -- one subscriber, across its connections ---------------------------------------------------


@dataclass(eq=False)
class Sub:
    """One client: what it received over all its connections, and the cursor it resumes from."""

    #: "bare", "stream" or "gtws" (graphql-transport-ws); ``index`` is unique in the run.
    kind: str
    index: int
    #: Every seq received, in arrival order (duplicates included).
    seqs: list[int] = field(default_factory=list)
    #: The first receipt time of each seq.
    arrived: dict[int, float] = field(default_factory=dict)
    #: The cursor of the last event received ("" before the first: "from now on").
    cursor: str = ""
    #: When the current connection's subscribe was sent, and when it counted as subscribed.
    requested_at: float = 0.0
    subscribed_at: float = 0.0
    #: The current connection (None before the first and after it closed).
    conn: Conn | None = None
    #: Why a subscribe failed (a CURSOR_* error, a refused handshake), if one did.
    error: str = ""

    def record(self, seq: int, cursor: str | None, at: float) -> None:
        self.seqs.append(seq)
        self.arrived.setdefault(seq, at)
        if cursor:
            self.cursor = cursor


class Conn(Socket):
    """One websocket of a :class:`Sub`: the handshake, its kind's subscribe exchange (with the
    sub's cursor), then frames to :meth:`Sub.record`."""

    clock = staticmethod(now)

    def __init__(self, sub: Sub, uri: Any) -> None:
        super().__init__(uri, "graphql-transport-ws" if sub.kind == "gtws" else None)
        self.sub = sub
        #: How far the exchange got: connecting, open, requested (subscribe sent), subscribed.
        self.stage = "connecting"

    @property
    def label(self) -> str:
        return f"{self.sub.kind} socket {self.sub.index}"

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.sub.conn is self:
            self.sub.conn = None

    # plumbing

    def send_json(self, message: dict[str, Any]) -> None:
        if self.ws.state is not State.OPEN:
            # The server's close frame came in the same read as the message answered here.
            self.fail(f"closed by the server ({self.close_info()})")
            return
        super().send_json(message)

    def close_info(self) -> str:
        close = self.ws.close_rcvd
        return f"close code {close.code} {close.reason!r}" if close else "no close frame"

    def fail(self, reason: str) -> None:
        self.sub.error = reason
        super().fail(reason)

    def done_subscribing(self) -> None:
        self.stage = "subscribed"
        self.sub.subscribed_at = now()
        if not self.subscribed.done():
            self.subscribed.set_result(None)

    # the exchange

    def on_open(self) -> None:
        self.stage = "open"
        kind = self.sub.kind
        if kind == "bare":
            self.done_subscribing()
        elif kind == "gtws":
            self.send_json({"type": "connection_init", "payload": {}})
        # stream: waits for the connect frame

    def on_seq(self, seq: int, payload: bytes, at: float) -> None:
        cursor = None
        c = payload.find(CURSOR_KEY)
        if c >= 0:
            start = payload.index(b'"', c + len(CURSOR_KEY)) + 1
            cursor = payload[start : payload.index(b'"', start)].decode()
        self.sub.record(seq, cursor, at)

    def on_control(self, message: Any) -> None:
        sub = self.sub
        if sub.kind == "stream":
            if "channel_id" in message:
                sub.requested_at = now()
                self.stage = "requested"
                variables = {"c": message["channel_id"], "a": sub.cursor}
                self.send_json({"query": STREAM_SUBSCRIBE, "variables": variables})
            elif "data" in message or "errors" in message:
                result = (message.get("data") or {}).get("itemSubscription") or {}
                if result.get("ok"):
                    self.done_subscribing()
                else:
                    self.fail(f"subscribe failed: {message}")
        elif sub.kind == "gtws":
            kind_of = message.get("type")
            if kind_of == "connection_ack":
                sub.requested_at = now()
                payload = {"query": TYPED_SUBSCRIBE, "variables": {"a": sub.cursor}}
                self.send_json({"id": "1", "type": "subscribe", "payload": payload})
                self.done_subscribing()
            elif kind_of == "ping":
                self.send_json({"type": "pong"})
            elif kind_of in ("error", "complete") or (kind_of == "next" and "errors" in message):
                self.fail(f"subscription ended: {message}")


# -- many sockets -----------------------------------------------------------------------------


async def open_all(
    subs: Sequence[Sub], port: int, concurrency: int, timeout: float, host: str = "127.0.0.1"
) -> float:
    """Connect and subscribe every sub (``concurrency`` handshakes in flight), each from its
    cursor; the seconds it took."""
    loop = asyncio.get_running_loop()
    uri = parse_uri(f"ws://{host}:{port}/ws")
    semaphore = asyncio.Semaphore(concurrency)

    async def connect(sub: Sub) -> None:
        async with semaphore:
            conn = Conn(sub, uri)
            sub.conn = conn
            await loop.create_connection(lambda: conn, host, port)
            await conn.subscribed

    started = now()
    try:
        await asyncio.wait_for(asyncio.gather(*(connect(s) for s in subs)), timeout)
    except TimeoutError:
        stages = Counter(s.conn.stage if s.conn is not None else "not started" for s in subs)
        raise RunError(
            f"timeout: {stages['subscribed']} of {len(subs)} sockets subscribed in "
            f"{timeout:.0f} s ({', '.join(f'{k}: {v}' for k, v in sorted(stages.items()))})"
        ) from None
    return now() - started


async def wait_closed(subs: Iterable[Sub], timeout: float) -> int:
    """Wait (bounded) until every sub's connection closed; how many did not."""
    pending = [s.conn.closed for s in subs if s.conn is not None and not s.conn.closed.done()]
    if not pending:
        return 0
    _, still = await asyncio.wait(pending, timeout=timeout)
    return len(still)


async def close_all(subs: Sequence[Sub], timeout: float = 15.0) -> None:
    for sub in subs:
        if sub.conn is not None:
            sub.conn.close()
    if await wait_closed(subs, timeout):
        for sub in subs:
            if sub.conn is not None and sub.conn.transport is not None:
                sub.conn.transport.abort()
    await asyncio.sleep(0.25)


async def wait_until(subs: Sequence[Sub], seq: int, timeout: float) -> int:
    """Wait (bounded) until every sub has received ``seq``; how many have not."""
    deadline = now() + timeout
    while True:
        missing = sum(1 for s in subs if seq not in s.arrived)
        if not missing or now() > deadline:
            return missing
        await asyncio.sleep(0.01)


# -- the writer -------------------------------------------------------------------------------


class Writer:
    """``bench/servers/restart_writer.py`` in a process of its own; its commits, as it reports
    them (seq and commit time), collected by a thread."""

    def __init__(self, env: dict[str, str], rate: float, log: Path) -> None:
        self.command = [sys.executable, "restart_writer.py", "--rate", f"{rate:g}"]
        self.env = env
        self.log = log
        self.commits: list[tuple[int, float]] = []
        #: Saves the database refused (each tried again): seq and time.
        self.failures: list[tuple[int, float]] = []
        self.flushed: tuple[int, bool] | None = None
        self.ready = threading.Event()
        self.done = threading.Event()
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("w") as log:
            self.process = spawn(
                self.command,
                cwd=SERVERS,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
            )
        threading.Thread(target=self._read, name="writer stdout", daemon=True).start()
        if not self.ready.wait(timeout):
            raise RunError(f"the writer did not start in {timeout:.0f} s: {self.log_text()}")

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            parts = line.split()
            if parts == ["ready"]:
                self.ready.set()
            elif parts and parts[0] == "flushed":
                self.flushed = (int(parts[1]), parts[2] == "1")
            elif parts and parts[0] == "failed":
                self.failures.append((int(parts[1]), float(parts[2])))
            elif len(parts) == 2:
                self.commits.append((int(parts[0]), float(parts[1])))
        self.ready.set()
        self.done.set()

    def last_before(self, at: float) -> int:
        """The last seq committed at or before ``at`` (0: none)."""
        last = 0
        for seq, t in self.commits:
            if t > at:
                break
            last = seq
        return last

    def stop(self, timeout: float = 90.0) -> tuple[int, bool]:
        """Stop the saves, wait for the publisher's flush: the last seq, and whether it flushed."""
        assert self.process is not None
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.write("stop\n")
            self.process.stdin.flush()
        if not self.done.wait(timeout):
            stop(self.process)
        try:
            self.process.wait(10)
        finally:
            forget(self.process)
        if self.flushed is None:
            raise RunError(f"the writer did not flush: {self.log_text()}")
        return self.flushed

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


# -- the run ----------------------------------------------------------------------------------


def env_of(server: Server) -> dict[str, str]:
    """The sms server's environment (also the writer's): its settings, Redis and PostgreSQL."""
    return {**server.env(None), "BENCH_PG": PG, "BENCH_PG_DB": PG_DB}


def prepare_database(server: Server) -> None:
    """Drop and create the run's PostgreSQL database, migrate it and create the item."""
    from write_path import reset_database

    reset_database(PG, PG_DB)
    subprocess.run(
        [sys.executable, "prepare_db.py"],
        cwd=SERVERS,
        env=env_of(server),
        check=True,
        capture_output=True,
    )


def sigkill(server: Server) -> None:
    """SIGKILL the server (its own session: nothing else is signalled) and reap it."""
    process = server.process
    assert process is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    forget(process)


def dump_stacks(server: Server, path: Path) -> None:
    """``py-spy dump`` of the server (every thread's stack, with locals) into ``path``: where a
    phase that timed out is stuck (kept with the logs)."""
    if server.process is None or server.process.poll() is not None:
        return
    py_spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    with contextlib.suppress(OSError, subprocess.SubprocessError), path.open("w") as out:
        subprocess.run(
            [py_spy, "dump", "--pid", str(server.process.pid), "--locals"],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=30,
        )
    say(f"the server's stacks: {path}")


async def start_server(server: Server, label: str, flush_redis: bool) -> float:
    """Start ``server`` (off the loop: it waits for ``/health``), this library's on PostgreSQL;
    the seconds until it answered."""
    extra = {"BENCH_PG": PG, "BENCH_PG_DB": PG_DB} if server.contender.settings else None
    started = now()
    await asyncio.to_thread(server.start, label, extra, flush_redis)
    return now() - started


async def measure_bare(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The bare app's connect times of N/2 sockets (twice per round, the second half with the
    first still open) and of N (their sums)."""
    half = args.n // 2
    server = Server(BY_NAME["bare"], sys.executable, workdir, None)
    halves: list[float] = []
    totals: list[float] = []
    try:
        await start_server(server, "bare", flush_redis=False)
        warm = [Sub("bare", i) for i in range(10)]
        await open_all(warm, server.port, args.concurrency, args.connect_timeout)
        await close_all(warm)
        for _ in range(args.bare_rounds):
            a = [Sub("bare", i) for i in range(half)]
            b = [Sub("bare", half + i) for i in range(half)]
            gc.collect()
            t_a = await open_all(a, server.port, args.concurrency, args.connect_timeout)
            t_b = await open_all(b, server.port, args.concurrency, args.connect_timeout)
            halves += [t_a, t_b]
            totals.append(t_a + t_b)
            await close_all([*a, *b])
    finally:
        server.stop()
    say(f"bare: {half:,} sockets connect in {statistics.median(halves):.2f} s (median)")
    return {
        "half_s": statistics.median(halves),
        "all_s": statistics.median(totals),
        "halves_s": halves,
        "command": server.command,
    }


def resumed_within(subs: Sequence[Sub], writer: Writer, started: float) -> float:
    """Seconds from ``started`` until the last of ``subs`` was subscribed and had received the
    last event committed before its subscribe was sent (its replay)."""
    latest = started
    for sub in subs:
        target = writer.last_before(sub.requested_at)
        at = sub.arrived.get(target, sub.subscribed_at) if target else sub.subscribed_at
        latest = max(latest, at, sub.subscribed_at)
    return latest - started


def replay_times(subs: Sequence[Sub], writer: Writer) -> list[float]:
    """For each resumed sub that missed events: seconds from its being subscribed until it had
    received the last event committed before its subscribe was sent (its replay)."""
    times = []
    for sub in subs:
        target = writer.last_before(sub.requested_at)
        if target and target in sub.arrived:
            times.append(max(0.0, sub.arrived[target] - sub.subscribed_at))
    return sorted(times)


def replayed(subs: Sequence[Sub], writer: Writer, before_kill: int) -> int:
    """Frames the resumed subs received of events committed after the kill and before their
    subscribe was sent: what they missed while away (an upper bound of the replay: the server
    may have received some of them live already)."""
    total = 0
    for sub in subs:
        missed = writer.last_before(sub.requested_at)
        total += sum(1 for k in sub.seqs if before_kill < k <= missed)
    return total


def replayed_by(subs: Sequence[Sub], writer: Writer, before_kill: int) -> dict[str, int]:
    """:func:`replayed`, by kind."""
    kinds = sorted({s.kind for s in subs})
    return {
        kind: replayed([s for s in subs if s.kind == kind], writer, before_kill) for kind in kinds
    }


def check(subs: Sequence[Sub], last: int) -> dict[str, Any]:
    """Each sub's seqs against what was written: from its first event through ``last``, every
    seq once, in order."""
    lost = duplicated = out_of_order = late = clients_lost = 0
    for sub in subs:
        seqs = sub.seqs
        if not seqs:
            lost += last
            clients_lost += 1
            continue
        got = set(seqs)
        missing = sum(1 for k in range(seqs[0], last + 1) if k not in got)
        lost += missing
        clients_lost += bool(missing)
        duplicated += len(seqs) - len(got)
        out_of_order += sum(1 for x, y in itertools.pairwise(seqs) if y < x)
        late += sum(1 for k in got if k > last)
    return {
        "lost": lost,
        "clients_with_loss": clients_lost,
        "duplicated": duplicated,
        "out_of_order": out_of_order,
        "beyond_last": late,
        "frames": sum(len(s.seqs) for s in subs),
    }


async def cycle(
    args: argparse.Namespace, workdir: Path, label: str, profile_dir: Path | None
) -> dict[str, Any]:
    """Steps 2-4 of the module's docstring on a fresh server, database and Redis history; with
    ``profile_dir``, py-spy on the server during each connect and resume phase."""
    half = args.n // 2
    server = Server(SMS, sys.executable, workdir, None)
    prepare_database(server)
    result: dict[str, Any] = {}
    stream = [Sub("stream", i) for i in range(half)]
    typed = [Sub("gtws", half + i) for i in range(half)]
    subs = [*stream, *typed]
    writer = Writer(env_of(server), args.rate, workdir / f"{label}-writer.log")
    profiler: Profiler | None = None

    async def timed(phase: str, group: Sequence[Sub]) -> float:
        if profile_dir is not None and profiler is not None:
            await profiler.start(phase)
        try:
            return await open_all(group, server.port, args.concurrency, args.connect_timeout)
        except RunError:
            dump_stacks(server, workdir / f"{label}-{phase}-stacks.txt")
            raise
        finally:
            if profiler is not None:
                await profiler.stop()

    try:
        result["start_s"] = await start_server(server, f"{label}-sms", flush_redis=True)
        result["server_command"] = server.command
        assert server.process is not None
        if profile_dir is not None:
            profiler = Profiler(str(profile_dir), server.process.pid)
        writer.start()
        python_from_servers = os.path.relpath(sys.executable, SERVERS)  # noqa: ASYNC240
        result["writer_command"] = "cd bench/servers && " + shlex.join(
            [
                *(f"{k}={v}" for k, v in sorted(writer.env.items()) if k.startswith("BENCH_")),
                "DJANGO_SETTINGS_MODULE=sms_site.settings",
                python_from_servers,
                *writer.command[1:],
            ]
        )
        # A warm-up: lazy imports and caches are paid before anything is timed.
        warm = [Sub("stream", -1 - i) for i in range(5)] + [Sub("gtws", -6 - i) for i in range(5)]
        await open_all(warm, server.port, args.concurrency, args.connect_timeout)
        await asyncio.sleep(2.5 / args.rate)
        await close_all(warm)
        gc.collect()

        started = now()
        result["stream_connect_s"] = await timed("stream-connect", stream)
        result["gtws_connect_s"] = await timed("gtws-connect", typed)
        say(
            f"{label}: {half:,} stream sockets subscribed in {result['stream_connect_s']:.2f} s, "
            f"{half:,} graphql-transport-ws in {result['gtws_connect_s']:.2f} s"
        )
        # Every socket has an event (and so a cursor) before the server is killed.
        first = writer.last_before(now()) + 1
        if missing := await wait_until(subs, first, args.event_timeout):
            raise RunError(f"timeout: {missing} sockets did not get event {first}")
        await asyncio.sleep(args.steady)
        result["frames_before_kill"] = sum(len(s.seqs) for s in subs)

        killed = now()
        last_seen_before_kill = writer.last_before(killed)
        sigkill(server)
        if still := await wait_closed(subs, 30.0):
            raise RunError(f"{still} sockets still open 30 s after the server was killed")
        result["closed_s"] = now() - killed
        await asyncio.sleep(max(0.0, args.down - (now() - killed)))
        result["restart_s"] = await start_server(server, f"{label}-sms-restarted", False)
        ready = now()
        result["down_s"] = ready - killed
        result["written_while_down"] = writer.last_before(ready) - last_seen_before_kill
        say(
            f"{label}: server killed, restarted {result['down_s']:.1f} s later "
            f"({result['written_while_down']} events written meanwhile)"
        )
        if profile_dir is not None:
            assert server.process is not None
            profiler = Profiler(str(profile_dir), server.process.pid)
        result["stream_resume_connect_s"] = await timed("stream-resume", stream)
        stream_done = now()
        result["gtws_resume_connect_s"] = await timed("gtws-resume", typed)
        storm_done = now()
        result["stream_resume_s"] = resumed_within(stream, writer, ready)
        # The typed half started once the stream half was subscribed.
        result["gtws_resume_s"] = resumed_within(typed, writer, stream_done)
        for name, group in (("stream", stream), ("gtws", typed)):
            times = replay_times(group, writer)
            if times:
                result[f"{name}_replay_p50_s"] = times[len(times) // 2]
                result[f"{name}_replay_max_s"] = times[-1]
        target = writer.last_before(storm_done)
        if missing := await wait_until(subs, target, args.event_timeout):
            raise RunError(f"timeout: {missing} sockets did not catch up to event {target}")
        caught_up = max(s.arrived[target] for s in subs)
        result.update(
            catch_up_target=target,
            catch_up_s=caught_up - ready,
            replayed=replayed(subs, writer, last_seen_before_kill),
            replayed_by_kind=replayed_by(subs, writer, last_seen_before_kill),
        )
        say(
            f"{label}: resumed (stream {result['stream_resume_s']:.2f} s, graphql-transport-ws "
            f"{result['gtws_resume_s']:.2f} s), every socket caught up to event {target} "
            f"{result['catch_up_s']:.2f} s after the restart"
        )

        await asyncio.sleep(args.tail)
        last, flushed = await asyncio.to_thread(writer.stop)
        if not flushed:
            raise RunError("the writer's flush_events() timed out")
        missing = await wait_until(subs, last, args.event_timeout)
        await asyncio.sleep(0.5)  # late duplicates
        result.update(
            written=last,
            not_at_last=missing,
            duration_s=now() - started,
            errors=sorted({s.error for s in subs if s.error})[:5],
            stream=check(stream, last),
            gtws=check(typed, last),
        )
        await close_all(subs)
    finally:
        if writer.process is not None and writer.process.poll() is None:
            stop(writer.process)
        server.stop()
    result["server_errors"], result["server_log"] = server.errors()
    return result


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    with workspace() as workdir:
        say(f"restarts: N={args.n:,} ({args.n // 2:,} per protocol), {args.rate:g} events/s")
        data: dict[str, Any] = {
            "n": args.n,
            "rate": args.rate,
            "concurrency": args.concurrency,
            "down": args.down,
            "steady": args.steady,
            "tail": args.tail,
            "bare_rounds": args.bare_rounds,
            "redis": f"{services.REDIS[0]}:{services.REDIS[1]}",
            "pg": f"{PG}/{PG_DB}",
        }
        data["bare"] = await measure_bare(args, workdir)
        data["sms"] = await cycle(args, workdir, "measured", None)
        if args.profile_dir and restarts_report.missed(data):
            directory = Path(args.profile_dir)
            if args.profile_dir == "auto":
                directory = workdir / "profile"
            directory.mkdir(parents=True, exist_ok=True)
            say("restarts: a target missed, one more cycle under py-spy ...")
            try:
                profiled = await cycle(args, workdir, "profiled", directory)
            except RunError as exc:
                # The measured figures stand; the profiles of the phases that ran are kept.
                say(f"restarts: the profiled cycle failed: {exc}")
                profiled = {"error": str(exc)}
            data["profile"] = {"figures": profiled, "phases": {}}
            for phase in ("stream-connect", "gtws-connect", "stream-resume", "gtws-resume"):
                path = directory / f"{phase}.txt"
                if path.exists():
                    profile = profile_summary.read(path)
                    data["profile"]["phases"][phase] = summary_of(profile)
    return data


def summary_of(profile: profile_summary.Profile, top: int = 12) -> dict[str, Any]:
    """A py-spy profile's top packages and functions (self time), and the top functions of this
    library by inclusive time, as shares of the busy samples."""
    total = profile.total or 1

    def share(count: int) -> float:
        return round(100 * count / total, 1)

    ours = [
        (name, count)
        for name, count in profile.inclusive.most_common()
        if "strawberry_model_subs/" in name
    ]
    return {
        "samples": profile.total,
        "packages": [[name, share(c)] for name, c in profile.packages.most_common(8)],
        "functions": [[name, share(c)] for name, c in profile.self_time.most_common(top)],
        "library_inclusive": [[name, share(c)] for name, c in ours[:top]],
        "inclusive": [
            [name, share(c)]
            for name, c in profile.inclusive.most_common()
            if profile_summary.FRAME.match(name) and not name.startswith(("process ", "thread "))
        ][:top],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, help="subscribers, half of each protocol (4000)")
    parser.add_argument(
        "--rate",
        type=float,
        help="the writer's saves per second (default: 4,000/N, at most 20: 4,000 live frames/s)",
    )
    parser.add_argument("--quick", action="store_true", help="N=200, a shorter run")
    parser.add_argument("--concurrency", type=int, default=64, help="handshakes in flight")
    parser.add_argument("--down", type=float, default=2.0, help="seconds the server is dead")
    parser.add_argument(
        "--steady", type=float, default=1.0, help="seconds of events before the kill"
    )
    parser.add_argument(
        "--tail", type=float, default=1.0, help="seconds of events after the catch-up"
    )
    parser.add_argument("--bare-rounds", type=int, default=3)
    parser.add_argument("--connect-timeout", type=float, default=180.0)
    parser.add_argument("--event-timeout", type=float, default=120.0)
    parser.add_argument(
        "--redis", help="HOST:PORT of the Redis to use (default: a private redis-server)"
    )
    parser.add_argument("--pg", default=PG, help="HOST:PORT of PostgreSQL (user postgres)")
    parser.add_argument(
        "--profile-dir",
        help="when a target is missed, one more cycle under py-spy, its profiles in DIR "
        "('auto': a temporary folder)",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.n is None:
        args.n = 200 if args.quick else 4000
    if args.n < 2 or args.n % 2:
        parser.error("--n must be even: half the sockets of each protocol")
    if args.rate is None:
        args.rate = min(20.0, RATE_FRAMES / args.n)
    if args.quick:
        args.bare_rounds = min(args.bare_rounds, 2)
        args.steady = min(args.steady, 0.5)
        args.tail = min(args.tail, 0.5)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    global PG
    PG = args.pg
    raise_open_files_limit()
    signal.signal(signal.SIGTERM, on_signal)
    if args.redis:
        host, _, port = args.redis.rpartition(":")
        services.REDIS[:] = [host, int(port)]
    else:
        say(f"Redis: {services.start_private_redis()}")
    if why := services.redis_available():
        print(f"restarts: not measured, {why}", file=sys.stderr)
        return 1
    started = now()
    try:
        data = asyncio.run(measure(args))
    except RunError as exc:
        print(f"restarts: {exc}", file=sys.stderr)
        data = {"n": args.n, "error": str(exc)}
    data["duration_s"] = now() - started
    data["argv"] = sys.argv[1:] if argv is None else argv
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))
    command = shlex.join(["python", rel(__file__), *data["argv"]])
    print("\n".join(restarts_report.section(data, command)))
    return 0 if "error" not in data else 1


if __name__ == "__main__":
    supervise.run_script(main)
