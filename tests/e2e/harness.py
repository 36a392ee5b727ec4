"""The end-to-end harness: a real uvicorn server in a subprocess, and what the tests send it.

The server owns its SQLite file and its in-memory channel layer; the tests change models only
through its GraphQL mutations over HTTP, and read frames from real websockets (``clients``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 20.0
FRAME_TIMEOUT = 5.0

#: A typed subscription to one product's changes, resumable (``after``), with each cursor.
RESUME = """
subscription ($id: ID!, $after: String) {
  productChanged(id: $id, after: $after) { action cursor data { name } }
}
"""

#: The GraphQL type-name prefix of each stream of the test site.
STREAM_TYPES = {
    "products": "Product",
    "categories": "Category",
    "reviews": "Review",
    "note-feed": "NoteFeed",
}


# -- the server -------------------------------------------------------------------------------


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Terminate a child process, and kill it if it has not exited within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def uvicorn_ws_option() -> str:
    """``websockets-sansio`` where this uvicorn has it, else ``websockets``."""
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return "websockets-sansio" if "websockets-sansio" in result.stdout else "websockets"


@dataclass
class LiveServer:
    """A uvicorn process serving ``tests.testapp.asgi:application`` on a loopback port."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    #: The address it listens on and clients connect to, and what its command runs under
    #: (``ip netns exec NAME``: a server on a host of its own, see ``netns``).
    host: str = "127.0.0.1"
    prefix: tuple[str, ...] = ()
    #: Library settings of the server (``SMS_SETTINGS``).
    settings: dict[str, Any] = field(default_factory=dict)
    _log_file: IO[bytes] | None = None

    @property
    def db_path(self) -> Path:
        return self.workdir / "e2e.sqlite3"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(DJANGO_SETTINGS_MODULE="tests.settings", SMS_SQLITE_PATH=str(self.db_path))
        # The server must use the in-memory layer and SQLite, whatever the outer run selects.
        env.pop("SMS_CHANNEL_LAYER", None)
        env.pop("SMS_DATABASE", None)
        env["PYTHONUNBUFFERED"] = "1"
        if self.settings:
            env["SMS_SETTINGS"] = json.dumps(self.settings)
        env["SMS_HOST"] = self.host
        return env

    def migrate(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput"],
            env=self.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        self._log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                *self.prefix,
                sys.executable,
                "-m",
                "uvicorn",
                "tests.testapp.asgi:application",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--ws",
                uvicorn_ws_option(),
            ],
            env=self.env(),
            cwd=ROOT,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        """Poll ``POST /graphql`` until it answers, for at most ``STARTUP_TIMEOUT`` seconds."""
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with code {self.process.returncode} before answering; "
                    f"its output:\n{self.log_text()}"
                )
            try:
                response = httpx.post(
                    f"{self.http_url}/graphql", json={"query": "{ productCount }"}, timeout=1.0
                )
                if response.status_code == 200:
                    return
                last_error = RuntimeError(f"HTTP {response.status_code}: {response.text}")
            except httpx.HTTPError as exc:
                last_error = exc
            time.sleep(0.05)  # readiness poll of a starting process, not test synchronisation
        self.stop()
        raise RuntimeError(
            f"the server did not answer on {self.http_url} within {STARTUP_TIMEOUT} s "
            f"(last error: {last_error!r}); its output:\n{self.log_text()}"
        )

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_text(self, start: int = 0, end: int | None = None) -> str:
        data = self.log_path.read_bytes()
        return data[start:end].decode("utf-8", errors="replace")


# -- the server log ---------------------------------------------------------------------------

_TRACEBACK = "Traceback (most recent call last):"
_ERROR_LINE = re.compile(r"^(ERROR|CRITICAL):")


@dataclass
class LogWatch:
    """The server log of one test; ``allow`` names an exception the test provokes on purpose."""

    allowed: list[str] = field(default_factory=list)

    def allow(self, exception_text: str) -> None:
        self.allowed.append(exception_text)


def log_problems(text: str, allowed: Sequence[str] = ()) -> list[str]:
    """The tracebacks and ``ERROR:`` lines in ``text`` that are not expected.

    A traceback is expected when the exception line that ends it contains one of ``allowed``
    (for instance Strawberry logging a GraphQL validation error a test provoked on purpose). An
    ``ERROR:`` line followed by a traceback (uvicorn's "Exception in ASGI application") is judged
    by that traceback.
    """
    lines = text.splitlines()
    problems: list[str] = []
    for index, line in enumerate(lines):
        if _ERROR_LINE.match(line):
            following = next((later for later in lines[index + 1 :] if later.strip()), "")
            if following.strip() != _TRACEBACK:
                problems.append(line)
        if line.strip() != _TRACEBACK:
            continue
        end = index + 1
        while end < len(lines) and (not lines[end] or lines[end][:1].isspace()):
            end += 1
        exception_line = lines[end] if end < len(lines) else "<log ends inside a traceback>"
        if not any(expected in exception_line for expected in allowed):
            problems.append("\n".join(lines[index : end + 1]))
    return problems


# -- GraphQL over HTTP ------------------------------------------------------------------------


async def post_graphql(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST a GraphQL request and return the JSON answer (HTTP 200 required)."""
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, f"HTTP {response.status_code}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


async def mutate(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run a mutation that must succeed; return its ``data``."""
    body = await post_graphql(http, query, variables)
    assert not body.get("errors"), f"the mutation failed: {body}"
    data: dict[str, Any] = body["data"]
    return data


async def create_product(
    http: httpx.AsyncClient, name: str, price: str = "0", category_id: int | None = None
) -> int:
    data = await mutate(
        http,
        "mutation($name: String!, $price: Decimal!, $categoryId: ID) "
        "{ createProduct(name: $name, price: $price, categoryId: $categoryId) { id } }",
        {"name": name, "price": price, "categoryId": category_id},
    )
    return int(data["createProduct"]["id"])


async def update_product(http: httpx.AsyncClient, pk: int, name: str) -> None:
    await mutate(
        http,
        "mutation($id: ID!, $name: String!) { updateProduct(id: $id, name: $name) { id } }",
        {"id": pk, "name": name},
    )


async def delete_product(http: httpx.AsyncClient, pk: int) -> None:
    data = await mutate(http, "mutation($id: ID!) { deleteProduct(id: $id) }", {"id": pk})
    assert data == {"deleteProduct": True}


async def create_category(http: httpx.AsyncClient, name: str) -> int:
    data = await mutate(
        http, "mutation($name: String!) { createCategory(name: $name) }", {"name": name}
    )
    return int(data["createCategory"])


async def add_review(http: httpx.AsyncClient, product_id: int, rating: int) -> int:
    data = await mutate(
        http,
        "mutation($productId: ID!, $rating: Int!) "
        "{ addReview(productId: $productId, rating: $rating) }",
        {"productId": product_id, "rating": rating},
    )
    return int(data["addReview"])


async def create_product_then_fail(http: httpx.AsyncClient, name: str) -> None:
    data = await mutate(
        http, "mutation($name: String!) { createProductThenFail(name: $name) }", {"name": name}
    )
    assert data == {"createProductThenFail": False}


# -- control documents ------------------------------------------------------------------------


async def save_note(
    http: httpx.AsyncClient,
    owner: int,
    text: str,
    *,
    secret: str = "",
    shared: bool = False,
    pk: int | None = None,
) -> int:
    """Create a note of user ``owner`` (or overwrite note ``pk``) through the server; its pk."""
    data = await mutate(
        http,
        "mutation($o: ID!, $t: String!, $s: String!, $sh: Boolean!, $id: ID) "
        "{ saveNote(ownerId: $o, text: $t, secret: $s, shared: $sh, id: $id) }",
        {"o": owner, "t": text, "s": secret, "sh": shared, "id": pk},
    )
    return int(data["saveNote"])


def control_field(stream: str) -> str:
    type_name = STREAM_TYPES[stream]
    return f"{type_name[:1].lower()}{type_name[1:]}Subscription"


def control_request(
    channel_id: str,
    *,
    stream: str = "products",
    operation: str = "SUBSCRIBE",
    action: str = "UPDATE",
    pk: object = None,
    data: list[str] | None = None,
    after: str | None = None,
    where: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``{"query", "variables"}`` of a control operation, selecting ``ok error stream``."""
    declare, argument = "", ""
    if where is not None:
        declare, argument = f", $where: {STREAM_TYPES[stream]}Filter", ", where: $where"
    query = (
        "subscription Control($operation: Operation!, $action: Action!, $channelId: String!, "
        f"$id: ID, $data: [{STREAM_TYPES[stream]}Fields!], $after: String{declare}) "
        f"{{ {control_field(stream)}(operation: $operation, action: $action, "
        f"channelId: $channelId, id: $id, data: $data, after: $after{argument}) "
        "{ ok error stream } }"
    )
    variables = {
        "operation": operation,
        "action": action,
        "channelId": channel_id,
        "id": pk,
        "data": data,
        "after": after,
    }
    if where is not None:
        variables["where"] = where
    return {"query": query, "variables": variables}


def control_answer(stream: str, ok: bool, error: str | None = None) -> dict[str, Any]:
    """The GraphQL answer to a control operation (``error`` only when it is exactly known)."""
    return {"data": {control_field(stream): {"ok": ok, "error": error, "stream": stream}}}


def ack(operation: str, action: str, stream: str = "products") -> dict[str, Any]:
    """The ack frame for a successful control operation."""
    return {
        "action": action.lower(),
        "operation": operation.lower(),
        "ok": True,
        "stream": stream,
        "error": None,
    }


def event(action: str, model: str, data: dict[str, Any], stream: str) -> dict[str, Any]:
    """A notification frame."""
    return {"stream": stream, "payload": {"action": action, "model": model, "data": data}}


def product_event(action: str, data: dict[str, Any]) -> dict[str, Any]:
    return event(action, "testapp.product", data, "products")


async def control(http: httpx.AsyncClient, channel_id: str, **kwargs: Any) -> dict[str, Any]:
    """POST a control operation (see :func:`control_request`) and return the JSON answer."""
    request = control_request(channel_id, **kwargs)
    return await post_graphql(http, request["query"], request["variables"])
