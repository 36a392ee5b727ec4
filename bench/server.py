"""A contender's server process for ``bench/run.py``: what its interpreter's uvicorn offers,
its migrated template database, its start (one uvicorn process, from bench/servers) until
``/health`` answers, its log."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from contenders import Contender
from services import REDIS, REDIS_DB, free_port, redis_command
from supervise import BENCH, spawn, stop

SERVERS = BENCH / "servers"
STARTUP_TIMEOUT = 60.0

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
    #: The address it listens on ("0.0.0.0": also a network namespace's client, bench/netns.py).
    host: str = "127.0.0.1"
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

    def start(
        self, label: str, extra_env: dict[str, str] | None = None, flush_redis: bool = True
    ) -> None:
        """Start the server (its log ``<label>.log``) and wait until ``/health`` answers. A
        Redis contender's database is flushed first unless ``flush_redis`` is False (a restart
        that must find the history it left)."""
        it = interpreter(self.python)
        db = None
        if self.template_db is not None:
            db = self.workdir / f"{label}.sqlite3"
            shutil.copyfile(self.template_db, db)
        if self.contender.redis and flush_redis:
            redis_command(f"SELECT {REDIS_DB}", "FLUSHDB")
        argv = [
            self.python,
            "serve.py",
            self.contender.app,
            "--host",
            self.host,
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
