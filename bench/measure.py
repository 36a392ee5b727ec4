"""The measured runs of ``bench/run.py``: for a contender and each size N a fresh server and
one client process (bench/client.py) whose JSON line is the result, the sizes predicted to
overrun the bound skipped; the write path, the restarts and the filtered dispatch each in a process
of its own (bench/write_path.py, bench/restarts.py, bench/filters.py)."""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import report
import venvs
from contenders import Contender
from server import Server, prepare_template
from services import REDIS
from supervise import BENCH, forget, rel, say, spawn, stop


@dataclass
class Options:
    sizes: list[int]
    events: int
    frames_target: int
    events_budget: float
    leak_size: int | None
    leak_cycles: int
    phase_size: int | None
    rate: float
    sustained_seconds: float
    stall_seconds: float
    stall_fraction: float
    stall_pad: int
    bound: float
    redis_n1: bool
    quiet_cap: float
    #: Seconds between the client's steps (None: the client's default).
    pause: float | None = None
    #: The rates of the highest-sustained-rate run (at the rate runs' N), each for step_seconds.
    rate_steps: tuple[float, ...] = ()
    step_seconds: float = 5.0
    #: Seconds the client may take to connect and subscribe every socket.
    connect_timeout: float = 120.0


def client_command(
    contender: Contender, server: Server, n: int, options: Options, phases: dict[str, Any]
) -> list[str]:
    command = [
        sys.executable,
        str(BENCH / "client.py"),
        "--port",
        str(server.port),
        "--pid",
        str(server.process.pid if server.process else 0),
        "--kind",
        contender.kind,
        "--n",
        str(n),
        "--events",
        str(phases.get("events", options.events)),
        "--frames-target",
        str(phases.get("frames_target", options.frames_target)),
        "--events-budget",
        str(phases.get("events_budget", options.events_budget)),
        "--quiet-cap",
        str(options.quiet_cap),
        "--connect-timeout",
        str(options.connect_timeout),
    ]
    if options.pause is not None:
        command += ["--pause", str(options.pause)]
    for document in contender.documents:
        command += ["--document", document]
    if phases.get("leak"):
        command += ["--leak-cycles", str(options.leak_cycles)]
    if phases.get("rates"):
        command += [
            "--rate",
            str(options.rate),
            "--sustained-seconds",
            str(options.sustained_seconds),
            "--stall-seconds",
            str(options.stall_seconds),
            "--stall-fraction",
            str(options.stall_fraction),
            "--stall-pad",
            str(options.stall_pad),
        ]
        if options.rate_steps:
            command += [
                "--rate-steps",
                ",".join(f"{r:g}" for r in options.rate_steps),
                "--step-seconds",
                str(options.step_seconds),
            ]
    if contender.redis:
        command += ["--redis", f"{REDIS[0]}:{REDIS[1]}"]
    if phases.get("profile_dir"):
        command += ["--profile-dir", str(phases["profile_dir"])]
    if phases.get("gcstats"):
        command += ["--gc-stats"]
    return command


def shown(command: list[str]) -> str:
    """A client command as RESULTS.md shows it (100 documents abbreviated)."""
    parts: list[str] = []
    documents = 0
    for i, part in enumerate(command):
        if i and command[i - 1] == "--document":
            documents += 1
            if documents > 1:
                parts.pop()
                continue
        parts.append(part)
    text = shlex.join([rel(parts[0]), rel(parts[1]), *parts[2:]])
    if documents > 1:
        text += f"  # and --document for each of the {documents} documents"
    return text


def run_once(
    contender: Contender,
    python: str,
    workdir: Path,
    n: int,
    options: Options,
    phases: dict[str, Any],
    commands: dict[str, list[str]],
) -> dict[str, Any]:
    """One fresh server, one client process; what the client printed, plus notes."""
    label = f"{contender.name}-{n}"
    server = Server(contender, python, workdir, prepare_template(contender, python, workdir))
    try:
        server.start(label, {"BENCH_GC_STATS": "1"} if phases.get("gcstats") else None)
        command = client_command(contender, server, n, options, phases)
        commands.setdefault(contender.name, [server.command])
        commands[contender.name].append(shown(command))
        timeout = phases.get("timeout", options.bound * 4 + 120)
        client = spawn(command, stdout=subprocess.PIPE, text=True)
        try:
            out, _ = client.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(client)
            return {"n": n, "timeout": f"timeout: the client ran over {timeout:.0f} s"}
        finally:
            forget(client)
        lines = [line for line in (out or "").splitlines() if line.startswith("{")]
        if client.returncode != 0 or not lines:
            return {"n": n, "error": f"client exited with {client.returncode}"}
        result: dict[str, Any] = json.loads(lines[-1])
    except RuntimeError as exc:
        return {"n": n, "error": str(exc).splitlines()[0]}
    finally:
        server.stop()
    result["server_errors"], result["server_log"] = server.errors()
    if result["server_errors"]:
        say(f"  the server logged {result['server_errors']} tracebacks: {result['server_log']}")
    return result


def predicted_seconds(
    history: list[tuple[int, dict[str, Any]]], n: int, events: int
) -> float | None:
    """A guess of how long a run at N takes, from the runs at smaller sizes: the latency grows
    as N to the power seen between the last two sizes (at least linearly)."""
    points = [(m, (r.get("events") or {}).get("p50_ms")) for m, r in history]
    points = [(m, p) for m, p in points if p]
    if not points or not history[-1][1].get("connect_s"):
        return None
    (n_last, p_last), exponent = points[-1], 1.0
    if len(points) >= 2:
        (n_a, p_a), (n_b, p_b) = points[-2], points[-1]
        exponent = min(2.5, max(1.0, math.log(p_b / p_a) / math.log(n_b / n_a)))
    latency = p_last / 1e3 * (n / n_last) ** exponent
    connect = history[-1][1]["connect_s"] * n / history[-1][0] * 1.25
    return float(connect + (events + 2) * latency + 5)


def describe(result: dict[str, Any]) -> str:
    if result.get("skipped") or result.get("timeout") or result.get("error"):
        return report.status(result) or ""
    e = result.get("events") or {}
    return (
        f"p50 {report.number(e.get('p50_ms'))} ms, p99 {report.number(e.get('p99_ms'))} ms, "
        f"{report.number(e.get('cpu_us_per_frame'))} µs CPU/frame, "
        f"{report.number(result.get('rss_per_sub_kb'))} KB/sub, "
        f"{e.get('delivered')}/{e.get('expected')} delivered"
    )


def run_contender(
    contender: Contender,
    python: str,
    workdir: Path,
    options: Options,
    run: report.Run,
    commands: dict[str, list[str]],
) -> None:
    by_size: dict[int, dict[str, Any]] = {}
    run.results[contender.name] = by_size
    history: list[tuple[int, dict[str, Any]]] = []
    for n in options.sizes:
        if history:
            n_prev, last = history[-1]
            if report.status(last):
                by_size[n] = {"n": n, "skipped": f"N={n_prev:,} did not complete"}
                say(f"{contender.name} N={n:,}: skipped")
                continue
            # Only the others are cut short: this library and the bare limit always run.
            guess = predicted_seconds(history, n, options.events)
            bounded = contender.group != "ours" and contender.name != "bare"
            if bounded and guess is not None and guess > options.bound:
                by_size[n] = {
                    "n": n,
                    "timeout": f"timeout: predicted {guess:.0f} s from N={n_prev:,} > bound "
                    f"{options.bound:.0f} s",
                }
                say(f"{contender.name} N={n:,}: {by_size[n]['timeout']}")
                continue
        phases: dict[str, Any] = {
            "leak": n == options.leak_size and options.leak_cycles > 0,
            "rates": n == options.phase_size,
        }
        say(f"{contender.name} N={n:,} ...")
        result = run_once(contender, python, workdir, n, options, phases, commands)
        by_size[n] = result
        say(f"{contender.name} N={n:,}: {describe(result)}")
        history.append((n, result))
    if contender.redis and contender.group == "ours" and options.redis_n1:
        say(f"{contender.name} N=1 (Redis commands per event) ...")
        result = run_once(
            contender,
            python,
            workdir,
            1,
            options,
            {"events": 20, "frames_target": 0, "events_budget": 0},
            commands,
        )
        run.redis_n1[contender.name] = result
        say(f"{contender.name} N=1: {report.number(report.redis_calls(result))} calls per event")


def python_for(contender: Contender, setup_log: list[str]) -> str:
    if contender.venv is None:
        return sys.executable
    return str(venvs.ensure(venvs.PEER_VENVS[contender.venv], setup_log))


def run_script(
    script: str, options: list[str], timeout: int, json_on_failure: bool = False
) -> tuple[dict[str, Any] | None, str]:
    """``bench/<script> --json FILE <options>`` in a process of its own (its progress shown; its
    tables are printed again with the others at the end, so not its stdout); the figures it
    wrote to FILE, or None and why not. ``json_on_failure``: the script writes its figures when
    it fails too (an error among them), so its exit status is not looked at."""
    with tempfile.TemporaryDirectory(prefix=f"sms-bench-{Path(script).stem}-") as tmp:
        out = Path(tmp) / f"{Path(script).stem}.json"
        command = [sys.executable, str(BENCH / script), "--json", str(out), *options]
        process = spawn(command, stdout=subprocess.DEVNULL)
        try:
            returncode = process.wait(timeout)
        except subprocess.TimeoutExpired:
            stop(process)
            return None, f"bench/{script} ran over {timeout:,} s"
        finally:
            forget(process)
        if (returncode != 0 and not json_on_failure) or not out.exists():
            return None, f"bench/{script} exited with {returncode}"
        data: dict[str, Any] = json.loads(out.read_text())
    return data, ""


def run_write_path(quick: bool) -> tuple[dict[str, Any] | None, str]:
    """bench/write_path.py in a process of its own (its progress shown); its figures, or None
    and why not."""
    say("write path (bench/write_path.py) ...")
    data, why = run_script("write_path.py", ["--quick"] if quick else [], 600)
    if data is not None:
        say(f"write path: done in {data.get('duration_s', 0):.0f} s")
    return data, why


def run_restarts(
    quick: bool, n: int | None, shared_redis: bool
) -> tuple[dict[str, Any] | None, str]:
    """bench/restarts.py in a process of its own (its progress shown; a private redis-server of
    its own unless ``shared_redis``); its figures, or None and why not."""
    say("restarts and storms (bench/restarts.py) ...")
    # A missed target is profiled (one more cycle under py-spy), except in a smoke run.
    options = ["--quick"] if quick else ["--profile-dir", "auto"]
    if n is not None:
        options += ["--n", str(n)]
    if shared_redis:
        options += ["--redis", f"{REDIS[0]}:{REDIS[1]}"]
    data, why = run_script("restarts.py", options, 1200, json_on_failure=True)
    if data is not None:
        # The command as RESULTS.md shows it: the temporary JSON file left out.
        data["argv"] = options
        say(f"restarts: done in {data.get('duration_s', 0):.0f} s")
    return data, why


def run_filters(quick: bool) -> tuple[dict[str, Any] | None, str]:
    """bench/filters.py (the filtered dispatch, in-process) in a process of its own; its
    figures, or None and why not."""
    say("filtered dispatch (bench/filters.py) ...")
    data, why = run_script("filters.py", ["--quick"] if quick else [], 300)
    if data is not None:
        say(f"filtered dispatch: done in {data.get('duration_s', 0):.0f} s")
    return data, why
