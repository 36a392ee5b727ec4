"""The two-server cluster of the scale-out and writer e2e tests, as fixtures (a pytest plugin,
loaded by ``tests/conftest.py``).

``cluster``: two uvicorn servers on PostgreSQL and the layer the outer run selects, on a private
``redis-server``, started once per module, their logs checked after each test. ``audience``: four
subscribers on each server, in place, all matching the marker product's updates (see
``scale_out.Audience``).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .clients import StreamSocket, TypedSocket, stream_socket, typed_socket
from .harness import ROOT, create_product, log_problems, update_product
from .scale_out import (
    Audience,
    RedisServer,
    ScaleOutServer,
    Subscriber,
    ensure_database,
    services_env,
    stream_change,
    typed_change,
)

HTTP_TIMEOUT = 30.0
EVERY_CHANGE = "subscription { productChanged { action data { id name } } }"
EVERY_UPDATE = "subscription { productChanged(action: UPDATE) { action data { id name } } }"


@pytest.fixture(scope="session")
def scale_out_db() -> None:
    ensure_database()


# -- two servers on one Redis -----------------------------------------------------------------


@dataclass
class Cluster:
    """Two servers on one private Redis; how far each server's log has been checked."""

    a: ScaleOutServer
    b: ScaleOutServer
    redis: RedisServer
    checked: dict[str, int]
    #: What an expected traceback in their logs ends with (see ``harness.log_problems``).
    allowed: tuple[str, ...] = ()

    @property
    def servers(self) -> tuple[ScaleOutServer, ScaleOutServer]:
        return self.a, self.b

    @property
    def env(self) -> dict[str, str]:
        """The environment of a third process on the same database and layer."""
        return services_env(self.redis.url)

    def check_logs(self) -> None:
        """The servers logged no traceback and no ``ERROR:`` line since the last check."""
        problems = []
        for server in self.servers:
            text, self.checked[server.name] = server.log_since(self.checked[server.name])
            found = log_problems(text, self.allowed)
            problems += [f"{server.name}: {problem}" for problem in found]
        assert not problems, "the servers logged errors:\n" + "\n\n".join(problems)


def shut_down(*servers: ScaleOutServer, grace: float = 10.0) -> None:
    """SIGTERM every server at once, then wait for them together; kill those still running
    after ``grace`` seconds (and say so: a server should drain and exit by itself)."""
    running = [s for s in servers if s.process is not None and s.process.poll() is None]
    for server in running:
        assert server.process is not None
        server.process.terminate()
    deadline = time.monotonic() + grace
    for server in running:
        assert server.process is not None
        try:
            server.process.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            print(f"{server.name} did not exit within {grace} s of SIGTERM: killed")
            server.process.kill()
            server.process.wait(timeout=10)
    for server in servers:
        server.stop()  # closes the log (and stops a server that never started)


@contextlib.contextmanager
def running_cluster(
    directory: Path,
    settings: dict[str, Any] | None = None,
    *,
    check_logs: bool = True,
    allowed: tuple[str, ...] = (),
) -> Iterator[Cluster]:
    """Start a private Redis and two servers (with these library ``settings``) in ``directory``;
    shut them down on exit, then check what they logged, shutdown included (unless the test
    makes them log errors: ``check_logs=False``; ``allowed``: the tracebacks it expects)."""
    redis_server = RedisServer(directory / "redis")
    a = ScaleOutServer(directory / "server-a", name="server A", settings=dict(settings or {}))
    b = ScaleOutServer(directory / "server-b", name="server B", settings=dict(settings or {}))
    with contextlib.ExitStack() as stack:
        for workdir in (redis_server.workdir, a.workdir, b.workdir):
            workdir.mkdir(parents=True)
        stack.callback(redis_server.stop)
        redis_server.start()
        for server in (a, b):
            server.redis_url = redis_server.url
            stack.callback(server.stop)
            server.start()
        stack.callback(shut_down, a, b)  # runs first: both shut down at once
        cluster = Cluster(a, b, redis_server, {a.name: 0, b.name: 0}, allowed)
        yield cluster
    if check_logs:
        cluster.check_logs()


@pytest.fixture(scope="module")
def two_servers(scale_out_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def cluster(two_servers: Cluster) -> Iterator[Cluster]:
    """The two servers; their logs are checked after the test."""
    yield two_servers
    two_servers.check_logs()


@contextlib.asynccontextmanager
async def http_clients_of(cluster: Cluster) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """An HTTP client for each server of ``cluster`` (A, then B), closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        yield tuple(
            [
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url=server.http_url, timeout=HTTP_TIMEOUT)
                )
                for server in cluster.servers
            ]
        )


@pytest.fixture
async def http_clients(cluster: Cluster) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """An HTTP client for each server (A, then B)."""
    async with http_clients_of(cluster) as clients:
        yield clients


@pytest.fixture
async def audience(
    cluster: Cluster, http_clients: tuple[httpx.AsyncClient, ...]
) -> AsyncIterator[Audience]:
    """Four subscribers on each server, all in place, all matching the marker's updates.

    On each server: a stream socket subscribed to every change through the OTHER server (the
    control operation crosses processes), a stream socket subscribed to the updates of the marker
    product through its own server, and a graphql-transport-ws connection with two typed
    subscriptions, to every change and to every update.
    """
    http_a, http_b = http_clients
    marker_pk = await create_product(http_a, "marker")
    subscribers: list[Subscriber] = []
    async with contextlib.AsyncExitStack() as stack:
        for server, http, other, other_http in (
            (cluster.a, http_a, cluster.b, http_b),
            (cluster.b, http_b, cluster.a, http_a),
        ):
            every: StreamSocket = await stack.enter_async_context(
                stream_socket(server.ws_url, f"{server.name} stream socket (every change)")
            )
            await every.subscribe(other_http, action="ALL_ACTIONS", data=["ID", "NAME"])
            subscribers.append(
                Subscriber(
                    f"{server.name} stream socket (every change, subscribed through {other.name})",
                    every,
                    stream_change,
                )
            )
            marker_updates: StreamSocket = await stack.enter_async_context(
                stream_socket(server.ws_url, f"{server.name} stream socket (marker updates)")
            )
            await marker_updates.subscribe(http, action="UPDATE", pk=marker_pk, data=["ID", "NAME"])
            subscribers.append(
                Subscriber(
                    f"{server.name} stream socket (updates of product {marker_pk})",
                    marker_updates,
                    stream_change,
                    action="update",
                    pk=marker_pk,
                )
            )
            typed: TypedSocket = await stack.enter_async_context(
                typed_socket(server.ws_url, f"{server.name} graphql-transport-ws")
            )
            await typed.start("every", EVERY_CHANGE)
            await typed.start("updates", EVERY_UPDATE)
            subscribers += [
                Subscriber(
                    f"{server.name} productChanged (every change)", typed, typed_change("every")
                ),
                Subscriber(
                    f"{server.name} productChanged(action: UPDATE)",
                    typed,
                    typed_change("updates"),
                    action="update",
                ),
            ]

        async def rename_marker(name: str) -> None:
            await update_product(http_a, marker_pk, name)

        audience = Audience(subscribers, marker_pk, rename_marker)
        await audience.sync()
        yield audience


def run_script(cluster: Cluster, script: str, *args: str) -> str:
    """Run ``script`` (Python, after ``django.setup()``) in a process of its own on the
    servers' database and layer, with ``args``; its output, once it exited 0."""
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{script}", *args],
        env=cluster.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


MAKE_USERS = """
import datetime, json, sys
from django.contrib.auth.models import User
from django.utils import timezone
from tests.testapp.models import ApiToken

lifetime = float(sys.argv[1])
expires_at = None if lifetime <= 0 else timezone.now() + datetime.timedelta(seconds=lifetime)
made = {}
for name in sys.argv[2:]:
    user = User.objects.create_user(username=name)
    token = ApiToken.objects.create(user=user, key=f"{name}-token", expires_at=expires_at)
    made[name] = {"pk": user.pk, "token": token.key, "expires_at": str(expires_at)}
print(json.dumps(made))
"""


def make_users(
    cluster: Cluster, *names: str, token_lifetime: float | None = None
) -> dict[str, dict[str, Any]]:
    """Users with a token each (``{name}-token``, which expires ``token_lifetime`` seconds from
    now, if given), made by a separate process on the servers' database: name -> its ``pk``,
    ``token`` and ``expires_at``."""
    output = run_script(cluster, MAKE_USERS, str(token_lifetime or 0), *names)
    made: dict[str, dict[str, Any]] = json.loads(output.strip().splitlines()[-1])
    return made
