"""Writers of every kind: saves made by plain processes reach the subscribers of both servers.

Two uvicorn servers run on PostgreSQL and the Redis layer of the outer run (``SMS_CHANNEL_LAYER``,
run once per layer by ``tests/run_services.py``), on a private ``redis-server`` as in
``test_scale_out.py`` (Redis pub/sub channels are shared by every database number of a server, so
a shared Redis would carry other runs' events). The processes that save are those of a real
project, none with a server or an event loop of its own, and none importing the serializers
itself (no system check runs in any of them): only the library's autodiscovery at
``django.setup()`` registers them.

* a plain script, ``python tests/e2e/writer_script.py`` (``django.setup()`` by hand);
* ``python -m django shell -c "..."``;
* a management command with ``requires_system_checks = []`` (``save_products_unchecked``);
* a Celery worker (``tests/testapp/tasks.py``; broker and results on Redis database 9 of
  127.0.0.1:6379, a queue of its own per test), prefork pool of two processes, stopped with
  SIGTERM: its pool processes publish what they committed on ``worker_process_shutdown``.

Each kind runs the same operations; every subscriber of both servers, of both protocols, must
receive exactly the events it matches, once each, in order (``scale_out.Audience``'s marker
barrier proves it without sleeping). Then two writers of one kind at once (two commands, or two
tasks in the two pool processes) update the same five products 200 times each, in five rounds
that both start together (the end of a round is where the order of their commits decides the
last event): after each round, whatever order the events took, the last one of each product on
every subscriber must be the row as it is in the database; the same two commands on one SQLite
file, with this process's hub as the subscriber, must end on the file's rows too. Last, a
``notify()`` and a save of one product, close together and repeated, send an event each.

The database is ``scale_out.PG_NAME`` (``sms_scale_out``), shared with ``test_scale_out.py``;
tests work only with the objects they create.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celery.exceptions
import httpx
import psycopg
import pytest
import redis

from tests.conftest import Listen
from tests.testapp.tasks import BROKER_URL
from tests.testapp.tasks import save_products as save_products_task

from .cluster import Cluster
from .harness import ROOT, create_product
from .scale_out import (
    COMMAND_TIMEOUT,
    PG_NAME,
    Audience,
    Change,
    Subscriber,
    expected_changes,
)

pytestmark = [pytest.mark.e2e, pytest.mark.services]

WRITER_SCRIPT = Path(__file__).with_name("writer_script.py")
#: Seconds a Celery worker may take to start and run a task, and to exit after SIGTERM.
TASK_TIMEOUT = 60.0
WORKER_EXIT_TIMEOUT = 30.0
#: The contended objects, and how many updates each writer makes to them (round robin).
CONTENDED = 5
UPDATES_PER_WRITER = 200
#: The updates of each writer come in this many rounds, all writers starting each one together.
ROUNDS = 5
#: Seconds to keep watching for the last frames to converge, once the barrier found them wrong
#: (tells "late" from "never" in the failure message).
CONVERGE_TIMEOUT = 30.0
#: What the library logs when a writer could not publish (strawberry_model_subs.publisher).
PUBLISH_ERRORS = ("could not publish", "not published", "are lost", "were lost")


@pytest.fixture(autouse=True)
def server_log() -> None:
    """Replaces the e2e suite's fixture of the same name, which checks its shared SQLite server:
    these tests start their own servers and check their logs (see ``cluster``)."""


# -- writer processes -------------------------------------------------------------------------


def reports(stdout: str) -> dict[str, Any]:
    """The JSON objects a writer wrote, one a line, merged (other lines are ignored: the
    shell's note about the objects it imported, say)."""
    merged: dict[str, Any] = {}
    for line in stdout.splitlines():
        with contextlib.suppress(ValueError):
            found = json.loads(line)
            if isinstance(found, dict):
                merged.update(found)
    return merged


def writer_args(kind: str, ops: str, *flags: str) -> list[str]:
    """The command line of a writer of ``kind`` that runs ``save_products`` operations ``ops``."""
    if kind == "script":
        return [sys.executable, str(WRITER_SCRIPT), ops]
    if kind == "shell":
        code = "from django.core.management import call_command; "
        code += f"call_command('save_products', {ops!r})"
        return [sys.executable, "-m", "django", "shell", "-c", code]
    if kind == "command":
        return [sys.executable, "-m", "django", "save_products_unchecked", ops, *flags]
    raise ValueError(f"no writer process of kind {kind!r}")


def check_writer(label: str, code: int | None, stdout: str, stderr: str) -> dict[str, Any]:
    """A writer's report; it must have exited 0 and written nothing to stderr (the library logs
    there: a warning about a serializer decorated after startup, an event not published)."""
    assert code == 0, f"{label} exited with code {code}:\n{stdout}\n{stderr}"
    assert not stderr.strip(), f"{label} wrote to stderr:\n{stderr}"
    report = reports(stdout)
    assert "pks" in report, f"{label} reported no pks:\n{stdout}"
    return report


async def _finish(
    label: str, process: asyncio.subprocess.Process, timeout: float
) -> dict[str, Any]:
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"{label} did not exit within {timeout} s") from None
    return check_writer(
        label, process.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )


async def _spawn(env: dict[str, str], args: Sequence[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *args,
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _kill(processes: Sequence[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def run_writer(
    env: dict[str, str], kind: str, ops: str, timeout: float = COMMAND_TIMEOUT
) -> dict[str, Any]:
    """Run a writer process of ``kind`` to its end (killed after ``timeout`` s): its report."""
    process = await _spawn(env, writer_args(kind, ops))
    try:
        return await _finish(f"the {kind} writer", process, timeout)
    finally:
        await _kill([process])


async def _report_line(
    label: str, process: asyncio.subprocess.Process, key: str, timeout: float
) -> dict[str, Any]:
    """The next report line of ``process`` that has ``key`` (other lines are skipped)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = await asyncio.wait_for(
                process.stdout.readline(), max(deadline - time.monotonic(), 0)
            )
        except asyncio.TimeoutError:
            raise AssertionError(f"{label} wrote no {key!r} line within {timeout} s") from None
        if not line:
            rest = await _finish(label, process, timeout)
            raise AssertionError(f"{label} exited before writing a {key!r} line: {rest}")
        found = reports(line.decode())
        if key in found:
            return found


@dataclass
class CommandWriters:
    """``save_products_unchecked --wait-for-go --rounds N`` processes, one per plan, that save
    in lock step: each round starts when all of them are ready."""

    processes: list[asyncio.subprocess.Process]
    rounds: int

    def label(self, index: int) -> str:
        return f"writer command {index}"

    async def run_round(
        self, number: int, timeout: float = COMMAND_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Let round ``number`` go in every process once all are ready; their reports of it once
        its events are published (after the last round: once they exited successfully)."""
        await asyncio.gather(
            *(
                _report_line(self.label(i), p, "ready", timeout)
                for i, p in enumerate(self.processes)
            )
        )
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
        await asyncio.gather(*(p.stdin.drain() for p in self.processes if p.stdin is not None))
        if number < self.rounds - 1:
            done = [
                _report_line(self.label(i), p, "round", timeout)
                for i, p in enumerate(self.processes)
            ]
        else:
            done = [_finish(self.label(i), p, timeout) for i, p in enumerate(self.processes)]
        found = list(await asyncio.gather(*done))
        assert all(r["round"] == number for r in found), f"round {number}: {found}"
        return found


@contextlib.asynccontextmanager
async def command_writers(
    env: dict[str, str], plans: Sequence[str], rounds: int
) -> AsyncIterator[CommandWriters]:
    """One writer command per plan, each waiting for the go-ahead of its first round; those
    still running on exit are killed."""
    processes: list[asyncio.subprocess.Process] = []
    try:
        for plan in plans:
            args = writer_args("command", plan, "--wait-for-go", "--rounds", str(rounds))
            processes.append(await _spawn(env, args))
        yield CommandWriters(processes, rounds)
    finally:
        await _kill(processes)


# -- a Celery worker --------------------------------------------------------------------------


@dataclass
class CeleryWorker:
    """``celery worker --pool prefork --concurrency 2`` consuming a queue of its own."""

    process: asyncio.subprocess.Process
    queue: str
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def result(self, sent: Any, timeout: float = TASK_TIMEOUT) -> dict[str, Any]:
        """The result of task ``sent`` (it must succeed within ``timeout`` s, the worker must
        not exit meanwhile)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.returncode is not None:
                raise AssertionError(
                    f"the Celery worker exited with code {self.process.returncode} before task "
                    f"{sent.id} was done; its log:\n{self.log_text()}"
                )
            try:
                # A short wait per round, so that a worker that died is noticed.
                result: dict[str, Any] = await asyncio.to_thread(sent.get, timeout=0.5)
                sent.forget()  # its key on the shared Redis
                return result
            except celery.exceptions.TimeoutError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"task {sent.id} was not done within {timeout} s; the worker's log:\n"
                        f"{self.log_text()}"
                    ) from None
            except Exception as exc:
                raise AssertionError(
                    f"task {sent.id} failed: {exc!r}; the worker's log:\n{self.log_text()}"
                ) from exc

    async def stop(self, timeout: float = WORKER_EXIT_TIMEOUT) -> None:
        """SIGTERM (a warm shutdown: each pool process sends ``worker_process_shutdown`` and
        exits); the worker must exit 0 within ``timeout`` s, having logged no error."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
                raise AssertionError(
                    f"the Celery worker did not exit within {timeout} s of SIGTERM; its log:\n"
                    f"{self.log_text()}"
                ) from None
        log = self.log_text()
        assert self.process.returncode == 0, (
            f"the Celery worker exited with code {self.process.returncode}; its log:\n{log}"
        )
        problems = [
            line
            for line in log.splitlines()
            if "Traceback" in line
            or "ERROR" in line
            or "CRITICAL" in line
            or any(error in line for error in PUBLISH_ERRORS)
        ]
        assert not problems, (
            "the Celery worker logged errors:\n" + "\n".join(problems) + (f"\n\nits log:\n{log}")
        )


@contextlib.asynccontextmanager
async def celery_worker(env: dict[str, str], workdir: Path) -> AsyncIterator[CeleryWorker]:
    """A worker on the writers' environment; killed on exit if it is still running (a test
    stops it with :meth:`CeleryWorker.stop` before it looks at the events)."""
    queue = f"sms-writers-{uuid.uuid4().hex}"
    log_path = workdir / "celery.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.testapp.tasks",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "2",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
            "--queues",
            queue,
            "--hostname",
            f"{queue}@%h",
            env={**env, "CELERY_SKIP_CHECKS": "1", "SMS_CELERY_BROKER": BROKER_URL},
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        yield CeleryWorker(process, queue, log_path)
    finally:
        await _kill([process])
        # What kombu keeps of the queue on the shared Redis (its bindings stay otherwise).
        with redis.Redis.from_url(BROKER_URL, socket_timeout=10) as client:
            client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


# -- every kind of writer ---------------------------------------------------------------------


def writer_ops(kind: str, marker_pk: int) -> list[dict[str, Any]]:
    """Creates, updates (saved and notified) and deletes, and two updates of the marker product
    (the only changes its id-bound subscribers match).

    The ``notify()`` is the last change of its product, so that its event carries the name at
    the operation whichever way the library serializes it (from the instance on commit, or read
    back by the publisher); ``test_a_notify_then_a_save_of_the_same_object_send_an_event_each``
    covers a notify followed by saves.
    """
    return [
        {"op": "create", "ref": "kettle", "name": f"Kettle ({kind})"},
        {"op": "create", "ref": "mug", "name": f"Mug ({kind})"},
        {"op": "update", "ref": "kettle", "name": f"Kettle, steel ({kind})"},
        {"op": "update", "ref": marker_pk, "name": f"Renamed by the {kind} writer"},
        {"op": "update", "ref": "mug", "name": f"Mug, blue ({kind})"},
        {"op": "delete", "ref": "kettle"},
        {"op": "notify_update", "ref": "mug", "name": f"Mug, via notify() ({kind})"},
        {"op": "update", "ref": marker_pk, "name": f"Renamed by the {kind} writer again"},
    ]


@pytest.mark.parametrize("kind", ["script", "shell", "command", "celery"])
async def test_saves_of_each_kind_of_writer_process_reach_every_subscriber_of_both_servers_once_in_order(  # noqa: E501
    kind: str, cluster: Cluster, audience: Audience, tmp_path: Path
) -> None:
    ops = writer_ops(kind, audience.marker_pk)
    if kind == "celery":
        async with celery_worker(cluster.env, tmp_path) as worker:
            sent = save_products_task.apply_async((json.dumps(ops),), queue=worker.queue)
            report = await worker.result(sent)
            await worker.stop()
    else:
        report = await run_writer(cluster.env, kind, json.dumps(ops))
    expected = expected_changes(ops, report["pks"])
    unmatched = [s.label for s in audience.subscribers if not any(map(s.matches, expected))]
    assert not unmatched, f"the operations give these subscribers nothing to receive: {unmatched}"
    await audience.expect(expected)


# -- concurrent writers of the same objects ---------------------------------------------------


def contended_ops(writer: str, pks: Sequence[int]) -> list[dict[str, Any]]:
    """``UPDATES_PER_WRITER`` saves, round robin over ``pks``, each a name of its own."""
    return [
        {"op": "update", "ref": pks[step % len(pks)], "name": f"writer {writer} step {step}"}
        for step in range(UPDATES_PER_WRITER)
    ]


def database_names(pks: Sequence[int]) -> dict[int, str]:
    """The names of products ``pks`` as PostgreSQL has them."""
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={PG_NAME} connect_timeout=5"
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT id, name FROM testapp_product WHERE id = ANY(%s)", (list(pks),)
        ).fetchall()
    return {pk: name for pk, name in rows}


def last_changes(changes: Sequence[Change]) -> dict[int, Change]:
    """The last of ``changes`` of each product (what the subscriber shows in the end)."""
    last: dict[int, Change] = {}
    for change in changes:
        last[change.pk] = change
    return last


def mismatches(
    subscribers: Sequence[Subscriber],
    received: Sequence[Sequence[Change]],
    rows: dict[int, str],
) -> list[str]:
    """For each subscriber, the products whose last frame is not the row."""
    problems = []
    for subscriber, changes in zip(subscribers, received, strict=True):
        last = last_changes(changes)
        for pk, name in rows.items():
            want = Change("update", pk, name)
            if last.get(pk) != want:
                count = sum(1 for c in changes if c.pk == pk)
                problems.append(
                    f"{subscriber.label}: product {pk} is {name!r} in the database, its last "
                    f"frame (of {count}) is {last.get(pk)}"
                )
    return problems


async def converged_later(
    subscribers: Sequence[Subscriber], starts: Sequence[int], rows: dict[int, str]
) -> bool:
    """Whether, within ``CONVERGE_TIMEOUT`` s, every subscriber's last frames (read from
    ``starts`` on) come to equal ``rows``: for the failure message only."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    while time.monotonic() < deadline:
        received = [
            [c for c in s.changes(start) if c.pk in rows]
            for s, start in zip(subscribers, starts, strict=True)
        ]
        if not mismatches(subscribers, received, rows):
            return True
        await asyncio.sleep(0.1)  # bounded poll for the diagnosis of a failure
    return False


def assert_overlap(number: int, found: Sequence[dict[str, Any]]) -> None:
    """The writers' saves of round ``number`` overlapped in time (else the test proves less)."""
    assert max(r["started"] for r in found) < min(r["finished"] for r in found), (
        f"round {number}: the writers did not save at the same time: {found}"
    )


@pytest.mark.parametrize("kind", ["commands", "celery"])
async def test_concurrent_writers_of_the_same_objects_leave_every_subscriber_with_the_committed_row(
    kind: str,
    cluster: Cluster,
    audience: Audience,
    http_clients: tuple[httpx.AsyncClient, ...],
    tmp_path: Path,
) -> None:
    """Two writer processes update the same products, each save in its own transaction, in
    ``ROUNDS`` rounds that both start at once (the end of a round is where the order of their
    commits decides the last event). After each round, once its events are all out (published
    before the writers report it; the last round's at their exit), a marker barrier: then every
    subscriber's last frame of each product must be the row in the database."""
    http_a, _ = http_clients
    pks = [await create_product(http_a, f"contended {index}") for index in range(CONTENDED)]
    await audience.expect(
        [Change("create", pk, f"contended {index}") for index, pk in enumerate(pks)]
    )
    watching = [i for i, s in enumerate(audience.subscribers) if s.pk is None]
    seen: dict[int, list[Change]] = {i: [] for i in watching}
    starts = [audience.subscribers[i].start for i in watching]
    plans = [contended_ops(writer, pks) for writer in ("A", "B")]
    size = UPDATES_PER_WRITER // ROUNDS

    async def check(number: int) -> None:
        received = await audience.barrier(f"the marker after round {number}")
        for i in watching:
            seen[i] += [c for c in received[i] if c.pk in pks]
        assert all(c.action == "update" for i in watching for c in seen[i]), seen
        rows = database_names(pks)
        assert set(rows) == set(pks), f"products missing from the database: {set(pks) - set(rows)}"
        subscribers = [audience.subscribers[i] for i in watching]
        problems = mismatches(subscribers, [seen[i] for i in watching], rows)
        if problems:
            later = await converged_later(subscribers, starts, rows)
            raise AssertionError(
                f"after round {number} and the barrier, last frames differ from the database "
                + (
                    f"(they came to equal it within {CONVERGE_TIMEOUT} s: late events)"
                    if later
                    else f"(still after {CONVERGE_TIMEOUT} s more)"
                )
                + ":\n"
                + "\n".join(problems)
            )

    timings = []
    if kind == "commands":
        async with command_writers(cluster.env, [json.dumps(p) for p in plans], ROUNDS) as writers:
            for number in range(ROUNDS):
                found = await writers.run_round(number)
                assert_overlap(number, found)
                timings.append(found)
                await check(number)
    else:
        async with celery_worker(cluster.env, tmp_path) as worker:
            for number in range(ROUNDS):
                last = number == ROUNDS - 1
                barrier = f"sms-writers-barrier-{uuid.uuid4().hex}"
                sent = [
                    save_products_task.apply_async(
                        (json.dumps(plan[number * size : (number + 1) * size]),),
                        {"barrier": barrier, "parties": len(plans), "flush": not last},
                        queue=worker.queue,
                    )
                    for plan in plans
                ]
                found = [await worker.result(task) for task in sent]
                with redis.Redis.from_url(BROKER_URL, socket_timeout=10) as client:
                    client.delete(barrier, f"{barrier}:go")
                pids = {r["pid"] for r in found}
                assert len(pids) == len(plans), f"the tasks ran in pool processes {pids}"
                assert_overlap(number, found)
                timings.append(found)
                if last:
                    await worker.stop()  # the pool processes publish the rest as they exit
                await check(number)
    print(
        f"{kind}: {len(plans)} writers x {ROUNDS} rounds x {size} updates of {CONTENDED} "
        "products; seconds per round and writer: "
        + "; ".join(", ".join(f"{r['finished'] - r['started']:.2f}" for r in t) for t in timings)
        + "; frames per subscriber: "
        + ", ".join(str(len(seen[i])) for i in watching)
    )


# -- a notify() and a save of one object, close together --------------------------------------

NOTIFY_PAIRS = 30


async def test_a_notify_then_a_save_of_the_same_object_send_an_event_each(
    cluster: Cluster, audience: Audience
) -> None:
    """Each ``notify()`` sends one update and so does each save, also when they follow each
    other closely in separate transactions (so that the publisher takes several of them in one
    round: a change without data of its own that was not the last of its object in the round
    used to be dropped, ``Publisher._read``).

    Checked by count, by the saves' own events and by the last one, not by the name each event
    carries: a change the publisher reads back carries the row as it reads it, which may be that
    of later operations.
    """
    ops: list[dict[str, Any]] = [{"op": "create", "ref": "pot", "name": "Pot"}]
    for index in range(NOTIFY_PAIRS):
        ops += [
            {"op": "notify_update", "ref": "pot", "name": f"Pot, notified {index}"},
            {"op": "update", "ref": "pot", "name": f"Pot, saved {index}"},
        ]
    states = [op["name"] for op in ops]  # the product's names, oldest first
    report = await run_writer(cluster.env, "script", json.dumps(ops))
    pk = report["pks"]["pot"]
    received = await audience.barrier()
    problems = []
    lost: dict[str, int] = {}
    for subscriber, changes in zip(audience.subscribers, received, strict=True):
        if subscriber.pk is not None:
            assert not changes, f"{subscriber.label}: {changes}"
            continue
        updates = [c.name for c in changes if c.action == "update" and c.pk == pk]
        label = f"{subscriber.label}: {len(updates)} updates ({updates})"
        if any(c.pk != pk or c.action not in ("create", "update") for c in changes):
            problems.append(f"{label}; events of something else: {changes}")
        elif any(name not in states for name in updates):
            problems.append(f"{label}; names never saved")
        elif updates[-1:] != states[-1:]:
            problems.append(f"{label}; the last is not the product's last state {states[-1]!r}")
        elif not set(states[2::2]) <= set(updates):
            problems.append(f"{label}; saves missing: {sorted(set(states[2::2]) - set(updates))}")
        elif len(updates) > 2 * NOTIFY_PAIRS:
            problems.append(f"{label}; more than the {2 * NOTIFY_PAIRS} saves and notify() calls")
        elif len(updates) < 2 * NOTIFY_PAIRS:
            lost[subscriber.label] = 2 * NOTIFY_PAIRS - len(updates)
    assert not problems, "\n\n".join(problems)
    assert not lost, (
        f"of {NOTIFY_PAIRS} notify() calls, each followed at once by a save of the same product, "
        f"this many events never arrived, per subscriber: {lost}"
    )


# -- the same contention on SQLite ------------------------------------------------------------


async def test_concurrent_writers_on_sqlite_leave_the_subscriber_with_the_committed_row(
    tmp_path: Path, listen: Listen
) -> None:
    """Two writer commands on one SQLite file update the same products as above, in lock step;
    the subscriber is this process's hub, on the same Redis layer: once both exited and a marker
    save of a third process arrived after their events, the last event of each product is its
    row in the file."""
    database = tmp_path / "writers.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("SMS_DATABASE", "SMS_PG_NAME")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        SMS_SQLITE_PATH=str(database),
        PYTHONUNBUFFERED="1",
    )
    migrate = await _spawn(env, [sys.executable, "-m", "django", "migrate", "--noinput"])
    out, err = await asyncio.wait_for(migrate.communicate(), COMMAND_TIMEOUT)
    assert migrate.returncode == 0, f"migrate failed:\n{out.decode()}\n{err.decode()}"
    receive = await listen("products")
    creates = [{"op": "create", "ref": f"p{i}", "name": f"contended {i}"} for i in range(CONTENDED)]
    created = await run_writer(env, "command", json.dumps(creates))
    pks = [int(created["pks"][f"p{i}"]) for i in range(CONTENDED)]
    for _ in pks:
        assert (await receive())["action"] == "create"
    plans = [json.dumps(contended_ops(writer, pks)) for writer in ("A", "B")]
    async with command_writers(env, plans, ROUNDS) as writers:
        for number in range(ROUNDS):
            assert_overlap(number, await writers.run_round(number))
    marker = await run_writer(
        env, "command", json.dumps([{"op": "create", "ref": "m", "name": "marker"}])
    )
    marker_pk = str(marker["pks"]["m"])
    last: dict[int, str] = {}
    count = 0
    while (got := await receive())["pk"] != marker_pk:
        last[int(got["pk"])] = got["data"]["name"]
        count += 1
    with contextlib.closing(sqlite3.connect(database)) as connection:
        rows = dict(
            connection.execute(
                f"SELECT id, name FROM testapp_product WHERE id IN ({','.join('?' * len(pks))})",
                pks,
            ).fetchall()
        )
    assert last == rows, f"last events {last} (of {count}) differ from the rows {rows}"
