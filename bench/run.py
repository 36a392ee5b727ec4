"""``make bench``: this library against the bare limit, the usual patterns and its peers.

Real servers (uvicorn, one process each, ``--ws websockets-sansio``) and one real client process
(``bench/client.py``: asyncio + websockets, every subscriber in it) on loopback. For each contender
and each size N a fresh server is started, N subscribers connect and subscribe, and model changes
are triggered one at a time by an HTTP POST; then, at one size, a sustained-rate run and a run with
5% stalled readers; at the smallest size, connect/disconnect cycles for the leak check. The tables
go to the console and, with the exact commands, to bench/RESULTS.md.

    python bench/run.py                         # the default run (under 15 minutes)
    python bench/run.py --quick                 # a one-minute smoke run (prints only)
    python bench/run.py --only bare,sms-stream --sizes 100,1000 --events 10
    python bench/run.py --profile sms-stream,sms-gtws   # py-spy profiles: bench/PROFILE.md
    python bench/run.py --write-path-only       # only the write-path table (bench/write_path.py)

Every run but a profile one ends with the write-path table of ``bench/write_path.py`` (saves per
second of a registered model against the same model unregistered, on PostgreSQL, for each channel
layer; ``--no-write-path`` leaves it out). ``--write-path-only`` runs only that and rewrites only
the "Write path" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import profile_summary
import report
import venvs
from contenders import BY_NAME, CONTENDERS, Contender

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SERVERS = BENCH / "servers"
RESULTS = BENCH / "RESULTS.md"
#: The heading of the write-path section in RESULTS.md (``--write-path-only`` replaces only it).
WRITE_PATH_HEADING = "## Write path"
PROFILE = BENCH / "PROFILE.md"
#: The Redis the Redis-layer runs use: a private redis-server started by the benchmark (so that
#: INFO commandstats counts only the benchmark's commands), or with --shared-redis this one.
SHARED_REDIS = ("127.0.0.1", 6379)
REDIS: list[Any] = list(SHARED_REDIS)
#: The Redis database the benchmark's layers use (flushed before each Redis run).
REDIS_DB = 9
STARTUP_TIMEOUT = 60.0

started_at = time.monotonic()


def say(message: str) -> None:
    elapsed = time.monotonic() - started_at
    print(f"[{elapsed:6.1f} s] {message}", flush=True)


def rel(path: Path | str) -> str:
    """A path relative to the repository root when it is inside it."""
    with contextlib.suppress(ValueError):
        return str(Path(os.path.abspath(path)).relative_to(ROOT))
    return str(path)


# -- processes --------------------------------------------------------------------------------

#: Every child process still running: stopped on exit, error or signal.
_children: dict[int, subprocess.Popen[Any]] = {}


def spawn(command: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    process = subprocess.Popen(command, start_new_session=True, **kwargs)
    _children[process.pid] = process
    return process


def stop(process: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM the process (its own session: nothing else is signalled), then SIGKILL."""
    try:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(grace)
    finally:
        _children.pop(process.pid, None)


def stop_all() -> None:
    for process in list(_children.values()):
        stop(process, grace=2.0)


def _on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# -- services ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_command(*commands: str) -> list[bytes]:
    """Send inline commands to the local Redis; the first line of each reply."""
    with socket.create_connection((REDIS[0], REDIS[1]), timeout=5) as sock:
        sock.sendall("".join(f"{c}\r\n" for c in commands).encode())
        replies: list[bytes] = []
        buffer = b""
        while len(replies) < len(commands):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
            while b"\r\n" in buffer and len(replies) < len(commands):
                line, buffer = buffer.split(b"\r\n", 1)
                replies.append(line)
        return replies


def start_private_redis() -> str:
    """Start a redis-server of our own on a free loopback port (stopped on exit); describe it."""
    binary = shutil.which("redis-server")
    if binary is None:
        return f"the shared Redis at {REDIS[0]}:{REDIS[1]} (no redis-server on PATH)"
    port = free_port()
    spawn(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    REDIS[:] = ["127.0.0.1", port]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if redis_command("PING") == [b"+PONG"]:
                return f"a private `redis-server --port {port} --save '' --appendonly no`"
        time.sleep(0.05)
    REDIS[:] = list(SHARED_REDIS)
    return f"the shared Redis at {REDIS[0]}:{REDIS[1]} (the private redis-server did not start)"


def redis_available() -> str | None:
    """None when Redis answers PING, else the reason."""
    try:
        reply = redis_command("PING")
    except OSError as exc:
        return f"Redis at {REDIS[0]}:{REDIS[1]} does not answer ({exc})"
    return None if reply == [b"+PONG"] else f"Redis answered {reply!r}"


# -- servers ----------------------------------------------------------------------------------

PROBE = """
import importlib, importlib.metadata as m, json, platform

def has(name):
    try:
        importlib.import_module(name)
        return True
    except Exception:
        return False

names = ['Django', 'channels', 'channels-redis', 'strawberry-graphql', 'djangorestframework',
         'djangochannelsrestframework', 'django-channels-graphql-ws', 'graphene',
         'graphene-django', 'uvicorn', 'websockets', 'uvloop']
versions = {'Python': platform.python_version()}
for n in names:
    try:
        versions[n] = m.version(n)
    except m.PackageNotFoundError:
        pass
sansio = has('uvicorn.protocols.websockets.websockets_sansio_impl')
print(json.dumps({'sansio': sansio, 'uvloop': has('uvloop'), 'versions': versions}))
"""


@dataclass
class Interpreter:
    python: str
    ws: str
    loop: str
    versions: dict[str, str] = field(default_factory=dict)


_interpreters: dict[str, Interpreter] = {}


def interpreter(python: str) -> Interpreter:
    """What this interpreter's uvicorn offers (websockets-sansio where available, uvloop)."""
    if python not in _interpreters:
        out = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, check=True)
        info = json.loads(out.stdout)
        _interpreters[python] = Interpreter(
            python,
            "websockets-sansio" if info["sansio"] else "websockets",
            "uvloop" if info["uvloop"] else "asyncio",
            info["versions"],
        )
    return _interpreters[python]


@dataclass
class Server:
    contender: Contender
    python: str
    workdir: Path
    template_db: Path | None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    command: str = ""

    def env(self, db: Path | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "DJANGO_"))}
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("PYTHONPATH", None)
        if self.contender.settings:
            env["DJANGO_SETTINGS_MODULE"] = self.contender.settings
            env["BENCH_LAYER"] = self.contender.layer
            env["BENCH_REDIS_URL"] = f"redis://{REDIS[0]}:{REDIS[1]}/{REDIS_DB}"
        if db is not None:
            env["BENCH_DB"] = str(db)
        return env

    def start(self, label: str, extra_env: dict[str, str] | None = None) -> None:
        it = interpreter(self.python)
        db = None
        if self.template_db is not None:
            db = self.workdir / f"{label}.sqlite3"
            shutil.copyfile(self.template_db, db)
        if self.contender.redis:
            redis_command(f"SELECT {REDIS_DB}", "FLUSHDB")
        argv = [
            self.python,
            "serve.py",
            self.contender.app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ws",
            it.ws,
            "--loop",
            it.loop,
            "--http",
            "httptools",
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
            "--timeout-keep-alive",
            "3600",
            "--backlog",
            "4096",
        ]
        env = {**self.env(db), **(extra_env or {})}
        shown_env = {k: env[k] for k in sorted(env) if k.startswith(("BENCH_", "DJANGO_"))}
        # Shown as run: from bench/servers, so the interpreter's path is relative to it.
        python = os.path.relpath(os.path.abspath(argv[0]), SERVERS)
        self.command = "cd bench/servers && " + shlex.join(
            [*(f"{k}={v}" for k, v in shown_env.items()), python, *argv[1:]]
        )
        self.log_path = self.workdir / f"{label}.log"
        with self.log_path.open("wb") as log:
            self.process = spawn(argv, cwd=SERVERS, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise RuntimeError(f"server did not answer in {STARTUP_TIMEOUT:.0f} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path else ""

    def errors(self) -> tuple[int, str]:
        """How many tracebacks the server logged, and its most frequent log lines."""
        if self.log_path is None or not self.log_path.exists():
            return 0, ""
        text = self.log_path.read_text(errors="replace")
        lines = Counter(
            line.strip()
            for line in text.splitlines()
            if line.strip()
            and not line.startswith((" ", "Traceback", "During handling", "The above exception"))
        )
        return text.count("Traceback"), "; ".join(f"{k!r} x{v}" for k, v in lines.most_common(2))

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


def prepare_template(contender: Contender, python: str, workdir: Path) -> Path | None:
    """One migrated SQLite file per (interpreter, settings), copied for every server start."""
    if contender.settings is None:
        return None
    path = workdir / f"template-{Path(python).parent.parent.name}-{contender.settings}.sqlite3"
    if not path.exists():
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "DJANGO_"))}
        env.update(DJANGO_SETTINGS_MODULE=contender.settings, BENCH_DB=str(path))
        subprocess.run(
            [python, "prepare_db.py"], cwd=SERVERS, env=env, check=True, capture_output=True
        )
    return path


# -- runs -------------------------------------------------------------------------------------


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
            _children.pop(client.pid, None)
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


# -- the report -------------------------------------------------------------------------------


def machine() -> list[str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    return [
        f"{os.cpu_count()} cores ({cpu}){memory}, Linux {platform.release()}, "
        f"client and driver on Python {platform.python_version()}."
    ]


def versions_table(used: dict[str, str]) -> list[str]:
    rows = []
    for name, python in used.items():
        v = interpreter(python).versions
        rows.append([name, rel(python), ", ".join(f"{k} {val}" for k, val in v.items())])
    return report.table(["contender", "interpreter", "versions"], rows)


def write_results(
    path: Path,
    argv: list[str],
    options: Options,
    run: report.Run,
    commands: dict[str, list[str]],
    used: dict[str, str],
    duration: float,
    notes: list[str],
    redis_used: str = "",
    write_path: dict[str, Any] | None = None,
) -> None:
    command = shlex.join(["python", "bench/run.py", *argv])
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` (`make bench BENCH_ARGS=...` runs the same) on "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, in {duration / 60:.1f} min.",
        "",
        *machine(),
        "",
        "## How it is measured",
        "",
        "Every contender serves one model (`Item`: id, name, seq) from one uvicorn process "
        "(`--ws websockets-sansio`, uvloop, httptools), started fresh for each N. One client "
        "process (asyncio + `websockets`' sans-I/O protocol) holds every subscriber. An event is "
        "one `POST /trigger?seq=k` that saves the item with `Model.save()` (SQLite), so each "
        "contender's own signal handling runs; the bare limit's POST hands one pre-encoded frame "
        "to every socket's queue.",
        "",
        "- **p50/p99 ms**: change-to-last-delivery latency, client clock, from just before the "
        "POST is written to the receipt of the frame by the last of the N subscribers; events "
        f"one at a time, at least {options.events} per size and more (up to "
        f"{options.frames_target:,} frames or {options.events_budget:g} s) at small N. With few "
        "events p99 is the slowest event.",
        "- **frames/s**: N / latency, the median over those events.",
        "- **CPU µs/frame**: server utime+stime (`/proc/PID/stat`) from the first POST until the "
        "server is idle again, less the idle CPU of an equally long quiet interval right after "
        f"(at most {options.quiet_cap:g} s, scaled), divided by the frames delivered. It "
        "includes the POST, the database write and the serialization: at small N these fixed "
        "costs per event dominate.",
        "- **RSS KB/sub**: server VmRSS (`/proc/PID/status`) with N idle subscribers minus before "
        "they connected (after a warm-up of 10), per subscriber; **after cycles**: the same "
        f"after {options.leak_cycles} more times closing and reconnecting all N "
        f"(at N={options.leak_size}); **growth/cycle**: the RSS growth per cycle after the "
        "first one (by then the allocator has reached its high-water mark, so steady growth here "
        "is memory kept per connection).",
        "- **connect+subscribe s**: wall time to connect and subscribe all N (64 handshakes in "
        "flight); **delivered/expected** over the timed events; **dup** (a frame received twice "
        "by one socket) and **order** (a socket receiving an older seq after a newer one) over "
        "every phase of the run.",
        "- **(x)**: the figure divided by the bare limit's at the same N in this run.",
        "",
        "## Results",
        "",
        *report.main_table(run),
        "",
    ]
    rate = report.rate_table(run)
    if rate:
        lines += [
            f"### Sustained rate and stalled readers (N={run.phase_size:,})",
            "",
            f"Sustained: {options.rate:g} events/s for {options.sustained_seconds:g} s without "
            "waiting for deliveries (frames/s: frames delivered / time from the first POST to the "
            f"last receipt). Stalled readers: {options.rate:g} events/s for "
            f"{options.stall_seconds:g} s with {options.stall_pad:,}-byte padded frames, first "
            "with every subscriber reading, then with "
            f"{options.stall_fraction:.0%} of them (sockets with a 4 KB receive buffer) no longer "
            "reading; the latency is the readers'. A ratio near 1 means the stalled readers do "
            "not delay the others.",
            "",
            *rate,
            "",
        ]
    redis = report.redis_table(run)
    if redis:
        lines += [
            "### Redis commands per event",
            "",
            "`INFO commandstats` deltas over the events, less the commands of the quiet interval "
            f"(the layers' blocking receives), per event, on {redis_used or 'Redis'}, which the "
            f"Redis-layer runs use (database {REDIS_DB}).",
            "",
            *redis,
            "",
        ]
    lines += ["## Targets", "", *report.targets(run), ""]
    if write_path is not None:
        lines += report.write_path_section(write_path, command)
    if notes:
        lines += ["## Notes", "", *(f"- {note}" for note in notes), ""]
    lines += ["## Versions", "", *versions_table(used), "", "## Exact commands", ""]
    lines += [
        f"`{command}` from the repository root. For each contender: its server (one per N; the "
        "database file is a fresh copy of a migrated template in a temporary folder, the port a "
        "free one), then the client of each run.",
        "",
    ]
    for name, cmds in commands.items():
        lines += [f"**{name}**", "", "```sh", *cmds, "```", ""]
    path.write_text("\n".join(lines))


# -- the write path ---------------------------------------------------------------------------


def run_write_path(quick: bool) -> tuple[dict[str, Any] | None, str]:
    """bench/write_path.py in a process of its own (its progress shown); its figures, or None
    and why not."""
    say("write path (bench/write_path.py) ...")
    with tempfile.TemporaryDirectory(prefix="sms-bench-write-") as tmp:
        out = Path(tmp) / "write_path.json"
        command = [sys.executable, str(BENCH / "write_path.py"), "--json", str(out)]
        if quick:
            command.append("--quick")
        # Its table is printed again with the others at the end: only its progress is shown now.
        process = spawn(command, stdout=subprocess.DEVNULL)
        try:
            returncode = process.wait(600)
        except subprocess.TimeoutExpired:
            stop(process)
            return None, "bench/write_path.py ran over 600 s"
        finally:
            _children.pop(process.pid, None)
        if returncode != 0 or not out.exists():
            return None, f"bench/write_path.py exited with {returncode}"
        data: dict[str, Any] = json.loads(out.read_text())
    say(f"write path: done in {data.get('duration_s', 0):.0f} s")
    return data, ""


def replace_section(text: str, heading: str, section: list[str]) -> str:
    """``text`` (a RESULTS.md) with its section ``heading`` (up to the next ``## `` heading)
    replaced by ``section``; without one, ``section`` goes before "## Notes" or
    "## Versions", or at the end."""
    lines = text.splitlines()
    body = list(section)
    while body and not body[-1].strip():
        body.pop()
    body.append("")
    if heading in lines:
        start = lines.index(heading)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
    else:
        start = end = next(
            (i for i, line in enumerate(lines) if line in ("## Notes", "## Versions")), len(lines)
        )
    return "\n".join([*lines[:start], *body, *lines[end:]]) + "\n"


def write_path_main(args: argparse.Namespace, argv: list[str]) -> int:
    """Only the write path: printed, and its section of RESULTS.md rewritten (not --quick)."""
    data, why = run_write_path(args.quick)
    if data is None:
        print(why, file=sys.stderr)
        return 1
    command = shlex.join(["python", "bench/run.py", *argv])
    section = report.write_path_section(data, command)
    print()
    print("\n".join(section))
    path = args.results or (None if args.quick else RESULTS)
    if path is None:
        print("(quick run: nothing written, pass --results PATH to keep it)")
        return 0
    text = path.read_text() if path.exists() else ""
    path.write_text(replace_section(text, WRITE_PATH_HEADING, section))
    print(f"the {WRITE_PATH_HEADING[3:]!r} section of {rel(path)} rewritten")
    return 0


# -- profile ----------------------------------------------------------------------------------


def gc_lines(stats: dict[str, Any], n: int, cpu_s: float | None) -> list[str]:
    """The server's garbage collections while the events were delivered, and its objects."""
    if not {"before_connect", "before_events", "after_events"} <= set(stats):
        return []
    before, after = stats["before_events"]["generations"], stats["after_events"]["generations"]
    rows = [
        [
            gen,
            str(after[gen]["collections"] - before[gen]["collections"]),
            report.number(after[gen]["total_ms"] - before[gen]["total_ms"]),
            report.number(after[gen]["max_ms"]),
        ]
        for gen in sorted(after)
    ]
    objects = stats["before_events"]["tracked_objects"] - stats["before_connect"]["tracked_objects"]
    pause = sum(after[g]["total_ms"] - before[g]["total_ms"] for g in after) / 1e3
    share = (
        f"The collector paused the server for {pause:.2f} s of the {cpu_s:.2f} s of CPU the "
        f"events took ({100 * pause / cpu_s:.0f}%). "
        if cpu_s
        else ""
    )
    return [
        f"Objects tracked by the garbage collector: {objects / n:,.0f} more per subscriber with "
        f"the {n:,} connected ({stats['before_events']['tracked_objects']:,} in all, thresholds "
        f"{tuple(stats['before_events']['thresholds'])}). {share}Collections while the events "
        "were delivered:",
        "",
        *report.table(
            ["generation", "collections", "pause ms in all", "longest pause ms (whole run)"], rows
        ),
        "",
    ]


def profile_main(args: argparse.Namespace, argv: list[str], options: Options) -> int:
    """py-spy the server of each named contender while N subscribers connect and while events
    are delivered; the summaries go to bench/PROFILE.md."""
    names = [name.strip() for name in args.profile.split(",") if name.strip()]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        sys.exit(f"unknown contenders: {', '.join(unknown)}")
    n = max(options.sizes)
    command = shlex.join(["python", "bench/run.py", *argv])
    text = [
        "# Profiles",
        "",
        f"Written by `{command}` on {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}: "
        f"py-spy at 250 Hz (`--gil --function`: the thread running Python, by function) over "
        f"the server process while {n:,} subscribers "
        "connect and subscribe, and while events are delivered one at a time (percentages of the "
        "samples in which the server was busy; the figures in each heading were measured under "
        "the profiler, which slows the server). The garbage collector's pauses are timed by a "
        "`gc.callbacks` hook in the server (`BENCH_GC_STATS=1`, profile runs only).",
        "",
    ]
    setup_log: list[str] = []
    commands: dict[str, list[str]] = {}
    with workspace() as workdir:
        for name in names:
            contender = BY_NAME[name]
            python = python_for(contender, setup_log)
            profile_dir = workdir / f"profile-{name}"
            profile_dir.mkdir()
            say(f"profiling {name} at N={n:,} ...")
            phases = {
                "gcstats": True,
                "profile_dir": profile_dir,
                "events": max(options.events, 10),
                "frames_target": 10**9,
                "events_budget": 10.0,
            }
            result = run_once(contender, python, workdir, n, options, phases, commands)
            say(f"{name} N={n:,}: {describe(result)}")
            e = result.get("events") or {}
            cpu_per_frame = (
                e["cpu_s"] * 1e6 / e["delivered"] if e.get("cpu_s") and e.get("delivered") else None
            )
            text += [
                f"## {name}: {contender.title}",
                "",
                f"N={n:,}: connect+subscribe {report.number(result.get('connect_s'), 2)} s; "
                f"{e.get('events', 0)} events, p50 {report.number(e.get('p50_ms'))} ms, "
                f"p99 {report.number(e.get('p99_ms'))} ms, "
                f"{report.number(cpu_per_frame)} µs of server CPU per frame (all of it, "
                "idle not subtracted).",
                "",
                *gc_lines(result.get("gc") or {}, n, e.get("cpu_s")),
            ]
            for phase, title in (
                ("connect", f"connecting and subscribing {n:,} sockets"),
                ("events", "delivering the events"),
            ):
                path = profile_dir / f"{phase}.txt"
                body = (
                    profile_summary.lines(profile_summary.read(path))
                    if path.exists()
                    else ["(py-spy wrote nothing: is ptrace allowed?)"]
                )
                text += [f"### {name}: {title}", "", *body, ""]
    text += ["## Commands", "", "```sh"]
    for cmds in commands.values():
        text += cmds
    text += ["```", ""]
    path = args.results or PROFILE
    path.write_text("\n".join(text))
    print("\n".join(text))
    print(f"written to {rel(path)}")
    return 0


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="contenders: " + ", ".join(c.name for c in CONTENDERS),
    )
    parser.add_argument("--sizes", default="100,1000,4000", help="subscriber counts N")
    parser.add_argument("--events", type=int, default=5, help="at least this many events per N")
    parser.add_argument("--only", help="comma-separated contenders (the bare limit is added)")
    parser.add_argument("--skip", help="comma-separated contenders to leave out")
    parser.add_argument("--quick", action="store_true", help="a one-minute smoke run")
    parser.add_argument(
        "--frames-target", type=int, default=30000, help="more events per N up to these frames"
    )
    parser.add_argument("--events-budget", type=float, default=1.0, help="seconds per N")
    parser.add_argument("--leak-cycles", type=int, default=10)
    parser.add_argument("--leak-size", type=int, help="N of the leak check (default: smallest)")
    parser.add_argument("--phase-size", type=int, default=1000, help="N of the rate runs")
    parser.add_argument("--rate", type=float, default=10.0, help="events/s of the rate runs")
    parser.add_argument("--sustained-seconds", type=float, default=2.0)
    parser.add_argument("--stall-seconds", type=float, default=1.5)
    parser.add_argument("--stall-fraction", type=float, default=0.05)
    parser.add_argument("--stall-pad", type=int, default=8192)
    parser.add_argument(
        "--bound",
        type=float,
        default=45.0,
        help="seconds a peer's or pattern's run may be predicted to take before it is skipped "
        "and reported as timeout",
    )
    parser.add_argument("--no-redis-n1", action="store_true", help="skip the N=1 Redis runs")
    parser.add_argument(
        "--shared-redis",
        action="store_true",
        help=f"use the Redis at {SHARED_REDIS[0]}:{SHARED_REDIS[1]} instead of a private one",
    )
    parser.add_argument("--results", type=Path, help=f"where to write (default {rel(RESULTS)})")
    parser.add_argument("--json", type=Path, help="also write every raw figure to this file")
    parser.add_argument(
        "--profile",
        metavar="NAME,...",
        help=f"py-spy the named contenders at the largest size instead: {rel(PROFILE)}",
    )
    parser.add_argument("--list", action="store_true", help="list the contenders")
    parser.add_argument(
        "--write-path-only",
        action="store_true",
        help="only the write-path table (bench/write_path.py): printed, and its section of "
        "RESULTS.md rewritten (with --quick: printed only)",
    )
    parser.add_argument(
        "--no-write-path", action="store_true", help="leave the write-path table out"
    )
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    options = Options(
        sizes=sizes,
        events=args.events,
        frames_target=args.frames_target,
        events_budget=args.events_budget,
        leak_size=args.leak_size or sizes[0],
        leak_cycles=args.leak_cycles,
        phase_size=None,
        rate=args.rate,
        sustained_seconds=args.sustained_seconds,
        stall_seconds=args.stall_seconds,
        stall_fraction=args.stall_fraction,
        stall_pad=args.stall_pad,
        bound=args.bound,
        redis_n1=not args.no_redis_n1,
        quiet_cap=1.0,
    )
    if args.quick:
        options.sizes = [100] if args.sizes == "100,1000,4000" else sizes
        options.events = min(args.events, 2)
        options.frames_target = 0
        options.events_budget = 0.0
        options.leak_size = options.sizes[0]
        options.leak_cycles = min(args.leak_cycles, 1)
        options.sustained_seconds = min(args.sustained_seconds, 0.5)
        options.stall_seconds = min(args.stall_seconds, 0.5)
        options.redis_n1 = False
        options.quiet_cap = 0.3
        options.pause = 0.05
    if args.leak_size and args.leak_size not in options.sizes:
        options.sizes = sorted({*options.sizes, args.leak_size})
    # The rate runs at --phase-size, or the largest size below it.
    below = [n for n in options.sizes if n <= args.phase_size]
    options.phase_size = max(below) if below else options.sizes[0]
    return options


def chosen(args: argparse.Namespace) -> list[Contender]:
    names = [c.name for c in CONTENDERS]
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - set(names)
        if unknown:
            sys.exit(
                f"unknown contenders: {', '.join(sorted(unknown))} (known: {', '.join(names)})"
            )
        wanted.add("bare")
        names = [n for n in names if n in wanted]
    if args.skip:
        skipped = {n.strip() for n in args.skip.split(",")}
        names = [n for n in names if n not in skipped or n == "bare"]
    return [BY_NAME[n] for n in names]


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    """A temporary folder for databases and server logs; kept (and named) after a failure."""
    path = Path(tempfile.mkdtemp(prefix="sms-bench-"))
    keep = False
    try:
        yield path
    except BaseException:
        keep = True
        raise
    finally:
        stop_all()
        if keep:
            print(f"server logs kept in {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.list:
        for c in CONTENDERS:
            print(f"{c.name:18} {c.title}")
        return 0
    signal.signal(signal.SIGTERM, _on_signal)
    options = options_from(args)
    if args.profile:
        return profile_main(args, argv, options)
    if args.write_path_only:
        return write_path_main(args, argv)
    contenders = chosen(args)
    run = report.Run(
        sizes=options.sizes,
        leak_size=options.leak_size,
        leak_cycles=options.leak_cycles,
        phase_size=options.phase_size,
    )
    commands: dict[str, list[str]] = {}
    used: dict[str, str] = {}
    notes: list[str] = []
    setup_log: list[str] = []
    redis_used = ""
    if any(c.redis for c in contenders):
        redis_used = (
            f"the shared Redis at {REDIS[0]}:{REDIS[1]}"
            if args.shared_redis
            else start_private_redis()
        )
        say(f"Redis: {redis_used}")
    redis_down = redis_available()
    say(
        f"sizes {', '.join(f'{n:,}' for n in options.sizes)}; contenders "
        f"{', '.join(c.name for c in contenders)}"
    )
    with workspace() as workdir:
        for contender in contenders:
            if contender.redis and redis_down:
                run.results[contender.name] = {
                    n: {"n": n, "skipped": redis_down} for n in options.sizes
                }
                notes.append(f"{contender.name}: skipped, {redis_down}")
                continue
            try:
                python = python_for(contender, setup_log)
            except venvs.VenvError as exc:
                reason = str(exc).splitlines()[0]
                run.results[contender.name] = {
                    n: {"n": n, "skipped": reason} for n in options.sizes
                }
                notes.append(f"{contender.name}: skipped, {reason}")
                say(f"{contender.name}: skipped ({reason})")
                continue
            used[contender.name] = python
            run_contender(contender, python, workdir, options, run, commands)
    write_path: dict[str, Any] | None = None
    if not args.no_write_path:
        write_path, why = run_write_path(args.quick)
        if write_path is None:
            notes.append(f"write path: not measured, {why}")
    duration = time.monotonic() - started_at
    notes += [f"peer virtualenv {line}" for line in setup_log]
    for name, by_size in run.results.items():
        for n, result in by_size.items():
            if result.get("server_errors"):
                notes.append(
                    f"{name} N={n:,}: the server logged {result['server_errors']} tracebacks "
                    f"(most frequent lines: {result.get('server_log')})"
                )
    print()
    print("\n".join(report.main_table(run)))
    rate = report.rate_table(run)
    if rate:
        print(f"\nSustained rate and 5% stalled readers, N={options.phase_size:,}:")
        print("\n".join(rate))
    redis = report.redis_table(run)
    if redis:
        print("\nRedis commands per event:")
        print("\n".join(redis))
    print("\nTargets:")
    print("\n".join(report.targets(run)))
    if write_path is not None:
        print("\nWrite path:")
        print("\n".join(report.write_path_table(write_path)))
        print("\n".join(report.write_path_targets(write_path)))
    if args.json:
        args.json.write_text(
            json.dumps(
                {"results": run.results, "redis_n1": run.redis_n1, "write_path": write_path},
                indent=1,
            )
        )
    path = args.results or (None if args.quick else RESULTS)
    if path is not None:
        write_results(
            path, argv, options, run, commands, used, duration, notes, redis_used, write_path
        )
        print(f"\nwritten to {rel(path)} in {duration / 60:.1f} min")
    else:
        print(f"\n(quick run: {duration:.0f} s; nothing written, pass --results PATH to keep it)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
    finally:
        stop_all()
