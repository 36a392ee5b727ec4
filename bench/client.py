"""The benchmark's load client: every subscriber of one server run, in this one process.

asyncio with the sans-I/O protocol of ``websockets`` (``websockets.client.ClientProtocol``) under
one ``asyncio.Protocol`` per socket: no task per socket, so the client costs little per frame and
the server is what gets measured. Every event is one HTTP POST ``/trigger?seq=N`` to the server;
every frame carries ``"seq": N``, which is all the client reads of it.

Phases, in order, on one server process (``--pid`` is read in ``/proc`` for CPU and RSS):

1. warm-up: a few subscribers, one event, closed again (lazy imports and caches are paid here);
2. RSS before, N subscribers connected and subscribed, one barrier event all of them received,
   RSS after: the idle memory per subscriber; with ``--leak-cycles C``, C times more all N are
   closed and reconnected, and the RSS is read again (a leak shows as a higher figure);
3. events one at a time (each waits for every delivery): latency from just before the POST is
   written to the last subscriber's receipt; server CPU over these events, less the idle CPU of
   an equally long quiet interval; Redis ``INFO commandstats`` deltas with ``--redis``;
4. ``--sustained-seconds``: events at ``--rate`` per second without waiting for deliveries;
5. ``--rate-steps``: events at each of these rates in turn for ``--step-seconds`` each (not
   waiting for deliveries), up to the first whose p99 passes ``--step-p99-ms`` or that loses a
   frame: the highest sustained rate;
6. ``--stall-seconds``: padded events at ``--rate``, first with every subscriber reading, then
   with ``--stall-fraction`` of them no longer reading (sockets with a small receive buffer,
   paused): the latency of the readers in both.

Prints one JSON object (the figures) on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

perf = time.perf_counter
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SEQ_KEY = b'"seq":'
#: Seconds to let the server settle between steps (``--pause``).
PAUSE = [0.25]

#: Subscriber kinds: what a socket says after the handshake to get the events.
KINDS = ("bare", "plain", "stream", "gtws", "dcrf", "graphql-ws")
SUBPROTOCOLS = {"gtws": "graphql-transport-ws", "graphql-ws": "graphql-ws"}

STREAM_SUBSCRIBE = (
    "subscription ($c: String!) { itemSubscription(operation: SUBSCRIBE, action: UPDATE,"
    " channelId: $c, data: [ID, NAME, SEQ]) { ok error } }"
)


class RunError(Exception):
    """The run cannot go on (a socket failed to subscribe, a phase timed out)."""


def log(message: str) -> None:
    print(f"    [client] {message}", file=sys.stderr, flush=True)


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# -- the server process, read from /proc -----------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread, live or ended), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def settle(pid: int, limit: float = 10.0) -> None:
    """Wait (at most ``limit`` seconds) until the server has used at most one clock tick of CPU
    in 0.3 s: the work a phase caused is then over, and its CPU can be read."""
    deadline = perf() + limit
    last = cpu_seconds(pid)
    while perf() < deadline:
        await asyncio.sleep(0.3)
        now = cpu_seconds(pid)
        if now - last <= 1.5 / CLOCK_TICKS:
            return
        last = now


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RunError(f"no VmRSS in /proc/{pid}/status")


# -- py-spy ----------------------------------------------------------------------------------


class Profiler:
    """``py-spy record`` on the server for one phase (``--profile-dir``); SIGINT writes it."""

    def __init__(self, directory: str | None, pid: int) -> None:
        self.directory = directory
        self.pid = pid
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, phase: str) -> None:
        if self.directory is None:
            return
        py_spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
        output = os.path.join(self.directory, f"{phase}.txt")
        self.process = await asyncio.create_subprocess_exec(
            py_spy,
            "record",
            "--pid",
            str(self.pid),
            "--rate",
            "250",
            "--format",
            "raw",
            "--function",
            # Only the thread holding the GIL: Python CPU, not threads waiting on a lock.
            "--gil",
            "--output",
            output,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await asyncio.sleep(1.0)  # py-spy attaches

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 10.0)
        except TimeoutError:
            process.kill()
            await process.wait()


# -- Redis INFO commandstats ------------------------------------------------------------------


async def redis_commandstats(host: str, port: int) -> dict[str, int]:
    """Calls per command since the server started (``INFO commandstats``), INFO itself left out."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"INFO commandstats\r\n")
        header = await reader.readline()
        if not header.startswith(b"$"):
            raise RunError(f"unexpected Redis reply {header!r}")
        body = await reader.readexactly(int(header[1:]) + 2)
    finally:
        writer.close()
    calls: dict[str, int] = {}
    for line in body.decode().splitlines():
        if line.startswith("cmdstat_"):
            name, _, stats = line[len("cmdstat_") :].partition(":")
            if name != "info":
                calls[name] = int(dict(kv.split("=") for kv in stats.split(","))["calls"])
    return calls


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


# -- events -----------------------------------------------------------------------------------


@dataclass(eq=False)
class EventStat:
    seq: int
    phase: str
    expected: int
    done: asyncio.Future[None]
    t0: float = 0.0
    count: int = 0
    last: float = 0.0

    @property
    def latency(self) -> float:
        return self.last - self.t0


@dataclass
class PhaseCounts:
    duplicates: int = 0
    order_violations: int = 0


# -- one websocket ----------------------------------------------------------------------------


def seq_at(payload: bytes, i: int) -> int:
    """The integer after the ``"seq":`` that starts at ``payload[i]`` (spaces skipped)."""
    j = i + len(SEQ_KEY)
    while payload[j] == 32:  # a space
        j += 1
    k = j + 1
    n = len(payload)
    while k < n and 48 <= payload[k] <= 57:
        k += 1
    return int(payload[j:k])


class Socket(asyncio.Protocol):
    """One websocket on the sans-I/O protocol of ``websockets``: the handshake, then each whole
    message to :meth:`on_message` with its receipt time (:attr:`clock`). Subclasses say what a
    socket does once open (:meth:`on_open`), with a message carrying a ``"seq"``
    (:meth:`on_seq`) and with any other (:meth:`on_control`); also ``bench/restarts.py``'s."""

    #: The clock of the receipt times.
    clock: Callable[[], float] = staticmethod(perf)

    def __init__(self, uri: Any, subprotocol: str | None) -> None:
        self.ws = ClientProtocol(
            uri,
            subprotocols=[Subprotocol(subprotocol)] if subprotocol else None,
            max_size=None,
        )
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.subscribed: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.fragments: list[bytes] = []

    @property
    def label(self) -> str:
        """The socket, as error messages name it."""
        raise NotImplementedError

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.ws.send_request(self.ws.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        now = self.clock()
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Frame):
                if event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                    if not event.fin:
                        self.fragments.append(bytes(event.data))
                        continue
                    payload = bytes(event.data)
                    if self.fragments:
                        payload = b"".join(self.fragments) + payload
                        self.fragments = []
                    self.on_message(payload, now)
            elif isinstance(event, Response):
                if ws.state is State.OPEN:
                    self.on_open()
                else:
                    self.fail(f"handshake refused: HTTP {event.status_code}")
        self.flush()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self.flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(
                RunError(f"{self.label} closed before subscribing ({self.close_info()})")
            )
        if not self.closed.done():
            self.closed.set_result(None)

    # websocket plumbing

    def flush(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
        if self.ws.state is State.CLOSED:
            transport.close()

    def send_json(self, message: dict[str, Any]) -> None:
        if self.ws.state is not State.OPEN:
            return  # closing: a server ping that crossed the close needs no pong
        self.ws.send_text(json.dumps(message).encode())
        self.flush()

    def close_info(self) -> str:
        code = self.ws.close_rcvd.code if self.ws.close_rcvd else None
        return f"close code {code}" if code is not None else "no close frame"

    def fail(self, reason: str) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(RunError(f"{self.label}: {reason}"))
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Start the closing handshake (the server closes the TCP connection)."""
        if self.transport is None or self.closed.done():
            return
        self.transport.resume_reading()
        if self.ws.state is State.OPEN:
            self.ws.send_close(1000)
            self.flush()
        else:
            self.transport.close()

    # the exchange

    def on_open(self) -> None:
        raise NotImplementedError

    def on_message(self, payload: bytes, now: float) -> None:
        i = payload.find(SEQ_KEY)
        if i < 0:
            self.on_control(json.loads(payload))
        else:
            self.on_seq(seq_at(payload, i), payload, now)

    def on_seq(self, seq: int, payload: bytes, now: float) -> None:
        raise NotImplementedError

    def on_control(self, message: Any) -> None:
        raise NotImplementedError


# -- one subscriber ---------------------------------------------------------------------------


class Subscriber(Socket):
    """One websocket of the client: the kind's subscribe exchange, then frames to ``record``."""

    def __init__(self, client: Client, index: int, small_buffer: bool) -> None:
        super().__init__(client.uri, SUBPROTOCOLS.get(client.kind))
        self.client = client
        self.index = index
        self.small_buffer = small_buffer
        self.last_seq = 0
        self.seen: set[int] = set()
        #: False while this socket is one of the stalled ones: its receipts are not counted.
        self.counting = True

    @property
    def label(self) -> str:
        return f"socket {self.index}"

    # the subscribe exchange of each kind

    def on_open(self) -> None:
        kind = self.client.kind
        if kind in ("bare", "plain"):
            self.subscribed.set_result(None)
        elif kind in ("gtws", "graphql-ws"):
            self.send_json({"type": "connection_init", "payload": {}})
        elif kind == "dcrf":
            self.send_json({"action": "subscribe_to_item_activity", "request_id": self.index})
            self.subscribed.set_result(None)
        # stream: waits for the connect frame

    def on_seq(self, seq: int, payload: bytes, now: float) -> None:
        self.client.record(self, seq, now)

    def on_control(self, message: Any) -> None:
        kind = self.client.kind
        if kind == "stream":
            if "channel_id" in message:
                self.send_json(
                    {"query": STREAM_SUBSCRIBE, "variables": {"c": message["channel_id"]}}
                )
            elif "data" in message or "errors" in message:
                result = (message.get("data") or {}).get("itemSubscription") or {}
                if result.get("ok"):
                    self.subscribed.set_result(None)
                else:
                    self.fail(f"subscribe failed: {message}")
        elif kind == "gtws":
            kind_of = message.get("type")
            if kind_of == "connection_ack":
                self.send_json(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": self.client.document(self.index)},
                    }
                )
                self.subscribed.set_result(None)
            elif kind_of == "ping":
                self.send_json({"type": "pong"})
            elif kind_of in ("error", "complete"):
                self.fail(f"subscription ended: {message}")
        elif kind == "graphql-ws":
            kind_of = message.get("type")
            if kind_of == "connection_ack":
                self.send_json(
                    {
                        "id": "1",
                        "type": "start",
                        "payload": {"query": self.client.document(self.index)},
                    }
                )
                self.subscribed.set_result(None)
            elif kind_of in ("error", "connection_error", "complete"):
                self.fail(f"subscription ended: {message}")
        elif kind == "dcrf" and message.get("errors"):
            self.fail(f"subscribe failed: {message}")


# -- the trigger ------------------------------------------------------------------------------


class Trigger:
    """``POST /trigger`` over one keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, stat: EventStat | None = None) -> None:
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            if stat is not None:
                stat.t0 = perf()
            self.writer.write(request)
            try:
                status, body = await self._response(self.reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
                continue
            if status != 200:
                raise RunError(f"POST {path} answered HTTP {status}: {body[:300]!r}")
            return

    @staticmethod
    async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if not chunked:
            return status, await reader.readexactly(length)
        body = b""
        while size := int((await reader.readline()).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readline()  # the blank line after the last chunk
        return status, body

    async def get_json(self, path: str) -> Any:
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        status, body = await self._response(self.reader)
        if status != 200:
            raise RunError(f"GET {path} answered HTTP {status}")
        return json.loads(body)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# -- the client -------------------------------------------------------------------------------


@dataclass
class Client:
    args: argparse.Namespace
    kind: str = ""
    uri: Any = None
    trigger: Trigger = field(init=False)
    seq: int = 0
    events: dict[int, EventStat] = field(default_factory=dict)
    counts: dict[str, PhaseCounts] = field(default_factory=dict)
    documents: list[str] = field(default_factory=list)
    phase: str = "setup"

    def __post_init__(self) -> None:
        self.kind = self.args.kind
        self.uri = parse_uri(f"ws://{self.args.host}:{self.args.port}{self.args.path}")
        self.trigger = Trigger(self.args.host, self.args.port)
        self.documents = self.args.document or []

    def document(self, index: int) -> str:
        return self.documents[index % len(self.documents)]

    # bookkeeping

    def record(self, conn: Subscriber, seq: int, now: float) -> None:
        stat = self.events.get(seq)
        counts = self.counts.setdefault(stat.phase if stat else self.phase, PhaseCounts())
        if seq in conn.seen:
            counts.duplicates += 1
            return
        conn.seen.add(seq)
        if seq < conn.last_seq:
            counts.order_violations += 1
        else:
            conn.last_seq = seq
        if stat is None or not conn.counting:
            return
        stat.count += 1
        stat.last = now
        if stat.count >= stat.expected and not stat.done.done():
            stat.done.set_result(None)

    async def fire(self, phase: str, expected: int, pad: int = 0) -> EventStat:
        self.seq += 1
        stat = EventStat(self.seq, phase, expected, asyncio.get_running_loop().create_future())
        self.events[stat.seq] = stat
        path = f"/trigger?seq={stat.seq}" + (f"&pad={pad}" if pad else "")
        await self.trigger.post(path, stat)
        return stat

    # sockets

    async def open(self, n: int, small_buffers: int = 0) -> list[Subscriber]:
        """Connect and subscribe ``n`` sockets, the first ``small_buffers`` with a 4 KB receive
        buffer (the ones that may stall later)."""
        loop = asyncio.get_running_loop()
        semaphore = asyncio.Semaphore(self.args.concurrency)
        conns = [Subscriber(self, i, i < small_buffers) for i in range(n)]

        async def connect(conn: Subscriber) -> None:
            async with semaphore:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                if conn.small_buffer:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, (self.args.host, self.args.port))
                    await loop.create_connection(lambda: conn, sock=sock)
                except BaseException:
                    sock.close()
                    raise
                await conn.subscribed

        started = perf()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(connect(c) for c in conns)), self.args.connect_timeout
            )
        except TimeoutError:
            ready = sum(1 for c in conns if c.subscribed.done())
            self.abort(conns)
            raise RunError(
                f"timeout: {ready} of {n} sockets subscribed in {self.args.connect_timeout:.0f} s"
            ) from None
        except BaseException:
            self.abort(conns)
            raise
        log(f"{n} sockets subscribed in {perf() - started:.2f} s")
        return conns

    async def close(self, conns: list[Subscriber]) -> None:
        for conn in conns:
            conn.close()
        pending = [c.closed for c in conns if not c.closed.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.args.close_timeout)
            if still:
                log(f"{len(still)} sockets did not close in time: aborted")
                self.abort(conns)
        # Let the server finish its disconnect handling before anything is measured.
        await asyncio.sleep(PAUSE[0])

    @staticmethod
    def abort(conns: Iterable[Subscriber]) -> None:
        for conn in conns:
            if conn.transport is not None and not conn.closed.done():
                conn.transport.abort()

    async def barrier(self, conns: list[Subscriber]) -> None:
        """Fire events until every socket received one: subscriptions are then in place."""
        self.phase = "barrier"
        deadline = perf() + self.args.event_timeout
        first: int | None = None
        while True:
            stat = await self.fire("barrier", len(conns))
            first = first or stat.seq
            best, quiet_since = 0, perf()
            while perf() < deadline:
                ready = sum(1 for c in conns if c.last_seq >= first)
                if ready == len(conns):
                    gc.collect()  # here, not while the next phase is timed
                    return
                if ready > best:
                    best, quiet_since = ready, perf()
                elif perf() - quiet_since > 2.0:
                    break  # no progress: fire another one
                await asyncio.sleep(0.02)
            else:
                raise RunError(
                    f"timeout: {best} of {len(conns)} sockets got a barrier event within "
                    f"{self.args.event_timeout:.0f} s"
                )

    async def wait(self, stats: list[EventStat], timeout: float) -> bool:
        pending = [s.done for s in stats if not s.done.done()]
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=timeout)
        return not still


# -- phases -----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summarize(stats: list[EventStat]) -> dict[str, Any]:
    complete = [s for s in stats if s.count >= s.expected]
    latencies = [s.latency for s in complete]
    rates = [s.count / s.latency for s in complete if s.latency > 0]
    return {
        "events": len(stats),
        "complete_events": len(complete),
        "delivered": sum(s.count for s in stats),
        "expected": sum(s.expected for s in stats),
        "p50_ms": percentile(latencies, 0.5) * 1e3 if latencies else None,
        "p99_ms": percentile(latencies, 0.99) * 1e3 if latencies else None,
        "frames_per_s": percentile(rates, 0.5) if rates else None,
        "latencies_ms": [
            round(s.latency * 1e3, 2) if s.count >= s.expected else None for s in stats
        ],
    }


async def one_at_a_time(client: Client, conns: list[Subscriber]) -> list[EventStat]:
    args = client.args
    client.phase = "events"
    stats: list[EventStat] = []
    started = perf()
    frames = 0
    while len(stats) < args.events or (
        frames < args.frames_target and perf() - started < args.events_budget
    ):
        stat = await client.fire("events", len(conns))
        stats.append(stat)
        if not await client.wait([stat], args.event_timeout):
            log(f"event {stat.seq}: {stat.count} of {stat.expected} delivered in time: timeout")
            break
        frames += stat.count
        await asyncio.sleep(args.gap)
    await asyncio.sleep(PAUSE[0])  # late duplicates
    return stats


async def at_rate(
    client: Client, phase: str, expected: int, rate: float, seconds: float, pad: int = 0
) -> tuple[list[EventStat], float]:
    """Fire ``rate`` events a second for ``seconds`` (not waiting for deliveries), then wait for
    the deliveries (bounded). Returns the events and the time from the first POST to the last
    receipt."""
    client.phase = phase
    count = max(1, round(rate * seconds))
    stats: list[EventStat] = []
    started = perf()
    for i in range(count):
        delay = started + i / rate - perf()
        if delay > 0:
            await asyncio.sleep(delay)
        stats.append(await client.fire(phase, expected, pad))
    if not await client.wait(stats, client.args.drain_timeout):
        log(f"{phase}: not every frame arrived within {client.args.drain_timeout:.0f} s")
    await asyncio.sleep(PAUSE[0])
    last = max((s.last for s in stats if s.count), default=started)
    return stats, last - started


async def run(args: argparse.Namespace) -> dict[str, Any]:
    client = Client(args)
    pid, n = args.pid, args.n
    result: dict[str, Any] = {"n": n}

    warm = await client.open(min(10, n))
    await client.barrier(warm)
    await client.close(warm)
    await asyncio.sleep(PAUSE[0])

    stalled = math.ceil(n * args.stall_fraction) if args.stall_seconds > 0 else 0
    profiler = Profiler(args.profile_dir, pid)
    gc_stats: dict[str, Any] = {}
    if args.gc_stats:
        gc_stats["before_connect"] = await client.trigger.get_json("/gcstats")
    rss_base = rss_kb(pid)
    await profiler.start("connect")
    started = perf()
    conns = await client.open(n, stalled)
    result["connect_s"] = perf() - started
    await profiler.stop()
    await client.barrier(conns)
    await asyncio.sleep(PAUSE[0])
    rss_connected = rss_kb(pid)
    result.update(
        rss_base_kb=rss_base, rss_kb=rss_connected, rss_per_sub_kb=(rss_connected - rss_base) / n
    )
    log(f"RSS {rss_base} KB -> {rss_connected} KB with {n} subscribers")

    if args.leak_cycles:
        started = perf()
        rss_first = rss_connected
        for cycle in range(args.leak_cycles):
            await client.close(conns)
            conns = await client.open(n, stalled)
            await client.barrier(conns)
            if cycle == 0:
                await asyncio.sleep(PAUSE[0])
                rss_first = rss_kb(pid)
        await asyncio.sleep(PAUSE[0])
        rss_after = rss_kb(pid)
        result.update(
            leak_cycles=args.leak_cycles,
            leak_s=perf() - started,
            rss_after_cycles_kb=rss_after,
            rss_per_sub_after_kb=(rss_after - rss_base) / n,
            # Growth after the first cycle: the allocator's high-water mark is reached by then,
            # so a steady growth here is memory kept per connection.
            rss_growth_kb_per_cycle=(rss_after - rss_first) / (args.leak_cycles - 1)
            if args.leak_cycles > 1
            else None,
        )
        log(f"RSS {rss_after} KB after {args.leak_cycles} connect/disconnect cycles")

    redis = args.redis.split(":") if args.redis else None
    await settle(pid)
    redis_a = await redis_commandstats(redis[0], int(redis[1])) if redis else {}
    if args.gc_stats:
        gc_stats["before_events"] = await client.trigger.get_json("/gcstats")
    await profiler.start("events")
    cpu_a, t_a = cpu_seconds(pid), perf()
    stats = await one_at_a_time(client, conns)
    await profiler.stop()
    await settle(pid)
    cpu_b, t_b = cpu_seconds(pid), perf()
    if args.gc_stats:
        gc_stats["after_events"] = await client.trigger.get_json("/gcstats")
        result["gc"] = gc_stats
    redis_b = await redis_commandstats(redis[0], int(redis[1])) if redis else {}
    window = t_b - t_a
    quiet = min(window, args.quiet_cap)
    await asyncio.sleep(quiet)
    cpu_c = cpu_seconds(pid)
    redis_c = await redis_commandstats(redis[0], int(redis[1])) if redis else {}
    idle_rate = (cpu_c - cpu_b) / quiet
    summary = summarize(stats)
    busy = (cpu_b - cpu_a) - idle_rate * window
    # /proc counts CPU in clock ticks (10 ms): fewer than 10 ticks is no measurement.
    enough = summary["delivered"] > 0 and cpu_b - cpu_a >= 10 / CLOCK_TICKS
    summary.update(
        cpu_s=cpu_b - cpu_a,
        idle_cpu_s=idle_rate * window,
        window_s=window,
        cpu_us_per_frame=busy * 1e6 / summary["delivered"] if enough else None,
        cpu_ms_per_event=busy * 1e3 / len(stats) if enough and stats else None,
    )
    if redis:
        events = delta(redis_b, redis_a)
        idle = delta(redis_c, redis_b)
        scale = window / quiet
        summary["redis_calls_per_event"] = {
            cmd: (calls - idle.get(cmd, 0) * scale) / len(stats) for cmd, calls in events.items()
        }
        summary["redis_idle_calls_per_s"] = {cmd: calls / quiet for cmd, calls in idle.items()}
    result["events"] = summary
    log(
        f"{len(stats)} events: p50 {summary['p50_ms'] or 0:.1f} ms, "
        f"{summary['delivered']}/{summary['expected']} delivered"
    )
    if summary["complete_events"] < len(stats):
        result["timeout"] = "an event was not delivered to every subscriber in time"
        await client.close(conns)
        return finish(client, result)

    if args.sustained_seconds > 0:
        cpu_a, t_a = cpu_seconds(pid), perf()
        stats, span = await at_rate(
            client, "sustained", n, args.rate, args.sustained_seconds, pad=0
        )
        await settle(pid)
        cpu_b, t_b = cpu_seconds(pid), perf()
        summary = summarize(stats)
        busy = (cpu_b - cpu_a) - idle_rate * (t_b - t_a)
        summary.update(
            rate=args.rate,
            seconds=args.sustained_seconds,
            span_s=span,
            frames_per_s=summary["delivered"] / span if span > 0 else None,
            cpu_us_per_frame=busy * 1e6 / summary["delivered"] if summary["delivered"] else None,
        )
        result["sustained"] = summary
        log(f"sustained: {summary['delivered']}/{summary['expected']} delivered")

    if args.rate_steps:
        result["steps"] = await rate_steps(client, n, pid, idle_rate)

    if args.stall_seconds > 0 and stalled:
        readers = n - stalled
        for conn in conns[:stalled]:
            conn.counting = False
        before, _ = await at_rate(
            client, "stall-off", readers, args.rate, args.stall_seconds, pad=args.stall_pad
        )
        for conn in conns[:stalled]:
            if conn.transport is not None:
                conn.transport.pause_reading()
        during, _ = await at_rate(
            client, "stall-on", readers, args.rate, args.stall_seconds, pad=args.stall_pad
        )
        result["stall"] = {
            "stalled": stalled,
            "readers": readers,
            "pad": args.stall_pad,
            "rate": args.rate,
            "seconds": args.stall_seconds,
            "all_reading": summarize(before),
            "with_stalled": summarize(during),
            "stalled_closed_by_server": sum(1 for c in conns[:stalled] if c.closed.done()),
        }
        log(
            f"stall: {result['stall']['stalled_closed_by_server']} of {stalled} stalled sockets "
            "closed by the server"
        )

    await client.close(conns)
    return finish(client, result)


async def rate_steps(client: Client, n: int, pid: int, idle_rate: float) -> list[dict[str, Any]]:
    """Each rate of ``--rate-steps`` for ``--step-seconds``, up to the first that fails (p99
    over ``--step-p99-ms``, or a frame not delivered): the figures of each step run."""
    args = client.args
    steps: list[dict[str, Any]] = []
    for rate in args.rate_steps:
        cpu_a, t_a = cpu_seconds(pid), perf()
        stats, span = await at_rate(client, f"step-{rate:g}", n, rate, args.step_seconds)
        await settle(pid)
        cpu_b, t_b = cpu_seconds(pid), perf()
        summary = summarize(stats)
        del summary["latencies_ms"]
        busy = (cpu_b - cpu_a) - idle_rate * (t_b - t_a)
        passed = (
            summary["delivered"] == summary["expected"]
            and summary["p99_ms"] is not None
            and summary["p99_ms"] < args.step_p99_ms
        )
        summary.update(
            rate=rate,
            seconds=args.step_seconds,
            frames_per_s=summary["delivered"] / span if span > 0 else None,
            cpu_us_per_frame=busy * 1e6 / summary["delivered"] if summary["delivered"] else None,
            passed=passed,
        )
        steps.append(summary)
        log(
            f"step {rate:g}/s: p99 {summary['p99_ms'] or 0:.1f} ms, "
            f"{summary['delivered']}/{summary['expected']} delivered: "
            f"{'passed' if passed else 'failed'}"
        )
        if not passed:
            break
    return steps


def finish(client: Client, result: dict[str, Any]) -> dict[str, Any]:
    client.trigger.close()
    result["counts"] = {
        phase: {"duplicates": c.duplicates, "order_violations": c.order_violations}
        for phase, c in client.counts.items()
    }
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/ws")
    parser.add_argument("--pid", type=int, required=True, help="the server process")
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument(
        "--document", action="append", help="GraphQL document (repeat: round-robin)"
    )
    parser.add_argument("--n", type=int, required=True, help="subscribers")
    parser.add_argument("--events", type=int, default=5, help="at least this many events")
    parser.add_argument("--frames-target", type=int, default=40000)
    parser.add_argument("--events-budget", type=float, default=1.5, help="seconds")
    parser.add_argument("--gap", type=float, default=0.005, help="seconds between events")
    parser.add_argument("--pause", type=float, default=0.25, help="seconds between steps")
    parser.add_argument("--quiet-cap", type=float, default=1.0, help="longest idle interval")
    parser.add_argument("--leak-cycles", type=int, default=0)
    parser.add_argument("--sustained-seconds", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=10.0, help="events/s")
    parser.add_argument("--stall-seconds", type=float, default=0.0)
    parser.add_argument("--stall-fraction", type=float, default=0.05)
    parser.add_argument("--stall-pad", type=int, default=8192, help="bytes of padding")
    parser.add_argument(
        "--rate-steps",
        type=lambda text: [float(x) for x in text.split(",") if x.strip()],
        default=[],
        help="events/s of each step of the highest-sustained-rate run, e.g. 10,50,100,200,400",
    )
    parser.add_argument("--step-seconds", type=float, default=5.0)
    parser.add_argument("--step-p99-ms", type=float, default=100.0, help="a step's p99 bound")
    parser.add_argument("--redis", help="HOST:PORT to read INFO commandstats from")
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="asyncio",
        help="the client's loop (asyncio measured faster here than uvloop)",
    )
    parser.add_argument("--gc-stats", action="store_true", help="read the server's /gcstats")
    parser.add_argument("--profile-dir", help="py-spy the connect and events phases into DIR")
    parser.add_argument("--concurrency", type=int, default=64, help="handshakes in flight")
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument("--event-timeout", type=float, default=30.0)
    parser.add_argument(
        "--drain-timeout", type=float, default=5.0, help="seconds to wait for a rate run's frames"
    )
    parser.add_argument("--close-timeout", type=float, default=15.0)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    PAUSE[0] = args.pause
    raise_open_files_limit()
    # The client's own garbage collections would show up as latency: collect only between
    # phases (Client.settle), never while frames are being timed.
    gc.disable()
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        result = asyncio.run(run(args))
    except RunError as exc:
        result = {"n": args.n, "error": str(exc)}
        if str(exc).startswith("timeout"):
            result["timeout"] = str(exc)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
