"""The documentation's code runs as written.

Every Python block of the pages (``docs/*.md``) is a snippet file of ``docs/snippets/`` included
with ``--8<--``, and every snippet a page shows is run here the way a reader would run it:

* the getting-started project is built from the page's own shell steps (``startproject``,
  ``startapp``, ``makemigrations``...) and files, served by uvicorn, and driven by the page's
  clients (the stream-protocol script, the curl commands, gql, the JavaScript graphql-ws client);
* the other pages' files are added to a copy of it (the "full" project) and exercised there by the
  pytest modules of ``docs/snippets/checks/`` and the testing page's own tests, run by pytest in
  that project; settings fragments are appended to its settings or applied with
  ``override_settings``.

README.md's blocks are copies of snippet files. A Python block that cannot run as pasted is
marked ``<!-- untested: why -->`` on the line before its fence;
:func:`test_every_python_block_is_tested_or_marked` fails on any other block, so a new page
cannot bring in code that nothing runs. :data:`TESTED` says which test runs each snippet.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
from django.test import override_settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
#: Where pymdownx.snippets looks for a ``--8<--`` path, in order (mkdocs.yml's base_path).
SNIPPET_BASES = (SNIPPETS, ROOT)
#: Not pages: the pytest modules run inside the full docs project.
CHECKS = SNIPPETS / "checks"
PYTHON = Path(sys.executable)
BIN = PYTHON.parent
#: The address the snippets name; each test server listens on a free port instead.
SNIPPET_HOST = "127.0.0.1:8000"
TIMEOUT = 20.0

pytestmark = pytest.mark.e2e

# -- which test runs which snippet ----------------------------------------------------------------

#: snippet path (relative to docs/snippets) -> the tests that run it.
TESTED: dict[str, list[str]] = {}

F = TypeVar("F", bound=Callable[..., Any])


def runs(*snippets: str) -> Callable[[F], F]:
    """Declare that the decorated test runs these snippets (paths under docs/snippets)."""

    def decorate(test: F) -> F:
        for snippet in snippets:
            TESTED.setdefault(snippet, []).append(test.__name__)
        return test

    return decorate


# -- the pages' code blocks -----------------------------------------------------------------------

PYTHON_LANGUAGES = {"python", "py", "python3", "pycon"}
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)(?P<rest>.*)$")
INCLUDE = re.compile(r"""^\s*-{1,}8<-{1,}\s+["'](?P<target>[^"']+)["']\s*$""")
MARKER = re.compile(r"^\s*<!--\s*untested:\s*(?P<why>.+?)\s*-->\s*$")


@dataclass
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int
    lang: str
    body: str
    marked: str | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def includes(self) -> list[str] | None:
        """The snippet files a block consisting of ``--8<--`` lines includes (else None)."""
        lines = [line for line in self.body.splitlines() if line.strip()]
        if not lines:
            return None
        targets = []
        for line in lines:
            match = INCLUDE.match(line)
            if match is None:
                return None
            targets.append(snippet_file(match["target"]))
        return targets


def snippet_file(target: str) -> str:
    """The file of an include target (``"deployment/schema.py:schema"`` -> its path)."""
    path, _, spec = target.partition(":")
    if spec and not re.fullmatch(r"[\w-]+|\d*(:\d*)*", spec):
        path = target
    return path


def resolve(target: str) -> Path:
    for base in SNIPPET_BASES:
        if (base / target).is_file():
            return base / target
    raise AssertionError(f"no snippet file {target!r} under {SNIPPET_BASES}")


def blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not (
            lines[index].strip().startswith(fence[0] * len(fence))
            and lines[index].strip().strip(fence[0]) == ""
        ):
            body.append(lines[index][indent:])
            index += 1
        previous = lines[start - 1] if start else ""
        marker = MARKER.match(previous)
        why = marker["why"] if marker else None
        yield Block(path, start + 1, match["lang"].lower(), "\n".join(body), why)
        index += 1


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if SNIPPETS not in p.parents)


def snippet_files() -> list[str]:
    """Every snippet a page may show (checks/ and the lint config aside)."""
    return sorted(
        str(p.relative_to(SNIPPETS))
        for p in SNIPPETS.rglob("*")
        if p.is_file()
        and CHECKS not in p.parents
        and p.name != "ruff.toml"
        and not any(part.startswith((".", "__")) for part in p.relative_to(SNIPPETS).parts)
    )


def normalized(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def test_every_python_block_is_tested_or_marked() -> None:
    """Each Python block of a page includes tested snippets (or is marked), and each Python
    block of README.md is a copy of a tested snippet (or is marked)."""
    problems = []
    tested_texts = {normalized((SNIPPETS / s).read_text()): s for s in TESTED}
    for path in [*pages(), ROOT / "README.md"]:
        for block in blocks(path):
            if block.lang not in PYTHON_LANGUAGES or block.marked:
                continue
            includes = block.includes
            if path.name == "README.md" and path.parent == ROOT:
                if normalized(block.body) not in tested_texts:
                    problems.append(f"{block.where}: not a copy of a tested snippet file")
            elif includes is None:
                problems.append(
                    f"{block.where}: inline Python; move it to docs/snippets/ and include it "
                    "with --8<-- (then run it in tests/test_docs.py), or mark it "
                    "<!-- untested: why -->"
                )
            else:
                problems += [
                    f"{block.where}: {target} is not run by any test of tests/test_docs.py"
                    for target in includes
                    if target not in TESTED
                ]
    assert not problems, "\n".join(problems)


def test_every_snippet_is_shown_and_every_include_exists() -> None:
    included = set()
    snippet_texts = {normalized((SNIPPETS / s).read_text()): s for s in snippet_files()}
    for block in blocks(ROOT / "README.md"):
        if normalized(block.body) in snippet_texts:
            included.add(snippet_texts[normalized(block.body)])
    for page in pages():
        for block in blocks(page):
            for target in block.includes or []:
                resolve(target)
                included.add(target)
    orphans = sorted(set(snippet_files()) - included)
    assert not orphans, f"snippet files no page includes (nor README.md copies): {orphans}"
    unknown = sorted(set(TESTED) - set(snippet_files()))
    assert not unknown, f"TESTED names snippet files that do not exist: {unknown}"


def test_every_untested_marker_gives_a_reason_and_precedes_a_block() -> None:
    for path in [*pages(), ROOT / "README.md"]:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if MARKER.match(line):
                following = lines[number + 1] if number + 1 < len(lines) else ""
                assert FENCE.match(following), f"{path}:{number + 1}: a marker needs a block next"


# -- the site -------------------------------------------------------------------------------------


def test_the_site_builds_strictly_with_the_whole_public_api(tmp_path: Path) -> None:
    """``mkdocs build --strict`` (what ``make docs`` runs), and the API reference holds every
    name of ``strawberry_model_subs.__all__`` and the documented classes of the modules."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e .[docs]")
    import strawberry_model_subs

    site = tmp_path / "site"
    result = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    reference = (site / "reference" / "index.html").read_text()
    anchors = set(re.findall(r'id="(strawberry_model_subs[\w.]*)"', reference))
    expected = {f"strawberry_model_subs.{name}" for name in strawberry_model_subs.__all__} | {
        "strawberry_model_subs.consumers.GraphQLWSConsumer",
        "strawberry_model_subs.views.GraphQLView",
        "strawberry_model_subs.testing.StreamClient",
        "strawberry_model_subs.testing.TypedClient",
    }
    assert not expected - anchors, f"missing from the API reference: {sorted(expected - anchors)}"
    changelog = (site / "changelog" / "index.html").read_text()
    assert "Unreleased" in changelog


# -- settings fragments, in this process ----------------------------------------------------------


def fragment(snippet: str, **namespace: Any) -> dict[str, Any]:
    """The settings a fragment defines, executed over ``namespace`` (what settings.py had)."""
    code = (SNIPPETS / snippet).read_text()
    exec(compile(code, str(SNIPPETS / snippet), "exec"), namespace)
    return {k: v for k, v in namespace.items() if k.isupper()}


@runs("settings/settings.py")
def test_the_settings_page_lists_every_setting_with_its_default() -> None:
    from dataclasses import fields

    from strawberry_model_subs.conf import Settings, get_settings

    documented = fragment("settings/settings.py")["STRAWBERRY_MODEL_SUBS"]
    defaults = {f.name: f.default for f in fields(Settings)}
    assert sorted(documented) == sorted(defaults), "docs/snippets/settings/settings.py"
    for key, value in documented.items():
        expected = defaults[key]
        assert (list(value) if isinstance(expected, tuple) else value) == (
            list(expected) if isinstance(expected, tuple) else expected
        ), key
    with override_settings(STRAWBERRY_MODEL_SUBS=documented):
        assert get_settings() == Settings()


# -- the docs projects ----------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This environment less what the test run set for its own Django (settings, layers)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SMS_", "DJANGO_", "PYTEST_")) and k != "PYTHONPATH"
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def sh(command: str | list[str], cwd: Path, timeout: float = 120) -> str:
    result = subprocess.run(
        command,
        cwd=cwd,
        shell=isinstance(command, str),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=timeout,
        executable="/bin/bash" if isinstance(command, str) else None,
    )
    assert result.returncode == 0, f"{command!r} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def page_commands(snippet: str) -> list[str]:
    """The commands of a shell snippet, less those that make and fill a virtualenv (this test
    runs in one that has the package)."""
    skipped = ("python -m venv", "pip install")
    return [
        line
        for line in (SNIPPETS / snippet).read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", *skipped))
    ]


def place(snippet: str, project: Path, destination: str, *, append: bool = False) -> None:
    target = project / destination
    target.parent.mkdir(parents=True, exist_ok=True)
    text = (SNIPPETS / snippet).read_text()
    if append:
        with target.open("a") as file:
            file.write("\n\n" + text)
    else:
        target.write_text(text)


def at_port(snippet: str, port: int) -> str:
    return (SNIPPETS / snippet).read_text().replace(SNIPPET_HOST, f"127.0.0.1:{port}")


#: The getting-started page's files: snippet -> where the page puts it (+ appended or not).
GETTING_STARTED = [
    ("getting_started/models.py", "shop/models.py", False),
    ("getting_started/settings.py", "project/settings.py", True),
    ("getting_started/serializers.py", "shop/serializers.py", False),
    ("getting_started/admin.py", "shop/admin.py", False),
    ("getting_started/schema.py", "project/schema.py", False),
    ("getting_started/urls.py", "project/urls.py", False),
    ("getting_started/asgi.py", "project/asgi.py", False),
]

#: What the other pages add to the getting-started project (the "full" project).
FULL = [
    # Permissions and security
    ("security/settings.py", "project/settings.py", True),
    ("security/auth.py", "project/auth.py", False),
    ("security/asgi.py", "project/asgi.py", False),
    ("security/models.py", "shop/models.py", True),
    ("security/serializers.py", "shop/serializers.py", True),
    ("security/urls_csrf_exempt.py", "project/urls_csrf_exempt.py", False),
    ("security/revoke.py", "shop/signals.py", False),
    ("security/expiring.py", "project/auth.py", True),
    # The example client page
    ("example_client/urls.py", "project/urls_example_client.py", False),
    # Serializers and generated types
    ("serializers/serializers.py", "shop/serializers.py", True),
    # Transactions and every kind of write
    ("events/models.py", "shop/models.py", True),
    ("events/serializers.py", "shop/serializers.py", True),
    ("events/pricing.py", "shop/pricing.py", False),
    ("events/restock.py", "shop/restock.py", False),
    ("events/coupons.py", "shop/coupons.py", False),
    # Deployment
    ("deployment/schema.py", "project/schema.py", False),
    ("deployment/celery.py", "project/celery.py", False),
    ("deployment/tasks.py", "shop/tasks.py", False),
    # Testing your project
    ("testing/pyproject.toml", "pyproject.toml", False),
    ("testing/test_products.py", "tests/test_products.py", False),
    ("testing/test_typed.py", "tests/test_typed.py", False),
    ("testing/test_refusal.py", "tests/test_refusal.py", False),
]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The getting-started project, built by the page's steps."""
    project = tmp_path_factory.mktemp("getting-started")
    for command in page_commands("getting_started/install.sh"):
        sh(command, project)
    for snippet, destination, append in GETTING_STARTED:
        place(snippet, project, destination, append=append)
    for command in page_commands("getting_started/migrate.sh"):
        sh(command, project)
    return project


@pytest.fixture(scope="module")
def full(quickstart: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The getting-started project with what the other pages add."""
    project = tmp_path_factory.mktemp("full") / "site"
    shutil.copytree(quickstart, project)
    for snippet, destination, append in FULL:
        place(snippet, project, destination, append=append)
    for check in CHECKS.glob("test_*.py"):
        shutil.copy(check, project / "tests" / check.name)
    sh("python manage.py makemigrations shop && python manage.py migrate", project)
    return project


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    """A background command of a test (a server or a client), its output in a file."""

    args: list[str]
    cwd: Path
    log: Path
    env: dict[str, str] = field(default_factory=clean_env)
    process: subprocess.Popen[bytes] | None = None
    _file: IO[bytes] | None = None

    def start(self) -> Process:
        self._file = self.log.open("wb")
        self.process = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = TIMEOUT) -> str:
        """The output once it holds ``text`` (bounded; the output so far in the failure)."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.process is not None
            if self.process.poll() is not None and text not in self.output():
                raise AssertionError(
                    f"{self.args} exited before printing {text!r}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.args} did not print {text!r}:\n{self.output()}")
            time.sleep(0.05)  # polling a subprocess's output file
        return self.output()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._file is not None:
            self._file.close()
            self._file = None


def wait_for_port(port: int, process: Process) -> None:
    """Return once ``process`` accepts TCP connections on ``port`` (bounded)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert process.process is not None
        if process.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{process.args} is not listening on {port}:\n{process.output()}")
        time.sleep(0.05)  # polling a starting server


@dataclass
class Server:
    project: Path
    port: int
    process: Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def serve(project: Path, name: str) -> Iterator[Server]:
    command = (SNIPPETS / "getting_started/serve.sh").read_text().split()
    assert command == ["uvicorn", "project.asgi:application"]
    port = free_port()
    process = Process(
        [str(BIN / command[0]), command[1], "--port", str(port)],
        project,
        project / f"{name}.log",
    ).start()
    try:
        process.wait_for("Application startup complete")
        yield Server(project, port, process)
    finally:
        process.stop()
    assert "Traceback" not in process.output(), process.output()


@pytest.fixture(scope="module")
def quickstart_server(quickstart: Path) -> Iterator[Server]:
    yield from serve(quickstart, "quickstart-server")


@pytest.fixture(scope="module")
def full_server(full: Path) -> Iterator[Server]:
    yield from serve(full, "full-server")


def client(server: Server, snippet: str, *args: str, name: str | None = None) -> Process:
    """A client snippet, at the server's port, started from the project's directory."""
    script = server.project / (name or Path(snippet).name)
    script.write_text(at_port(snippet, server.port))
    return Process(
        [str(PYTHON), script.name, *args], server.project, script.with_suffix(".log")
    ).start()


# -- getting started ------------------------------------------------------------------------------


@runs(
    "getting_started/install.sh",
    "getting_started/models.py",
    "getting_started/settings.py",
    "getting_started/serializers.py",
    "getting_started/admin.py",
    "getting_started/schema.py",
    "getting_started/urls.py",
    "getting_started/asgi.py",
    "getting_started/migrate.sh",
    "getting_started/serve.sh",
    "getting_started/subscribe.sh",
    "getting_started/subscribe.py",
    "getting_started/rename.sh",
    "typed/gql_client.py",
    "typed/graphql_ws_client.js",
    "filters/stream_list.py",
    "filters/graphql_ws_list.js",
    "security/control_over_http.py",
)
def test_getting_started_delivers_a_change_to_every_kind_of_client(
    quickstart_server: Server,
) -> None:
    """The page's subscriber, gql, graphql-ws (JavaScript) and the HTTP control script all get
    the rename that the page's curl commands make; ``{ hello }`` answers "world"."""
    assert page_commands("getting_started/subscribe.sh") == ["python subscribe.py"]
    stream = client(quickstart_server, "getting_started/subscribe.py")
    typed = client(quickstart_server, "typed/gql_client.py")
    over_http = client(quickstart_server, "security/control_over_http.py")
    javascript = javascript_client(quickstart_server)
    filtered = client(quickstart_server, "filters/stream_list.py")
    filtered_js = javascript_client(quickstart_server, "filters/graphql_ws_list.js")
    try:
        stream.wait_for('"ok":true')
        stream.wait_for('"productSubscription":{"ok":true')
        over_http.wait_for("'ok': True")
        over_http.wait_for('"operation":"subscribe","ok":true')
        time.sleep(1.0)  # gql and graphql-ws acknowledge no subscription: let them subscribe
        curl = subprocess.run(
            ["bash", "-c", at_port("getting_started/rename.sh", quickstart_server.port)],
            cwd=quickstart_server.project,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert curl.stdout == '{"data":{"hello":"world"}}{"data":{"renameProduct":"Green tea"}}'
        event = stream.wait_for('"name":"Green tea"')
        frame = json.loads(event.strip().splitlines()[-1])
        assert frame["payload"]["action"] == "update"
        assert frame["payload"]["model"] == "shop.product"
        # DRF's representation on the stream protocol: UTC as "Z".
        assert frame["payload"]["data"]["updated"].endswith("Z")
        typed_output = typed.wait_for("Green tea")
        # Strawberry's DateTime on typed subscriptions: the same instant as "+00:00".
        updated = re.search(r"'updated': '([^']+)'", typed_output)
        assert updated, typed_output
        assert updated[1].endswith("+00:00")
        assert updated[1][:-6] == frame["payload"]["data"]["updated"][:-1]
        over_http.wait_for('"name":"Green tea"')
        if javascript is not None:
            assert json.loads(javascript.wait_for("Green tea").strip().splitlines()[-1]) == {
                "action": "UPDATE",
                "data": {"id": 1, "name": "Green tea"},
            }
        # "Tea" renamed "Green tea" enters the filtered lists (a create, moved).
        entered = {"moved": True, "products": {"1": "Green tea"}}
        assert json.loads(filtered.wait_for("Green tea").strip().splitlines()[-1]) == entered
        if filtered_js is not None:
            assert json.loads(filtered_js.wait_for("Green tea").strip().splitlines()[-1]) == entered
    finally:
        for process in (stream, typed, over_http, javascript, filtered, filtered_js):
            if process is not None:
                process.stop()


def javascript_client(
    server: Server, snippet: str = "typed/graphql_ws_client.js"
) -> Process | None:
    """A graphql-ws snippet run by Node.js as a browser page would run it (a WebSocket that
    sends the page's Origin), with the e2e suite's node_modules; None where Node.js is not."""
    modules = ROOT / "tests" / "e2e" / "js" / "node_modules"
    if shutil.which("node") is None or not (modules / "graphql-ws").is_dir():
        if os.environ.get("CI"):
            raise AssertionError("node and tests/e2e/js/node_modules are needed on CI")
        return None
    folder = server.project / "js" / Path(snippet).stem
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "node_modules").exists():
        (folder / "node_modules").symlink_to(modules)
    (folder / "client.mjs").write_text(at_port(snippet, server.port))
    (folder / "browser.mjs").write_text(
        "import WebSocket from 'ws';\n"
        "globalThis.WebSocket = class extends WebSocket {\n"
        "  constructor(url, protocols) {\n"
        f"    super(url, protocols, {{ origin: '{server.url}' }});\n"
        "  }\n"
        "};\n"
        "await import('./client.mjs');\n"
    )
    return Process(["node", "browser.mjs"], folder, folder / "client.log").start()


def test_a_client_that_sends_no_origin_is_refused(quickstart_server: Server) -> None:
    """AllowedHostsOriginValidator refuses a handshake without Origin (HTTP 403)."""
    import websockets

    async def connect() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{quickstart_server.port}/ws"):
            pass

    with pytest.raises(websockets.InvalidStatus, match="403"):
        asyncio.run(connect())


@runs("getting_started/daphne_settings.py")
def test_runserver_serves_the_websocket_with_daphne_first(quickstart: Path) -> None:
    """Without daphne first in INSTALLED_APPS, runserver is Django's WSGI server (404 on /ws)."""
    import websockets
    from websockets.typing import Origin

    settings = quickstart / "project" / "settings_daphne.py"
    settings.write_text(
        (quickstart / "project" / "settings.py").read_text()
        + "\n\n"
        + (SNIPPETS / "getting_started/daphne_settings.py").read_text()
    )

    async def connect(port: int) -> Any:
        origin = Origin(f"http://127.0.0.1:{port}")
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", origin=origin) as ws:
            return json.loads(await ws.recv())

    variants = [("project.settings_daphne", True), ("project.settings", False)]
    for settings_module, expect_ws in variants:
        port = free_port()
        runserver = Process(
            [str(PYTHON), "manage.py", "runserver", str(port), "--noreload"],
            quickstart,
            quickstart / f"runserver-{expect_ws}.log",
            env=clean_env(DJANGO_SETTINGS_MODULE=settings_module),
        ).start()
        try:
            wait_for_port(port, runserver)
            if expect_ws:
                assert asyncio.run(connect(port))["connect"] == "success"
            else:
                with pytest.raises(websockets.InvalidStatus, match="404"):
                    asyncio.run(connect(port))
        finally:
            runserver.stop()


@runs("deployment/settings.py")
def test_check_deploy_warns_of_the_in_memory_layer_until_redis_is_set(quickstart: Path) -> None:
    warning = "strawberry_model_subs.W004"
    # The report, not the exit status: Django 6.1's own deploy checks add an error
    # (mail.E001) for the console email backend a new project starts with.
    check = "python manage.py check --deploy --fail-level CRITICAL"
    assert warning in sh(check, quickstart)
    deploy = quickstart / "project" / "settings_deploy.py"
    deploy.write_text(
        (quickstart / "project" / "settings.py").read_text()
        + "\n\n"
        + (SNIPPETS / "deployment/settings.py").read_text()
    )
    output = sh(f"{check} --settings project.settings_deploy", quickstart)
    assert "strawberry_model_subs" not in output, output


# -- the other pages, in the full project ---------------------------------------------------------


@runs(
    "security/settings.py",
    "security/auth.py",
    "security/asgi.py",
    "security/models.py",
    "security/serializers.py",
    "security/urls_csrf_exempt.py",
    "security/revoke.py",
    "security/expiring.py",
    "example_client/urls.py",
    "serializers/serializers.py",
    "events/models.py",
    "events/serializers.py",
    "events/pricing.py",
    "events/restock.py",
    "events/coupons.py",
    "deployment/schema.py",
    "deployment/celery.py",
    "deployment/tasks.py",
    "testing/pyproject.toml",
    "testing/test_products.py",
    "testing/test_typed.py",
    "testing/test_refusal.py",
)
def test_the_pages_snippets_pass_their_tests_in_the_project(full: Path) -> None:
    """pytest, run in the full project as its developers would run it, passes the testing
    page's tests and docs/snippets/checks/ (which exercise the other pages' snippets)."""
    result = subprocess.run(
        [str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "120"],
        cwd=full,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert " passed" in result.stdout


@runs("security/gql_token_client.py")
def test_the_token_route_takes_a_gql_client_with_a_token_and_refuses_a_wrong_one(
    full: Path, full_server: Server
) -> None:
    sh(
        'python manage.py shell -c "from django.contrib.auth.models import User; '
        "User.objects.create_user('alice')\"",
        full,
    )
    created = sh("python manage.py drf_create_token alice", full)
    key = re.search(r"Generated token (\w+) for user alice", created)
    assert key, created
    good = client(full_server, "security/gql_token_client.py", key[1])
    bad = client(full_server, "security/gql_token_client.py", "wrong", name="bad_client.py")
    try:
        bad.wait_for("4403")
        assert bad.process is not None
        assert bad.process.wait(timeout=TIMEOUT) != 0
        # The good one stays subscribed: no refusal, no error, until it is stopped.
        full_server.process.wait_for('"WebSocket /ws/token" [accepted]')
        time.sleep(1.0)
        assert good.process is not None
        assert good.process.poll() is None, good.output()
    finally:
        good.stop()
        bad.stop()


@runs("testing/settings.py")
def test_the_test_settings_give_each_run_a_layer_prefix(quickstart: Path) -> None:
    place("testing/settings.py", quickstart, "project/settings_test.py")
    read_prefix = (
        "import django; django.setup(); from channels.layers import get_channel_layer; "
        "print(get_channel_layer().prefix)"
    )

    def prefix(**env: str) -> str:
        result = subprocess.run(
            [str(PYTHON), "-c", read_prefix],
            cwd=quickstart,
            capture_output=True,
            text=True,
            env=clean_env(DJANGO_SETTINGS_MODULE="project.settings_test", **env),
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert prefix(SHOP_TEST_RUN="run1") == "test-run1"
    first, second = prefix(), prefix()
    assert first.startswith("test-")
    assert first != second


@runs("readme/schema.py")
def test_the_readme_schema_answers_hello_and_has_the_subscriptions(quickstart: Path) -> None:
    """README.md's shorter schema, in the getting-started project: ``{ hello }`` is "world",
    through the view as over HTTP, and the stream's subscription fields are there."""
    place("readme/schema.py", quickstart, "project/schema_readme.py")
    script = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "from django.urls import path\n"
        "from strawberry_model_subs.views import GraphQLView\n"
        "from project.schema_readme import schema\n"
        "urlpatterns = [path('graphql', GraphQLView.as_view(schema=schema))]\n"
        "from django.test.utils import override_settings\n"
        "with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=['testserver']):\n"
        "    print(Client().get('/graphql', {'query': '{ hello }'}).json())\n"
        "print('productChanged(' in str(schema), 'productSubscription(' in str(schema))\n"
    )
    (quickstart / "readme_check.py").write_text(script)
    result = subprocess.run(
        [str(PYTHON), "readme_check.py"],
        cwd=quickstart,
        capture_output=True,
        text=True,
        env=clean_env(DJANGO_SETTINGS_MODULE="project.settings"),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["{'data': {'hello': 'world'}}", "True True"]
