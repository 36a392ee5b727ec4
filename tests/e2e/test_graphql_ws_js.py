"""The typed ``{name}Changed`` subscriptions driven by the JavaScript ``graphql-ws`` client.

``js/client.mjs`` runs graphql-ws's ``createClient`` (over ``ws``) in a ``node`` subprocess: it
subscribes the operations of a JSON plan on one graphql-transport-ws socket and prints one JSON
line per message, result, error and completion (its header documents the format). The tests make
changes through the server's mutations over HTTP once the client says ``ready``, and read its
lines back.

Synchronisation: graphql-transport-ws has no subscription ack, so the client prints ``ready``
once a ``{ productCount }`` query sent on the same socket after the subscribe messages has been
answered, and ``synced`` once such a query sent after a ``complete`` has been answered. Why that
answer proves the server holds (or has dropped) the subscriptions is explained in
``test_gql_client.Connection.barrier``: Strawberry starts one task per operation in message
order, and a subscription's task reaches the hub's index before it first gives the loop away.

``make test`` installs the client's packages (``npm ci --prefix tests/e2e/js``). Without node or
npm these tests are skipped, except under CI (the ``CI`` variable set), where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from .clients import OpenSocket
from .harness import (
    LiveServer,
    LogWatch,
    ack,
    control_request,
    create_category,
    create_product,
    delete_product,
    product_event,
    update_product,
)

pytestmark = pytest.mark.e2e

JS_DIR = Path(__file__).with_name("js")
CLIENT = JS_DIR / "client.mjs"
#: The client's own time limit for a whole plan, and ours for each line it prints.
PLAN_TIMEOUT_MS = 15_000
LINE_TIMEOUT = 20.0


# -- node and the client's packages -----------------------------------------------------------


def node_requirement(
    which: Callable[[str], str | None], environ: Mapping[str, str]
) -> tuple[str, str]:
    """``("run", node path)``, ``("skip", reason)`` or ``("fail", reason)``.

    Without node or npm the JavaScript tests are skipped, unless ``CI`` is set: CI must run them.
    """
    node, npm = which("node"), which("npm")
    if node is not None and npm is not None:
        return "run", node
    reason = "node/npm not installed"
    if environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return "fail", f"{reason}, and CI is set: the JavaScript e2e tests must run in CI"
    return "skip", reason


@pytest.fixture(scope="module")
def node() -> str:
    verdict, detail = node_requirement(shutil.which, os.environ)
    if verdict == "skip":
        pytest.skip(detail)
    if verdict == "fail":
        pytest.fail(detail)
    if not (JS_DIR / "node_modules" / "graphql-ws" / "package.json").is_file():
        pytest.fail(
            f"the JavaScript client's packages are not installed in {JS_DIR / 'node_modules'}: "
            "run `npm ci --prefix tests/e2e/js` (`make test` does)"
        )
    return detail


@pytest.mark.parametrize(
    ("found", "ci", "verdict"),
    [
        (True, None, "run"),
        (True, "true", "run"),
        (False, None, "skip"),
        (False, "", "skip"),
        (False, "false", "skip"),
        (False, "true", "fail"),
        (False, "1", "fail"),
    ],
)
def test_missing_node_skips_the_js_tests_except_under_ci(
    found: bool, ci: str | None, verdict: str
) -> None:
    environ = {} if ci is None else {"CI": ci}
    outcome, detail = node_requirement(lambda name: f"/bin/{name}" if found else None, environ)
    assert outcome == verdict
    if found:
        assert detail == "/bin/node"
    else:
        assert detail.startswith("node/npm not installed"), detail


# -- the client process -----------------------------------------------------------------------


class NodeClient:
    """The running ``client.mjs``: its output lines, read with a bound on each wait."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []

    async def _read_line(self, what: str) -> dict[str, Any] | None:
        assert self.process.stdout is not None
        try:
            raw = await asyncio.wait_for(self.process.stdout.readline(), LINE_TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"the JS client printed nothing for {LINE_TIMEOUT} s; expected {what}; "
                f"its output so far: {self.lines}"
            ) from None
        if not raw:
            return None
        line: dict[str, Any] = json.loads(raw)
        self.lines.append(line)
        return line

    async def stderr(self) -> str:
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode(errors="replace")

    async def until(self, what: str, predicate: Callable[[dict[str, Any]], bool]) -> None:
        """Read lines until one that ``predicate`` accepts."""
        while True:
            line = await self._read_line(what)
            if line is None:
                await self.process.wait()
                raise AssertionError(
                    f"the JS client exited (code {self.process.returncode}) before {what}; "
                    f"stderr: {await self.stderr()}; output: {self.lines}"
                )
            if predicate(line):
                return

    async def ready(self) -> None:
        await self.until("ready", lambda line: line["event"] == "ready")

    async def synced(self, after: str) -> None:
        await self.until(
            f"the sync after {after}'s complete",
            lambda line: line == {"event": "synced", "after": after},
        )

    async def finish(self) -> None:
        """Read every remaining line; the client must exit 0 after ``done``."""
        while await self._read_line("the end of the output") is not None:
            pass
        try:
            code = await asyncio.wait_for(self.process.wait(), LINE_TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError("the JS client closed its output but did not exit") from None
        assert code == 0, (
            f"the JS client exited with code {code}; stderr: {await self.stderr()}; "
            f"output: {self.lines}"
        )
        assert self.lines[-1] == {"event": "done"}, self.lines

    def events(self, event: str, operation: str | None = None) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines
            if line["event"] == event and (operation is None or line.get("id") == operation)
        ]

    def payloads(self, operation: str) -> list[dict[str, Any]]:
        """The results the library handed to ``operation``'s sink, in order."""
        return [line["payload"] for line in self.events("next", operation)]

    def received(self, operation: str) -> list[dict[str, Any]]:
        """The protocol messages the socket received for ``operation``."""
        return [
            line["message"]
            for line in self.events("received")
            if line["message"].get("id") == operation
        ]


@contextlib.asynccontextmanager
async def run_client(
    node: str, server: LiveServer, operations: list[dict[str, Any]], timeout_ms: int = 0
) -> AsyncIterator[NodeClient]:
    """Start ``client.mjs`` with a plan of ``operations``; kill it on exit if still running."""
    plan = {
        "url": server.ws_url,
        "timeout_ms": timeout_ms or PLAN_TIMEOUT_MS,
        "operations": operations,
    }
    process = await asyncio.create_subprocess_exec(
        node,
        str(CLIENT),
        json.dumps(plan),
        cwd=JS_DIR,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield NodeClient(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def operation(op_id: str, query: str, results: int = 1) -> dict[str, Any]:
    return {"id": op_id, "query": query, "results": results}


def changed(selection: str = "action data { id name }", **arguments: str) -> str:
    args = ", ".join(f"{key}: {value}" for key, value in arguments.items())
    return f"subscription {{ productChanged{f'({args})' if args else ''} {{ {selection} }} }}"


def product(action: str, pk: int, name: str) -> dict[str, Any]:
    return {"data": {"productChanged": {"action": action, "data": {"id": pk, "name": name}}}}


# -- the tests --------------------------------------------------------------------------------


async def test_js_client_without_arguments_receives_create_update_delete_with_the_selected_fields(
    node: str, e2e_server: LiveServer, http: httpx.AsyncClient
) -> None:
    query = changed("action model stream data { id name price status }")
    async with run_client(node, e2e_server, [operation("all", query, results=3)]) as client:
        await client.ready()
        pk = await create_product(http, "Lamp", price="19.9")
        await update_product(http, pk, "Lamp, renamed")
        await delete_product(http, pk)
        await client.finish()
    event = {"model": "testapp.product", "stream": "products"}
    data = {"id": pk, "price": "19.90", "status": "DRAFT"}
    assert client.payloads("all") == [
        {"data": {"productChanged": {"action": action, **event, "data": {**data, "name": name}}}}
        for action, name in [
            ("CREATE", "Lamp"),
            ("UPDATE", "Lamp, renamed"),
            ("DELETE", "Lamp, renamed"),
        ]
    ]
    assert client.events("complete", "all") == [{"event": "complete", "id": "all", "by": "client"}]


async def test_js_client_id_and_action_arguments_each_match_only_their_changes(
    node: str, e2e_server: LiveServer, http: httpx.AsyncClient
) -> None:
    watched = await create_product(http, "Watched")
    other = await create_product(http, "Other")
    operations = [
        operation("by-id", changed(id=f'"{watched}"')),
        operation("deletes", changed(action="DELETE")),
        operation(
            "category-creates",
            "subscription { categoryChanged(action: CREATE) { action data { name } } }",
        ),
    ]
    async with run_client(node, e2e_server, operations) as client:
        await client.ready()
        await update_product(http, other, "Other, changed")
        await create_product(http, "Created meanwhile")
        await update_product(http, watched, "Watched, changed")
        await delete_product(http, other)
        await create_category(http, "Garden")
        await client.finish()
    # Each operation's first result is the first change it matches, made after others it must
    # not match: those never arrived.
    assert client.payloads("by-id") == [product("UPDATE", watched, "Watched, changed")]
    assert client.payloads("deletes") == [product("DELETE", other, "Other, changed")]
    assert client.payloads("category-creates") == [
        {"data": {"categoryChanged": {"action": "CREATE", "data": {"name": "Garden"}}}}
    ]


async def test_js_client_complete_of_one_subscription_leaves_its_sibling_on_the_group_receiving(
    node: str, e2e_server: LiveServer, http: httpx.AsyncClient
) -> None:
    pk = await create_product(http, "Twice watched")
    query = changed(action="UPDATE", id=f'"{pk}"')
    operations = [operation("leaving", query, results=1), operation("staying", query, results=3)]
    async with run_client(node, e2e_server, operations) as client:
        await client.ready()
        await update_product(http, pk, "First")
        await client.synced(after="leaving")  # the server has processed leaving's complete
        await update_product(http, pk, "Second")
        await update_product(http, pk, "Marker")
        await client.finish()
    assert client.payloads("leaving") == [product("UPDATE", pk, "First")]
    assert client.payloads("staying") == [
        product("UPDATE", pk, name) for name in ("First", "Second", "Marker")
    ]
    # Not just hidden by the client library: the server sent leaving nothing after its complete.
    assert [m["type"] for m in client.received("leaving")] == ["next"], client.received("leaving")


INVALID = {
    "bad-enum": (changed(action="SOMETIMES"), "Value 'SOMETIMES' does not exist in 'Action' enum"),
    "bad-id": (changed(id='"abc"'), "id 'abc' is not a valid primary key of testapp.product"),
    "bad-field": (changed("data { colour }"), "Cannot query field 'colour' on type 'ProductData'"),
}


async def test_js_client_invalid_arguments_get_error_messages_and_the_other_subscription_goes_on(
    node: str, e2e_server: LiveServer, http: httpx.AsyncClient, server_log: LogWatch
) -> None:
    # Strawberry logs the resolver's GraphQLError (the bad id) with a traceback: expected.
    server_log.allow("is not a valid primary key of testapp.product")
    operations = [operation(op_id, query) for op_id, (query, _) in INVALID.items()]
    operations.append(operation("good", changed(action="CREATE")))
    async with run_client(node, e2e_server, operations) as client:
        await client.ready()
        pk = await create_product(http, "After the errors")
        await client.finish()
    for op_id, (_, reason) in INVALID.items():
        [error] = client.events("error", op_id)
        assert len(error["errors"]) == 1, error
        assert reason in error["errors"][0]["message"], error
        messages = client.received(op_id)
        assert [m["type"] for m in messages] == ["error"], messages
        assert messages[0]["payload"] == error["errors"], messages
    assert client.payloads("good") == [product("CREATE", pk, "After the errors")]
    assert client.events("closed") == [], "the server closed the connection"


async def test_js_client_control_operation_is_a_one_shot_and_acks_the_stream_socket(
    node: str, e2e_server: LiveServer, http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    request = control_request(sock.channel_id, action="UPDATE", data=["NAME"])
    control = {"id": "control", "query": request["query"], "variables": request["variables"]}
    control["results"] = 2  # more than it gives: the server completes it after one
    async with run_client(node, e2e_server, [control]) as client:
        await client.finish()
    assert client.payloads("control") == [
        {"data": {"productSubscription": {"ok": True, "error": None, "stream": "products"}}}
    ]
    assert client.events("complete", "control") == [
        {"event": "complete", "id": "control", "by": "server"}
    ]
    assert await sock.next_frame("the ack") == ack("SUBSCRIBE", "UPDATE")
    pk = await create_product(http, "Acked")
    await update_product(http, pk, "Acked, changed")
    assert await sock.next_frame("the update") == product_event(
        "update", {"name": "Acked, changed"}
    )


async def test_js_client_exits_non_zero_naming_what_it_waited_for_on_timeout(
    node: str, e2e_server: LiveServer
) -> None:
    operations = [operation("never", changed(action="DELETE", id='"999999999"'))]
    async with run_client(node, e2e_server, operations, timeout_ms=300) as client:
        await client.until("the timeout", lambda line: line["event"] == "timeout")
        code = await asyncio.wait_for(client.process.wait(), LINE_TIMEOUT)
        stderr = await client.stderr()
    assert code == 2
    assert client.lines[-1]["pending"] == {"never": {"received": 0, "wanted": 1}}
    assert "timed out after 300 ms" in stderr, stderr
