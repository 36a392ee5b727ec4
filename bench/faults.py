"""Faults under load: services failing while 1,000 subscribers receive 50 events/s, each fault in
turn, and per fault the time to recover, the events lost and duplicated, and what was logged.

The setup is the soak's (``bench/soak.py``): two servers of this library (uvicorn,
``sms_site``, RedisChannelLayer on a private redis-server, a private PostgreSQL cluster made for
the run), half the subscribers on each, on each server half on the stream protocol and half on
graphql-transport-ws, every one resumable (``after``); two writer processes
(``bench/servers/restart_writer.py``) save 25 events/s each. One process (this one) holds every
socket and checks every frame as it arrives: per writer, from a subscriber's first event on,
every one once, in order. The faults, in this order:

1. **Redis restarted**: the redis-server is killed (SIGKILL: no persistence, every key lost:
   groups, histories, the epoch) and started again ``--down`` s later on the same port;
2. **PostgreSQL restarted**: ``pg_ctl stop -m immediate``, started again ``--down`` s later;
   the writers' saves fail meanwhile (not committed: not events) and are tried again;
3. **a stalled client**: one more stream-protocol socket on server A, with a 4 KB receive
   buffer, stops reading for ``--stall-seconds`` (or until the server closes it); what the
   server's kernel holds for it at the end (``ss``) and the server's RSS are reported;
4. **a lossy client network**: 50 stream-protocol sockets from a client host in a network
   namespace of its own (``bench/netns.py``), over a veth link that drops ``--loss`` % of the
   packets each way for ``--lossy-seconds`` s (after 5 s without loss, and 5 s without after);
5. **one of two servers killed**: server B gets SIGKILL; its subscribers reconnect to server A
   and resume from their cursors.

Per fault: the longest any committed event waited to reach every subscriber ("longest delay":
sampled every 100 ms, the age of the oldest committed event some subscriber has not received),
the time from the fault's end (the service back; the kill) until no committed event older than
0.5 s was missing anywhere ("recovered"), the events lost and duplicated, and the servers' and
writers' log lines of the phase.

    python bench/faults.py                   # the section printed
    python bench/faults.py --quick           # 200 subscribers, 20 events/s, shorter phases
    python bench/run.py --faults-only        # the section "Faults under load" of RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import netns
import restarts
import services
import supervise
from client import RunError, raise_open_files_limit
from report import TARGET_HEADERS, opening, table, verdict
from restarts import SMS, Conn, Sub, Writer, env_of, open_all, prepare_database, sigkill
from server import Server
from soak import WRITERS, SoakSub, rss_kib
from supervise import rel, workspace
from websockets.uri import parse_uri

now = time.monotonic

FAULTS_HEADING = "## Faults under load"
#: A subscriber has recovered once no committed event older than this is missing.
CAUGHT_UP_S = 0.5
SAMPLE_S = 0.1
LOSSY_SOCKETS = 50


def say(message: str) -> None:
    with contextlib.redirect_stdout(sys.stderr):
        supervise.say(message)


# -- a PostgreSQL of the run's own --------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL cluster made for the run (``initdb``, trust, no fsync) on a free port, that
    the run may stop and start; removed at the end."""

    def __init__(self) -> None:
        found = shutil.which("pg_ctl") or next(
            iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)), None
        )
        if found is None:
            raise RunError("no PostgreSQL server binaries (pg_ctl) found")
        self.bin = Path(found).parent
        self.dir = Path(tempfile.mkdtemp(prefix="sms-bench-pg-"))
        self.port = services.free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.dir, "postgres")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            [*self._as, str(self.bin / argv[0]), *argv[1:]], capture_output=True, text=True
        )
        if done.returncode:
            raise RunError(f"{argv[0]} failed: {(done.stdout + done.stderr)[-800:]}")

    def create(self) -> None:
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.dir / "postgres.log")
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", log, "-o", options, "-w", "start")

    def stop_now(self) -> None:
        """Stop at once (``-m immediate``: every connection cut, as a crash would)."""
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(RunError):
            self.stop_now()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- watching the subscribers ------------------------------------------------------------------


class Watch:
    """The subscribers and writers of the run: how late delivery is, and what each phase saw."""

    def __init__(self, subs: Sequence[SoakSub], writers: Sequence[Writer]) -> None:
        self.subs = subs
        self.writers = writers

    def lag(self, at: float) -> float:
        """The age at ``at`` of the oldest committed event some subscriber has not received
        (counted from each subscriber's first event of each writer)."""
        worst = 0.0
        for w, writer in enumerate(self.writers):
            commits = writer.commits
            known = len(commits)
            oldest = at
            for sub in self.subs:
                k = sub.last[w]
                # commits[k] is commit k + 1: the next one this subscriber waits for.
                if 0 < k < known:
                    oldest = min(oldest, commits[k][1])
            worst = max(worst, at - oldest)
        return worst

    def counts(self) -> dict[str, int]:
        return {
            "lost": sum(s.lost for s in self.subs),
            "duplicated": sum(s.duplicated for s in self.subs),
            "frames": sum(s.frames for s in self.subs),
        }

    async def until(self, done: Callable[[], bool], timeout: float) -> tuple[float, bool]:
        """Sample the lag every 100 ms until ``done()`` (or ``timeout``): its largest value,
        and whether ``done`` came true."""
        worst = 0.0
        deadline = now() + timeout
        while True:
            worst = max(worst, self.lag(now()))
            if done():
                return worst, True
            if now() > deadline:
                return worst, False
            await asyncio.sleep(SAMPLE_S)  # a bounded poll of what the sockets received

    async def recovered(self, since: float, timeout: float) -> tuple[float, float | None]:
        """Wait until no committed event older than 0.5 s is missing anywhere: the largest lag
        seen, and the seconds from ``since`` (None: not within ``timeout``)."""
        worst, ok = await self.until(lambda: self.lag(now()) < CAUGHT_UP_S, timeout)
        return worst, (now() - since if ok else None)


_JOINS = ("During handling", "The above exception")


class Logs:
    """New lines of the servers' and writers' logs since :meth:`mark`."""

    def __init__(self, paths: Callable[[], list[tuple[str, Path | None]]]) -> None:
        self.paths = paths
        self.offsets: dict[Path, int] = {}

    def mark(self) -> None:
        self.offsets = {p: p.stat().st_size for _, p in self.paths() if p and p.exists()}

    def since(self) -> list[str]:
        """Each distinct line since :meth:`mark`, with where it was logged and how often: most
        frequent first (a traceback's frames left out)."""
        seen: Counter[str] = Counter()
        where: dict[str, list[str]] = {}
        for who, path in self.paths():
            if path is None or not path.exists():
                continue
            with path.open("rb") as f:
                f.seek(self.offsets.get(path, 0))
                text = f.read().decode(errors="replace")
            for line in text.splitlines():
                # A traceback's frames are indented; its header and joining lines are skipped.
                if line.strip() and not line.startswith((" ", "Traceback", *_JOINS)):
                    line = line.strip()[:160]
                    seen[line] += 1
                    if who not in where.setdefault(line, []):
                        where[line].append(who)
        return [
            f"{', '.join(where[line])}: {line}" + (f" (x{n})" if n > len(where[line]) else "")
            for line, n in seen.most_common(10)
        ]


# -- the faults --------------------------------------------------------------------------------


async def redis_fault(args: argparse.Namespace, watch: Watch) -> dict[str, Any]:
    started = now()
    services.stop_private_redis()
    await asyncio.sleep(args.down)  # the outage itself: its length is the fault
    await asyncio.to_thread(services.start_private_redis_again)
    back = now()
    worst, recovered = await watch.recovered(back, args.recover_timeout)
    saved = sum(1 for w in watch.writers for _, t in w.commits if started <= t <= back)
    return {
        "what": f"Redis killed (no persistence: every key lost) and started {args.down:g} s later",
        "down_s": back - started,
        "worst_lag_s": worst,
        "recovered_s": recovered,
        "detail": f"{saved} events committed while Redis was down",
    }


async def postgres_fault(
    args: argparse.Namespace, watch: Watch, pg: PrivatePostgres
) -> dict[str, Any]:
    failures_before = sum(len(w.failures) for w in watch.writers)
    started = now()
    await asyncio.to_thread(pg.stop_now)
    await asyncio.sleep(args.down)  # the outage itself
    await asyncio.to_thread(pg.start)
    back = now()
    worst, recovered = await watch.recovered(back, args.recover_timeout)
    failed = sum(len(w.failures) for w in watch.writers) - failures_before
    first = min((t for w in watch.writers for _, t in w.commits if t >= back), default=None)
    detail = f"{failed} saves refused while it was down (tried again)"
    if first is not None:
        detail += f"; the first commit {first - back:.2f} s after it was back"
    return {
        "what": f"PostgreSQL stopped (`-m immediate`) and started {args.down:g} s later",
        "down_s": back - started,
        "worst_lag_s": worst,
        "recovered_s": recovered,
        "detail": detail,
    }


def tcp_state(conn: Conn) -> int:
    """The kernel's TCP state of ``conn``'s socket (1 established, 7 closed, 8 close-wait)."""
    assert conn.transport is not None
    sock = conn.transport.get_extra_info("socket")
    if sock is None:
        return 7
    try:
        return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0])
    except OSError:
        return 7


def send_queue(server: Server, peer_port: int) -> int | None:
    """Bytes the server's kernel holds unsent for its socket to ``peer_port`` (``ss``)."""
    if shutil.which("ss") is None:
        return None
    out = subprocess.run(
        ["ss", "-tnH", "dst", f"127.0.0.1:{peer_port}", "src", f"127.0.0.1:{server.port}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return int(out[2]) if len(out) >= 5 and out[2].isdigit() else None


async def stall_fault(args: argparse.Namespace, watch: Watch, server: Server) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", server.port))
    peer_port = sock.getsockname()[1]
    sub = Sub("stream", -1)
    conn = Conn(sub, parse_uri(f"ws://127.0.0.1:{server.port}/ws"))
    sub.conn = conn
    await loop.create_connection(lambda: conn, sock=sock)
    await asyncio.wait_for(conn.subscribed, 30)
    assert server.process is not None
    assert conn.transport is not None
    rss_before = rss_kib(server.process.pid)
    conn.transport.pause_reading()
    started = now()
    peak = rss_before

    def closed() -> bool:
        nonlocal peak
        assert server.process is not None
        peak = max(peak, rss_kib(server.process.pid))
        return tcp_state(conn) != 1 or now() >= started + args.stall_seconds

    worst, _ = await watch.until(closed, args.stall_seconds + 10)
    held = now() - started
    was_closed = tcp_state(conn) != 1
    queued = send_queue(server, peer_port)
    conn.transport.abort()
    how = (
        f"closed by the server {held:.1f} s after it stopped reading"
        if was_closed
        else f"still open after {held:.0f} s"
    )
    if queued is not None:
        how += f", {queued / 1024:.0f} KB unsent in the server's kernel"
    return {
        "what": "a stream-protocol socket stops reading (4 KB receive buffer)",
        "down_s": held,
        "worst_lag_s": worst,
        "recovered_s": 0.0 if worst < CAUGHT_UP_S else None,
        "detail": f"{how}; server A's RSS {rss_before / 1024:.1f} MiB before, "
        f"{peak / 1024:.1f} MiB at most while it was stalled",
    }


async def lossy_fault(
    args: argparse.Namespace, watch: Watch, server: Server, workdir: Path
) -> dict[str, Any]:
    if why := netns.unavailable():
        return {"what": f"{args.loss}% packet loss", "skipped": why}
    with netns.client_host() as run_in:
        command = run_in(
            [
                sys.executable,
                __file__,
                "--client",
                f"{netns.HOST_IP}:{server.port}",
                "--n",
                str(LOSSY_SOCKETS),
            ]
        )
        log = (workdir / "lossy-client.log").open("w")
        process = supervise.spawn(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
        )
        try:
            assert process.stdout is not None
            assert process.stdin is not None
            ready = await asyncio.to_thread(process.stdout.readline)
            if ready.strip() != "ready":
                raise RunError(f"the namespace's client did not start: {ready!r}")
            clean = 5.0
            await asyncio.sleep(clean)  # the phase's first part: the same link without loss
            loss_from = now()
            await asyncio.to_thread(netns.set_loss, args.loss)
            worst, _ = await watch.until(lambda: now() >= loss_from + args.lossy_seconds, 600)
            await asyncio.to_thread(netns.set_loss, 0)
            loss_to = now()
            await asyncio.sleep(clean)  # the last part: loss gone, retransmissions land
            stopped_at = now()
            out, _ = await asyncio.to_thread(process.communicate, "stop\n", 60)
        finally:
            supervise.stop(process)
            log.close()
    received = json.loads(out.splitlines()[-1])
    return {
        "what": f"{LOSSY_SOCKETS} stream-protocol sockets from another network namespace, its "
        f"link dropping {args.loss}% of packets each way for {args.lossy_seconds:g} s",
        "down_s": loss_to - loss_from,
        "worst_lag_s": worst,
        "recovered_s": 0.0 if worst < CAUGHT_UP_S else None,
        **lossy_figures(received, watch.writers, (loss_from, loss_to), stopped_at - 2.0),
    }


def lossy_figures(
    received: dict[str, Any],
    writers: Sequence[Writer],
    lossy: tuple[float, float],
    until: float,
) -> dict[str, Any]:
    """The namespace's sockets' frames checked (per writer, from the first, every event once,
    in order, through the last committed before ``until``), and their delays with and without
    loss."""
    commit_at = [dict(w.commits) for w in writers]
    last = [w.last_before(until) for w in writers]
    lost = duplicated = 0
    delays: dict[bool, list[float]] = {True: [], False: []}
    for frames in received["subs"]:
        for w in range(WRITERS):
            ks = [seq // WRITERS for seq, _ in frames if seq % WRITERS == w]
            if not ks:
                lost += last[w]
                continue
            got = set(ks)
            duplicated += len(ks) - len(got) + sum(1 for a, b in itertools.pairwise(ks) if b < a)
            lost += sum(1 for k in range(ks[0], last[w] + 1) if k not in got)
        for seq, at in frames:
            committed = commit_at[seq % WRITERS].get(seq // WRITERS)
            if committed is not None:
                delays[lossy[0] <= committed <= lossy[1]].append(at - committed)

    def p(values: list[float], q: float) -> str:
        if not values:
            return "-"
        values = sorted(values)
        return f"{1000 * values[min(len(values) - 1, int(q * len(values)))]:.0f}"

    return {
        "lost": lost,
        "duplicated": duplicated,
        "detail": f"their delay from commit p50 / p99 / max: {p(delays[True], 0.5)} / "
        f"{p(delays[True], 0.99)} / {p(delays[True], 1.0)} ms under loss, "
        f"{p(delays[False], 0.5)} / {p(delays[False], 0.99)} / {p(delays[False], 1.0)} ms "
        f"without; {received['errors'] or 'no socket failed'}",
        "counted_separately": True,
    }


async def kill_fault(
    args: argparse.Namespace, watch: Watch, servers: Sequence[Server]
) -> dict[str, Any]:
    moved = [s for s in watch.subs if s.server == 1]
    started = now()
    await asyncio.to_thread(sigkill, servers[1])
    killed = now()
    await restarts.wait_closed(moved, 10)
    for sub in moved:
        sub.server = 0
        sub.reconnects += 1
    error = ""
    try:
        took = await open_all(moved, servers[0].port, args.concurrency, args.connect_timeout)
    except RunError as exc:
        error, took = str(exc), float("nan")
    worst, recovered = await watch.recovered(killed, args.recover_timeout)
    return {
        "what": "server B killed (SIGKILL); its subscribers resume on server A",
        "down_s": killed - started,
        "worst_lag_s": worst,
        "recovered_s": recovered,
        "detail": error or f"{len(moved)} subscribers reconnected and resubscribed in {took:.1f} s",
    }


# -- the run -----------------------------------------------------------------------------------


async def run_faults(
    args: argparse.Namespace, workdir: Path, pg: PrivatePostgres
) -> dict[str, Any]:
    servers = [Server(SMS, sys.executable, workdir, None) for _ in range(2)]
    servers[0].host = "0.0.0.0"  # also the namespace's client's, over its veth
    prepare_database(servers[0])
    writers = [
        Writer(env_of(servers[0]), args.rate / WRITERS, workdir / f"writer-{w}.log")
        for w in range(WRITERS)
    ]
    for w, writer in enumerate(writers):
        writer.command += ["--pk", str(100 + w), "--stride", str(WRITERS), "--phase", str(w)]
    subs = [
        SoakSub("stream" if (i // 2) % 2 == 0 else "gtws", i, server=i % 2) for i in range(args.n)
    ]
    watch = Watch(subs, writers)
    logs = Logs(
        lambda: [
            *((f"server {'AB'[i]}", s.log_path) for i, s in enumerate(servers)),
            *((f"writer {i + 1}", w.log) for i, w in enumerate(writers)),
        ]
    )
    data: dict[str, Any] = {"faults": []}
    try:
        for i, server in enumerate(servers):
            await restarts.start_server(server, f"server-{'ab'[i]}", flush_redis=i == 0)
        data["server_command"] = servers[0].command
        for writer in writers:
            writer.start()
        for i, server in enumerate(servers):
            group = [s for s in subs if s.server == i]
            await open_all(group, server.port, args.concurrency, args.connect_timeout)
        say(f"faults: {args.n:,} subscribers on 2 servers, {args.rate:g} events/s")
        _, steady = await watch.until(
            lambda: all(all(s.last) for s in subs) and watch.lag(now()) < CAUGHT_UP_S, 60
        )
        if not steady:
            raise RunError("the subscribers did not all receive both writers' events in 60 s")
        await asyncio.sleep(args.calm)  # steady delivery before the first fault
        faults: list[tuple[str, Callable[[], Any]]] = [
            ("redis", lambda: redis_fault(args, watch)),
            ("postgres", lambda: postgres_fault(args, watch, pg)),
            ("stall", lambda: stall_fault(args, watch, servers[0])),
            ("lossy", lambda: lossy_fault(args, watch, servers[0], workdir)),
            ("kill", lambda: kill_fault(args, watch, servers)),
        ]
        for name, fault in faults:
            if name not in args.only:
                continue
            say(f"faults: {name} ...")
            logs.mark()
            before = watch.counts()
            result = await fault()
            await watch.until(lambda: watch.lag(now()) < CAUGHT_UP_S, args.recover_timeout)
            await asyncio.sleep(args.calm)  # gaps show once the next events arrive
            after = watch.counts()
            result["name"] = name
            if not result.get("counted_separately"):
                result["lost"] = after["lost"] - before["lost"]
                result["duplicated"] = after["duplicated"] - before["duplicated"]
            result["logged"] = logs.since()
            data["faults"].append(result)
            say(f"faults: {name}: {describe(result)}")
        lasts = [await asyncio.to_thread(w.stop) for w in writers]
        if not all(flushed for _, flushed in lasts):
            raise RunError("a writer's flush_events() timed out")
        final = [last for last, _ in lasts]
        await watch.until(lambda: all(s.last == final for s in subs), args.recover_timeout)
        behind = sum(max(0, f - got) for s in subs for f, got in zip(final, s.last, strict=True))
        data.update(
            written=sum(final),
            lost=sum(s.lost for s in subs) + behind,
            duplicated=sum(s.duplicated for s in subs),
            frames=sum(s.frames for s in subs),
        )
        await restarts.close_all(subs)
    finally:
        for writer in writers:
            if writer.process is not None and writer.process.poll() is None:
                supervise.stop(writer.process)
        for server in servers:
            server.stop()
    data["server_errors"] = [server.errors()[0] for server in servers]
    return data


def describe(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"not measured: {result['skipped']}"
    recovered = result.get("recovered_s")
    return (
        f"longest delay {result['worst_lag_s']:.2f} s, recovered "
        f"{'no' if recovered is None else f'in {recovered:.2f} s'}, lost {result.get('lost')}, "
        f"duplicated {result.get('duplicated')}; {result.get('detail', '')}"
    )


def measure(quick: bool = False) -> dict[str, Any]:
    """Run every fault (``--quick``: the short form); the figures, or ``{"error": ...}``."""
    return run(parse_args(["--quick"] if quick else []))


def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_open_files_limit()
    started = now()
    say(f"Redis: {services.start_private_redis()}")
    data: dict[str, Any]
    if why := services.redis_available():
        data = {"error": why}
    elif not services.private_redis():
        data = {"error": "no private redis-server could be started (the run restarts it)"}
    else:
        pg: PrivatePostgres | None = None
        shared_pg = restarts.PG
        with workspace() as workdir:
            try:
                pg = PrivatePostgres()
                pg.create()
                restarts.PG = pg.address
                data = asyncio.run(run_faults(args, workdir, pg))
            except RunError as exc:
                data = {"error": str(exc)}
            finally:
                # The tables run after this one (in the same process) use the shared cluster.
                restarts.PG = shared_pg
                if pg is not None:
                    pg.remove()
    data.update(n=args.n, rate=args.rate, duration_s=now() - started, quick=args.quick)
    return data


# -- the report --------------------------------------------------------------------------------


def targets(data: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    rows: list[tuple[str, str, bool | None]] = []
    for fault in data.get("faults", []):
        if "skipped" in fault:
            rows.append((f"{fault['name']}: nothing lost or duplicated", "not measured", None))
            continue
        lost, dup = fault.get("lost"), fault.get("duplicated")
        rows.append(
            (f"{fault['name']}: nothing lost or duplicated", f"{lost} / {dup}", lost == dup == 0)
        )
    if "lost" in data:
        rows.append(
            (
                "the whole run: nothing lost or duplicated",
                f"{data['lost']} / {data['duplicated']}",
                data["lost"] == data["duplicated"] == 0,
            )
        )
    return rows


def section(data: dict[str, Any], command: str) -> list[str]:
    lines, measured = opening(FAULTS_HEADING, data, command)
    if not measured:
        return lines
    lines += [
        f"{data['n']:,} subscribers on two servers of this library (RedisChannelLayer on a "
        "private redis-server, a private PostgreSQL cluster), half on the stream protocol and "
        f"half on graphql-transport-ws, all resumable; two writer processes save "
        f"{data['rate']:g} events/s between them. The faults came one after another; each "
        "subscriber's frames were checked as they arrived (per writer, every event once, in "
        "order). *Longest delay*: the age of the oldest committed event some subscriber had "
        "not yet received, at its largest during the phase. *Recovered*: from the fault's end "
        f"(the service back, the kill) until no committed event older than {CAUGHT_UP_S:g} s "
        "was missing anywhere. See `bench/faults.py`.",
        "",
    ]
    rows = []
    for fault in data["faults"]:
        if "skipped" in fault:
            rows.append([fault["name"], fault["what"], "-", "-", "-", "-", fault["skipped"]])
            continue
        recovered = fault["recovered_s"]
        rows.append(
            [
                fault["name"],
                fault["what"],
                f"{fault['worst_lag_s']:.2f} s",
                "not within the timeout" if recovered is None else f"{recovered:.2f} s",
                str(fault["lost"]),
                str(fault["duplicated"]),
                fault["detail"],
            ]
        )
    lines += table(
        ["fault", "what", "longest delay", "recovered", "lost", "duplicated", "also"], rows
    )
    lines += ["", "What was logged in each phase (the servers' and the writers' logs):", ""]
    for fault in data["faults"]:
        logged = fault.get("logged") or ["nothing"]
        lines.append(f"- {fault['name']}: " + "; ".join(f"`{line}`" for line in logged))
    lines += [
        "",
        f"In all: {data['written']:,} events written, {data['frames']:,} frames received, "
        f"{data['lost']} lost, {data['duplicated']} duplicated; tracebacks in the servers' logs: "
        f"{' / '.join(map(str, data['server_errors']))}.",
        "",
        *table(TARGET_HEADERS, [[w, m, verdict(ok)] for w, m, ok in targets(data)]),
        "",
    ]
    return lines


# -- the namespace's client --------------------------------------------------------------------


async def client_main(address: str, n: int) -> None:
    """``--client HOST:PORT``: ``n`` resumable stream-protocol subscribers; ``ready`` on
    stdout once subscribed; on ``stop`` (stdin), every socket's ``[seq, arrival]`` frames as
    one JSON line."""
    host, _, port = address.rpartition(":")
    subs = [Sub("stream", i) for i in range(n)]
    await open_all(subs, int(port), 16, 60, host=host)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    frames = [[[seq, sub.arrived[seq]] for seq in sub.seqs] for sub in subs]
    errors = sorted({s.error for s in subs if s.error})
    print(json.dumps({"subs": frames, "errors": errors}), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="200 subscribers, shorter phases")
    parser.add_argument("--n", type=int, help="subscribers (1000; --quick: 200)")
    parser.add_argument("--rate", type=float, help="events/s, both writers (50; --quick: 20)")
    parser.add_argument("--down", type=float, default=3.0, help="seconds a service is down")
    parser.add_argument("--loss", type=int, default=5, help="percent of packets dropped")
    parser.add_argument("--lossy-seconds", type=float, help="20 (--quick: 8)")
    parser.add_argument("--stall-seconds", type=float, help="60 (--quick: 15)")
    parser.add_argument("--recover-timeout", type=float, default=120.0)
    parser.add_argument("--calm", type=float, default=2.0, help="seconds between faults")
    parser.add_argument("--concurrency", type=int, default=64, help="handshakes in flight")
    parser.add_argument("--connect-timeout", type=float, default=180.0)
    parser.add_argument(
        "--only", default="redis,postgres,stall,lossy,kill", help="the faults to run, in order"
    )
    parser.add_argument("--client", metavar="HOST:PORT", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    args.n = args.n or (200 if args.quick else 1000)
    args.rate = args.rate or (20.0 if args.quick else 50.0)
    args.lossy_seconds = args.lossy_seconds or (8.0 if args.quick else 20.0)
    args.stall_seconds = args.stall_seconds or (15.0 if args.quick else 60.0)
    args.only = {name.strip() for name in args.only.split(",")}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client:
        asyncio.run(client_main(args.client, args.n))
        return 0
    data = run(args)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1, default=str))
    command = " ".join(["python", rel(__file__), *(sys.argv[1:] if argv is None else argv)])
    print("\n".join(section(data, command)))
    if "error" in data:
        return 1
    return 0 if all(ok is not False for _, _, ok in targets(data)) else 2


if __name__ == "__main__":
    supervise.run_script(main)
