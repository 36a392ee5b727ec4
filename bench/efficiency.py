"""Multi-process efficiency: two server processes of this library on RedisPubSubChannelLayer with
N/2 subscribers each against one with N (4,000), under the same steady load: frames delivered
per second, server CPU per frame, Redis CPU per event, and the delay from commit to delivery.

Each configuration runs on fresh servers (uvicorn, ``sms_site``, RedisPubSubChannelLayer on a
private redis-server; half the subscribers of each server on the stream protocol, half on
graphql-transport-ws, one process, this one, holding every socket). Once all are subscribed, a
writer process (``bench/servers/restart_writer.py``, PostgreSQL) saves ``--rate`` events/s for
``--seconds``; the measured window runs from its first commit after a second of warm-up to its
last. In the window: each server's CPU time (``/proc/<pid>/stat``, user + system), Redis'
(``INFO cpu``, ``used_cpu_user`` + ``used_cpu_sys``, less its idle CPU over 3 s before the
writer started), the frames received; then every socket is
waited for until it has the writer's last event, and checked (every event once, in order).

    python bench/efficiency.py               # printed
    python bench/run.py --efficiency-only    # the section "Multi-process efficiency" of RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import redis
import restarts
import services
import supervise
from client import RunError, raise_open_files_limit
from report import TARGET_HEADERS, opening, table, verdict
from restarts import SMS, Sub, Writer, check, close_all, env_of, open_all, prepare_database
from server import Server
from supervise import rel, workspace

now = time.monotonic

EFFICIENCY_HEADING = "## Multi-process efficiency"
PUBSUB = dataclasses.replace(
    SMS,
    name="sms-pubsub",
    title="this library on RedisPubSubChannelLayer, both protocols on one server",
    layer="pubsub",
)
TICK = os.sysconf("SC_CLK_TCK")
#: Seconds of Redis' idle CPU (its timers, the layers' connections) measured before the writer
#: starts, subtracted from its CPU in the window.
IDLE_S = 3.0
#: The target: two processes spend at most this much more server CPU per frame than one.
MAX_CPU_PER_FRAME_RATIO = 1.25


def say(message: str) -> None:
    with contextlib.redirect_stdout(sys.stderr):
        supervise.say(message)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def command_stats(client: redis.Redis) -> dict[str, tuple[int, int]]:
    """Redis' ``INFO commandstats``: each command's calls and microseconds so far."""
    return {
        name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
        for name, v in client.info("commandstats").items()
    }


def redis_cpu_s(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def configuration(args: argparse.Namespace, workdir: Path, processes: int) -> dict[str, Any]:
    servers = [Server(PUBSUB, sys.executable, workdir, None) for _ in range(processes)]
    prepare_database(servers[0])
    per_server = args.n // processes
    subs = [
        Sub("stream" if (i % per_server) < per_server // 2 else "gtws", i)
        for i in range(per_server * processes)
    ]
    writer = Writer(env_of(servers[0]), args.rate, workdir / f"writer-{processes}.log")
    client = redis.Redis(host=services.REDIS[0], port=services.REDIS[1])
    try:
        for i, server in enumerate(servers):
            await restarts.start_server(server, f"p{processes}-{i}", flush_redis=i == 0)
        for i, server in enumerate(servers):
            group = subs[i * per_server : (i + 1) * per_server]
            await open_all(group, server.port, args.concurrency, args.connect_timeout)
        idle_0, idle_start = redis_cpu_s(client), now()
        await asyncio.sleep(IDLE_S)  # Redis' own CPU with nothing published, subtracted below
        idle_per_s = (redis_cpu_s(client) - idle_0) / (now() - idle_start)
        say(f"efficiency: {len(subs):,} subscribers on {processes} server(s); writing")
        writer.start()
        await asyncio.sleep(1.0)  # warm-up: the first events' delivery is not measured
        pids = [s.process.pid for s in servers if s.process is not None]
        frames_0 = sum(len(s.seqs) for s in subs)
        cpu_0 = [cpu_s(pid) for pid in pids]
        redis_0 = redis_cpu_s(client)
        stats_0 = command_stats(client)
        commits_0 = len(writer.commits)
        start = now()
        await asyncio.sleep(args.seconds)  # the measured window: the writer keeps its rate
        elapsed = now() - start
        frames = sum(len(s.seqs) for s in subs) - frames_0
        cpu = [cpu_s(pid) - c for pid, c in zip(pids, cpu_0, strict=True)]
        redis_cpu = max(0.0, redis_cpu_s(client) - redis_0 - idle_per_s * elapsed)
        events = len(writer.commits) - commits_0
        stats = command_stats(client)
        per_event = {
            name: (
                (calls - stats_0.get(name, (0, 0))[0]) / events,
                (us - stats_0.get(name, (0, 0))[1]) / events,
            )
            for name, (calls, us) in stats.items()
            if events and calls > stats_0.get(name, (0, 0))[0]
        }
        last, flushed = await asyncio.to_thread(writer.stop)
        if not flushed:
            raise RunError("the writer's flush_events() timed out")
        missing = await restarts.wait_until(subs, last, args.event_timeout)
        commit_at = dict(writer.commits)
        delays = sorted(
            at - commit_at[seq]
            for s in subs
            for seq, at in s.arrived.items()
            if seq in commit_at and commit_at[seq] >= start
        )
        checked = check(subs, last)
        await close_all(subs)
    finally:
        if writer.process is not None and writer.process.poll() is None:
            supervise.stop(writer.process)
        for server in servers:
            server.stop()
        client.close()

    def pct(q: float) -> float | None:
        return 1000 * delays[min(len(delays) - 1, int(q * len(delays)))] if delays else None

    return {
        "processes": processes,
        "subscribers": len(subs),
        "events": events,
        "frames": frames,
        "frames_per_s": frames / elapsed,
        "server_cpu_s": cpu,
        "cpu_per_frame_us": 1e6 * sum(cpu) / frames if frames else None,
        "redis_cpu_per_event_us": 1e6 * redis_cpu / events if events else None,
        "redis_commands_per_event": per_event,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "median_ms": 1000 * statistics.median(delays) if delays else None,
        "missing": missing,
        **checked,
        "server_errors": [s.errors()[0] for s in servers],
        "command": servers[0].command,
    }


def measure(quick: bool = False) -> dict[str, Any]:
    return run(parse_args(["--quick"] if quick else []))


def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_open_files_limit()
    started = now()
    say(f"Redis: {services.start_private_redis()}")
    data: dict[str, Any] = {"n": args.n, "rate": args.rate, "seconds": args.seconds}
    if why := services.redis_available():
        data["error"] = why
        return data
    with workspace() as workdir:
        try:
            data["runs"] = [
                asyncio.run(configuration(args, workdir, processes)) for processes in (1, 2)
            ]
        except RunError as exc:
            data["error"] = str(exc)
    data["duration_s"] = now() - started
    return data


def targets(data: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    runs = data.get("runs") or []
    if len(runs) != 2:
        return [("two processes: CPU per frame within 1.25x one's", "not measured", None)]
    one, two = runs
    rows: list[tuple[str, str, bool | None]] = []
    if one["cpu_per_frame_us"] and two["cpu_per_frame_us"]:
        ratio = two["cpu_per_frame_us"] / one["cpu_per_frame_us"]
        rows.append(
            (
                f"two processes: server CPU per frame within {MAX_CPU_PER_FRAME_RATIO:g}x one's",
                f"{ratio:.2f}x",
                ratio <= MAX_CPU_PER_FRAME_RATIO,
            )
        )
    for r in runs:
        bad = r["lost"] + r["duplicated"] + r["out_of_order"]
        rows.append(
            (
                f"{r['processes']} process(es): nothing lost, duplicated or out of order",
                f"{r['lost']} / {r['duplicated']} / {r['out_of_order']}",
                bad == 0,
            )
        )
    return rows


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def section(data: dict[str, Any], command: str) -> list[str]:
    lines, measured = opening(EFFICIENCY_HEADING, data, command)
    if not measured:
        return lines
    lines += [
        f"{data['n']:,} subscribers (on each server half on the stream protocol, half on "
        "graphql-transport-ws) on one server process of this library, then on two with "
        f"{data['n'] // 2:,} each, RedisPubSubChannelLayer on a private redis-server; a writer "
        f"process saves {data['rate']:g} events/s, measured over {data['seconds']:g} s. The "
        "client is one process on the same 2 cores: frames/s is what was delivered of the "
        "offered load. See `bench/efficiency.py`.",
        "",
    ]
    rows = [
        [
            str(r["processes"]),
            f"{r['subscribers']:,}",
            f"{r['frames_per_s']:,.0f}",
            " + ".join(f"{c:.2f}" for c in r["server_cpu_s"]),
            _f(r["cpu_per_frame_us"]),
            _f(r["redis_cpu_per_event_us"]),
            f"{_f(r['p50_ms'], 0)} / {_f(r['p99_ms'], 0)}",
            f"{r['lost']} / {r['duplicated']}",
        ]
        for r in data["runs"]
    ]
    lines += table(
        [
            "server processes",
            "subscribers",
            "frames/s",
            "server CPU, s",
            "server CPU per frame, µs",
            "Redis CPU per event, µs",
            "commit to delivery p50 / p99, ms",
            "lost / duplicated",
        ],
        rows,
    )
    lines += ["", "Redis commands per event (calls, and the microseconds Redis spent in them):", ""]
    for r in data["runs"]:
        used = sorted(r["redis_commands_per_event"].items(), key=lambda kv: -kv[1][1])
        lines.append(
            f"- {r['processes']} process(es): "
            + ", ".join(f"`{name}` {calls:.2f} ({us:.0f} µs)" for name, (calls, us) in used)
        )
    lines += [
        "",
        *table(TARGET_HEADERS, [[w, m, verdict(ok)] for w, m, ok in targets(data)]),
        "",
        "A server of the run, from the repository root:",
        "",
        "```sh",
        data["runs"][-1]["command"],
        "```",
        "",
    ]
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="400 subscribers, 5 s")
    parser.add_argument("--n", type=int, help="subscribers in all (4000; --quick: 400)")
    parser.add_argument("--rate", type=float, default=5.0, help="events/s")
    parser.add_argument("--seconds", type=float, help="the measured window (20; --quick: 5)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--connect-timeout", type=float, default=300.0)
    parser.add_argument("--event-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    args.n = args.n or (400 if args.quick else 4000)
    args.seconds = args.seconds or (5.0 if args.quick else 20.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = run(args)
    command = " ".join(["python", rel(__file__), *(sys.argv[1:] if argv is None else argv)])
    print("\n".join(section(data, command)))
    if "error" in data:
        return 1
    return 0 if all(ok is not False for _, _, ok in targets(data)) else 2


if __name__ == "__main__":
    supervise.run_script(main)
