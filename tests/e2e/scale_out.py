"""Helpers of the scale-out tests: several processes sharing PostgreSQL and a Redis channel layer.

* :class:`RedisServer`: a private ``redis-server`` (no persistence) that a test may stop and start;
* :func:`ensure_database`: the dedicated PostgreSQL database, created and migrated once per run;
* :class:`ScaleOutServer`: the harness's :class:`LiveServer` on PostgreSQL and the Redis layer that
  the outer run selects (``SMS_CHANNEL_LAYER``);
* :func:`run_command` / :func:`paused_command`: the ``save_products`` management command, the plain
  synchronous process that saves models;
* :class:`Subscriber`, :class:`Audience`: one subscription on a socket of either protocol
  (``clients``), and the marker barrier that proves what each one received, exactly.

Markers: every subscriber of an :class:`Audience` matches the updates of one "marker" product, so
renaming it (through server A) is an event that all of them must receive. A subscriber has its
subscriptions in place once a marker arrives. Changes whose events were all sent before a rename
(the command that saved them has exited: a publish returns once Redis has the message) reach every
process before that marker's event, since Redis hands them on in the order it took them; so once
the marker arrives, what came in between is all that will ever come of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg import sql

from .clients import FrameTimeout, Socket
from .harness import FRAME_TIMEOUT, ROOT, LiveServer, free_port, stop_process

#: The channel layers of the services configuration (``tests/run_services.py``).
SERVICE_LAYERS = ("redis", "redis-pubsub")
#: The database every process of these tests shares (created when missing, never dropped).
PG_NAME = "sms_scale_out"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=5"
#: Serialises the creation and migration of ``PG_NAME`` between concurrent test runs.
PG_LOCK_KEY = 0x5C41E0
#: Seconds the management command may take (200 saves included).
COMMAND_TIMEOUT = 60.0
#: Seconds a subscription may take to be in place, proven by a marker event.
SYNC_TIMEOUT = 10.0
#: Seconds to wait for a marker before renaming the marker product again.
SYNC_RETRY = 0.5
#: Seconds for the marker that closes a batch of changes (it queues behind all of them).
EXPECT_TIMEOUT = 20.0
MARKER_PREFIX = "marker "


def channel_layer() -> str:
    """The Redis layer of this run (``SMS_CHANNEL_LAYER``)."""
    layer = os.environ.get("SMS_CHANNEL_LAYER", "")
    if layer not in SERVICE_LAYERS:
        raise RuntimeError(f"SMS_CHANNEL_LAYER is {layer!r}, not one of {SERVICE_LAYERS}")
    return layer


# -- Redis ------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A private ``redis-server`` on a loopback port, without persistence (a restart forgets)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.workdir / "redis.log"

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.log_path),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server on port {self.port} exited with code "
                    f"{self.process.returncode}; its log:\n{self.log_text()}"
                )
            try:
                with self.client() as client:
                    client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"redis-server on port {self.port} did not answer PING within {timeout} s"
                    ) from None
            time.sleep(0.05)  # readiness poll of a starting process, not test synchronisation

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "<no log>"


def info_number(client: redis.Redis, section: str, key: str) -> int:
    info: dict[str, Any] = client.info(section)
    return int(info[key])


# -- PostgreSQL -------------------------------------------------------------------------------


def services_env(redis_url: str) -> dict[str, str]:
    """The environment of every process of these tests: PostgreSQL, and this run's Redis layer."""
    env = dict(os.environ)
    env.pop("SMS_SQLITE_PATH", None)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        SMS_DATABASE="postgres",
        SMS_PG_NAME=PG_NAME,
        SMS_CHANNEL_LAYER=channel_layer(),
        SMS_REDIS_URL=redis_url,
        PYTHONUNBUFFERED="1",
    )
    return env


def ensure_database() -> None:
    """Create ``PG_NAME`` when missing and migrate it (under a lock shared by concurrent runs).

    Tests never empty it: each one works only with the objects it creates.
    """
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (PG_LOCK_KEY,))
        try:
            exists = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (PG_NAME,)
            ).fetchone()
            if exists is None:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_NAME)))
            # The layer is irrelevant to migrate; the URL only has to be well-formed.
            result = subprocess.run(
                [sys.executable, "-m", "django", "migrate", "--noinput"],
                env=services_env("redis://127.0.0.1:6379/0"),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if result.returncode != 0:
                raise RuntimeError(f"migrate failed:\n{result.stdout}\n{result.stderr}")
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (PG_LOCK_KEY,))


# -- servers ----------------------------------------------------------------------------------


@dataclass
class ScaleOutServer(LiveServer):
    """A :class:`LiveServer` on PostgreSQL and the run's Redis layer, at ``redis_url``."""

    name: str = "server"
    redis_url: str = ""
    #: Library settings of this server beyond the test site's (``SMS_SETTINGS``).
    settings: dict[str, Any] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = services_env(self.redis_url)
        if self.settings:
            env["SMS_SETTINGS"] = json.dumps(self.settings)
        return env

    def log_since(self, start: int) -> tuple[str, int]:
        """The log written since byte ``start``, and where it ends now."""
        end = self.log_size()
        return self.log_text(start, end), end


# -- the management command -------------------------------------------------------------------


@dataclass
class CommandResult:
    pks: dict[str, int]
    seconds: float
    stdout: str
    stderr: str


def _command_args(ops: Sequence[dict[str, Any]], flags: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "django", "save_products", json.dumps(list(ops)), *flags]


def _pks(stdout: str) -> dict[str, int]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "save_products printed nothing"
    report: dict[str, dict[str, int]] = json.loads(lines[-1])
    return report["pks"]


def _check_exit(code: int | None, stdout: str, stderr: str) -> None:
    assert code == 0, f"save_products exited with code {code}:\n{stdout}\n{stderr}"
    assert "Traceback" not in stderr, f"save_products logged an error:\n{stderr}"


async def _finish(process: asyncio.subprocess.Process, timeout: float) -> tuple[str, str]:
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"save_products did not exit within {timeout} s") from None
    return out.decode(errors="replace"), err.decode(errors="replace")


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()


async def run_command(
    env: dict[str, str],
    ops: Sequence[dict[str, Any]],
    *flags: str,
    timeout: float = COMMAND_TIMEOUT,
) -> CommandResult:
    """Run ``save_products`` to its end (killed after ``timeout`` s); it must succeed."""
    start = time.monotonic()
    code, stdout, stderr = await run_command_unchecked(env, ops, *flags, timeout=timeout)
    _check_exit(code, stdout, stderr)
    return CommandResult(_pks(stdout), time.monotonic() - start, stdout, stderr)


async def run_command_unchecked(
    env: dict[str, str],
    ops: Sequence[dict[str, Any]],
    *flags: str,
    timeout: float = COMMAND_TIMEOUT,
) -> tuple[int | None, str, str]:
    """Run ``save_products`` to its end (killed after ``timeout`` s): exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        *_command_args(ops, flags),
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await _finish(process, timeout)
    finally:
        await _kill(process)
    return process.returncode, stdout, stderr


@dataclass
class PausedCommand:
    """``save_products --atomic --pause-before-commit``, waiting inside its transaction."""

    process: asyncio.subprocess.Process
    pks: dict[str, int]

    async def commit(self, timeout: float = COMMAND_TIMEOUT) -> None:
        """Let it commit, and wait for it to exit successfully."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()
        stdout, stderr = await _finish(self.process, timeout)
        _check_exit(self.process.returncode, stdout, stderr)


@contextlib.asynccontextmanager
async def paused_command(
    env: dict[str, str], ops: Sequence[dict[str, Any]], timeout: float = COMMAND_TIMEOUT
) -> AsyncIterator[PausedCommand]:
    """Start ``save_products --atomic --pause-before-commit``; yield once it has saved everything
    and waits to commit. The process is killed on exit if it is still running."""
    process = await asyncio.create_subprocess_exec(
        *_command_args(ops, ["--atomic", "--pause-before-commit"]),
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"save_products did not pause within {timeout} s") from None
        if not line:
            stdout, stderr = await _finish(process, timeout)
            raise AssertionError(f"save_products ended before pausing:\n{stdout}\n{stderr}")
        yield PausedCommand(process, _pks(line.decode()))
    finally:
        await _kill(process)


# -- expected events --------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What an event says about a product, whichever protocol carried it."""

    action: str  # create, update or delete
    pk: int
    name: str

    def __str__(self) -> str:
        return f"{self.action} {self.pk} {self.name!r}"


def expected_changes(
    ops: Sequence[dict[str, Any]], pks: dict[str, int], *, atomic: bool = False
) -> list[Change]:
    """The events ``save_products`` must cause for ``ops``, in order.

    Autocommit: each event carries the name at its operation. One transaction (``atomic``): one
    event per product, with its last name in the transaction.
    """
    names: dict[object, str] = {}
    steps: list[tuple[str, object, str, bool]] = []  # action, ref, name at the time, is a save
    for op in ops:
        kind = op["op"]
        if kind == "create":
            names[op["ref"]] = op["name"]
            steps.append(("create", op["ref"], op["name"], True))
        elif kind == "create_many":
            for index in range(op["count"]):
                made = f"{op['prefix']}{index}"
                names[made] = made
                steps.append(("create", made, made, True))
        elif kind in ("update", "notify_update"):
            names[op["ref"]] = op["name"]
            steps.append(("update", op["ref"], op["name"], kind == "update"))
        elif kind == "delete":
            steps.append(("delete", op["ref"], names[op["ref"]], False))
        elif kind != "rolled_back_savepoint":
            raise ValueError(f"unknown op {op!r}")

    def pk(ref: object) -> int:
        return ref if isinstance(ref, int) else pks[str(ref)]

    if not atomic:
        return [Change(action, pk(ref), name) for action, ref, name, _ in steps]
    # One transaction: the changes of each product coalesce into one event with its last state,
    # in the order the products were first changed (README "Events, transactions and notify").
    first: dict[object, str] = {}
    last: dict[object, str] = {}
    for action, ref, _name, _is_save in steps:
        first.setdefault(ref, action)
        last[ref] = action
    coalesced = []
    for ref, head in first.items():
        existed, exists = head != "create", last[ref] != "delete"
        if existed or exists:
            action = "update" if existed and exists else ("create" if exists else "delete")
            coalesced.append(Change(action, pk(ref), names[ref]))
    return coalesced


def by_object(changes: Sequence[Change]) -> dict[int, list[Change]]:
    """``changes`` grouped by product, each group in its order."""
    groups: dict[int, list[Change]] = {}
    for change in changes:
        groups.setdefault(change.pk, []).append(change)
    return groups


# -- what the sockets receive ----------------------------------------------------------------


def stream_change(message: dict[str, Any]) -> Change | None:
    """The product change a stream-protocol frame carries (None for other frames)."""
    if message.get("stream") != "products" or "payload" not in message:
        return None
    payload = message["payload"]
    assert payload["model"] == "testapp.product", message
    assert set(payload["data"]) == {"id", "name"}, f"fields other than id and name: {message}"
    return Change(payload["action"], payload["data"]["id"], payload["data"]["name"])


def typed_change(operation_id: str) -> Callable[[dict[str, Any]], Change | None]:
    """The change a ``productChanged { action data { id name } }`` result carries."""

    def extract(message: dict[str, Any]) -> Change | None:
        if message.get("id") != operation_id:
            return None
        assert message.get("type") == "next", f"subscription {operation_id} ended: {message}"
        result = message["payload"]
        assert not result.get("errors"), result
        changed = result["data"]["productChanged"]
        data = changed["data"]
        return Change(changed["action"].lower(), data["id"], data["name"])

    return extract


@dataclass(eq=False)
class Subscriber:
    """One subscription (of either protocol) and the changes it matches."""

    label: str
    socket: Socket
    extract: Callable[[dict[str, Any]], Change | None]
    action: str | None = None  # None: every action
    pk: int | None = None  # None: every object
    #: Index in the socket's messages from which the next changes are read.
    start: int = 0

    def matches(self, change: Change) -> bool:
        return (self.action is None or change.action == self.action) and (
            self.pk is None or change.pk == self.pk
        )

    def changes(self, start: int, end: int | None = None) -> list[Change]:
        found = (self.extract(message) for message in self.socket.messages[start:end])
        return [change for change in found if change is not None]

    async def wait_for_change(
        self, predicate: Callable[[Change], bool], what: str, timeout: float = FRAME_TIMEOUT
    ) -> int:
        def accepts(message: dict[str, Any]) -> bool:
            change = self.extract(message)
            return change is not None and predicate(change)

        return await self.socket.wait_for(
            accepts, f"{what} on {self.label}", start=self.start, timeout=timeout
        )


@dataclass
class Audience:
    """Subscribers that all match the updates of the marker product, and the barrier on them."""

    subscribers: list[Subscriber]
    marker_pk: int
    rename_marker: Callable[[str], Awaitable[None]]
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def _is_marker(self, change: Change) -> bool:
        return change.pk == self.marker_pk and change.name.startswith(MARKER_PREFIX)

    def _marker_named(self, name: str) -> Callable[[Change], bool]:
        return lambda change: change.pk == self.marker_pk and change.name == name

    async def _mark(self) -> str:
        name = f"{MARKER_PREFIX}{next(self._counter)}"
        await self.rename_marker(name)
        return name

    async def sync(self, timeout: float = SYNC_TIMEOUT) -> None:
        """Return once every subscription is in place, every earlier event delivered.

        Renames the marker until each subscriber has received a marker (typed subscriptions are
        not acknowledged), then once more: from the event of that last rename on, each subscriber
        receives every matching change. Nothing but markers may arrive before it.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while waiting := [
            s for s in self.subscribers if not any(map(self._is_marker, s.changes(s.start)))
        ]:
            if loop.time() > deadline:
                labels = ", ".join(s.label for s in waiting)
                raise AssertionError(f"no marker reached {labels} within {timeout} s")
            name = await self._mark()
            with contextlib.suppress(FrameTimeout):
                await asyncio.gather(
                    *(
                        s.wait_for_change(
                            self._marker_named(name), f"marker {name!r}", timeout=SYNC_RETRY
                        )
                        for s in waiting
                    )
                )
        await self._close_batch([], "the subscriptions' first marker", FRAME_TIMEOUT)

    async def expect(self, changes: Sequence[Change], timeout: float = EXPECT_TIMEOUT) -> None:
        """Every subscriber receives exactly its matching ``changes``, once each, in order.

        ``changes`` must all have been sent already (the command that made them has exited).
        """
        await self._close_batch(changes, "the marker after the changes", timeout)

    async def barrier(
        self, what: str = "the marker after the changes", timeout: float = EXPECT_TIMEOUT
    ) -> list[list[Change]]:
        """What each subscriber received (markers left out) up to a fresh marker, which every
        one of them must receive within ``timeout``; the next changes are read after it.

        For changes whose exact events are not known in advance (concurrent writers): like
        :meth:`expect`, the changes must all have been sent already.
        """
        name = await self._mark()
        ends = await asyncio.gather(
            *(
                s.wait_for_change(self._marker_named(name), what, timeout=timeout)
                for s in self.subscribers
            )
        )
        received = []
        for subscriber, end in zip(self.subscribers, ends, strict=True):
            received.append(
                [c for c in subscriber.changes(subscriber.start, end) if not self._is_marker(c)]
            )
            subscriber.start = end + 1
        return received

    async def _close_batch(self, changes: Sequence[Change], what: str, timeout: float) -> None:
        problems = []
        received = await self.barrier(what, timeout)
        for subscriber, got in zip(self.subscribers, received, strict=True):
            expected = [c for c in changes if subscriber.matches(c)]
            if got != expected:
                problems.append(describe_mismatch(subscriber.label, expected, got))
        assert not problems, "\n\n".join(problems)


def describe_mismatch(label: str, expected: Sequence[Change], received: Sequence[Change]) -> str:
    """What a subscriber got wrong: missing, extra, duplicated or out-of-order events."""
    lines = [f"{label}: expected {len(expected)} events, received {len(received)}"]
    missing = [c for c in expected if c not in received]
    extra = [c for c in received if c not in expected]
    duplicated = sorted({str(c) for c in received if received.count(c) > 1})
    if missing:
        lines.append("  missing: " + "; ".join(map(str, missing[:10])))
    if extra:
        lines.append("  not expected: " + "; ".join(map(str, extra[:10])))
    if duplicated:
        lines.append("  more than once: " + "; ".join(duplicated[:10]))
    wrong_order = []
    for pk, group in by_object(expected).items():
        got = [c for c in received if c.pk == pk]
        if got != group and sorted(map(str, got)) == sorted(map(str, group)):
            wrong_order.append(pk)
    if wrong_order:
        lines.append(f"  out of order for products {wrong_order}")
    if not (missing or extra or duplicated or wrong_order):
        lines.append("  same events per product, in another order across products")
    lines.append("  received: " + "; ".join(map(str, received[:30])))
    return "\n".join(lines)


# -- logs -------------------------------------------------------------------------------------

_TRACEBACK = "Traceback (most recent call last):"
_CHAINED = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)


def tracebacks_after(text: str, messages: Sequence[str]) -> tuple[list[str], list[str]]:
    """The logged exceptions in ``text``: those logged with one of ``messages``, and the others.

    A logged exception is its message line followed by its traceback (chained tracebacks
    included); it counts as expected when that message line contains one of ``messages``.
    """
    lines = text.splitlines()
    expected: list[str] = []
    others: list[str] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() != _TRACEBACK:
            index += 1
            continue
        message = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        start = max(index - 1, 0)
        while True:  # the traceback, and those chained to it
            index += 1
            while index < len(lines) and (not lines[index] or lines[index][:1].isspace()):
                index += 1
            following = [i for i in range(index + 1, min(index + 4, len(lines)))]
            chained = [i for i in following if lines[i].strip() in _CHAINED]
            if not chained:
                break
            index = next(
                (i for i in range(chained[0] + 1, len(lines)) if lines[i].strip() == _TRACEBACK),
                len(lines),
            )
            if index == len(lines):
                break
        block = "\n".join(lines[start : index + 1])
        (expected if any(m in message for m in messages) else others).append(block)
        index += 1
    return expected, others
