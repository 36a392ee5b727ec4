"""The example client page in a real browser, against the real sample site.

``python -m sample_site`` runs in a subprocess on its own SQLite file; headless Chromium (the
Debian package, driven by Playwright) opens the page and uses it as a person would: the control
form over the stream socket, the demo buttons, the typed panel over graphql-transport-ws. Frames
are read back from the page's log, where each entry shows the frame's text.

Skipped when ``/usr/bin/chromium`` or the ``playwright`` package is missing, except under CI
(``CI`` set), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .harness import log_problems
from .sample_site import SampleSite, start_sample_site, stop

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, WebSocketRoute

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: Milliseconds, for Playwright's waits.
TIMEOUT = 10_000

#: Labels of the sample site's demo buttons (sample_site/urls.py, DEMO_ACTIONS).
TOUCH_USER = "Update user alice"
CREATE_GADGET = "Create a gadget"


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install playwright)"
    return None


@pytest.fixture(scope="module")
def sample_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleSite]:
    reason = browser_missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test cannot run under CI: {reason}")
        pytest.skip(reason)
    site = start_sample_site(tmp_path_factory.mktemp("sample_site"))
    try:
        yield site
    finally:
        stop(site.process)


@pytest.fixture(autouse=True)
def server_log(sample_site: SampleSite) -> Iterator[None]:
    """Replaces the suite's check of the test server: this test checks the sample site's log."""
    start = len(sample_site.output())
    yield
    problems = log_problems(sample_site.output()[start:])
    assert not problems, "the sample site logged errors:\n" + "\n\n".join(problems)


@pytest.fixture(scope="module")
def browser(sample_site: SampleSite) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class OpenPage:
    page: Page
    #: Console errors and warnings, and uncaught page errors.
    problems: list[str]
    #: Every websocket the page opened, in order, passed through to the server; the test can
    #: send a message to the page on one as if the server had sent it.
    sockets: list[WebSocketRoute]


@pytest.fixture
def client_page(browser: Browser, sample_site: SampleSite) -> Iterator[OpenPage]:
    """The example client page, with every console error and page error collected."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    sockets: list[WebSocketRoute] = []

    def pass_through(socket: WebSocketRoute) -> None:
        socket.connect_to_server()
        sockets.append(socket)

    page.route_web_socket(re.compile(r"/ws$"), pass_through)
    page.goto(f"{sample_site.url}/")
    try:
        yield OpenPage(page, problems, sockets)
    finally:
        context.close()


# -- reading the page's log -------------------------------------------------------------------


def entries(page: Page, source: str, direction: str, kind: str | None = None) -> Locator:
    selector = f'#log li[data-source="{source}"][data-direction="{direction}"]'
    if kind is not None:
        selector += f'[data-kind="{kind}"]'
    return page.locator(selector)


def frame_of(entry: Locator) -> Any:
    """The JSON frame an entry shows."""
    return json.loads(entry.locator(".entry-body").inner_text())


def frames(locator: Locator) -> list[Any]:
    return [json.loads(text) for text in locator.locator(".entry-body").all_inner_texts()]


def wait_for_count(locator: Locator, count: int) -> None:
    from playwright.sync_api import expect

    expect(locator).to_have_count(count, timeout=TIMEOUT)


def log_position(page: Page, entry: Locator) -> int:
    """The index of ``entry`` among every log entry (the log is in arrival order)."""
    index: int = entry.evaluate(
        "(node) => Array.prototype.indexOf.call(node.parentNode.children, node)"
    )
    return index


def click_demo(page: Page, label: str, clicks: int) -> None:
    """Click a demo button and wait for its HTTP answer (its ``clicks``-th)."""
    page.get_by_role("button", name=label, exact=True).click()
    answers = entries(page, "http", "received", "response").filter(has_text=label)
    wait_for_count(answers, clicks)
    text = answers.nth(clicks - 1).locator(".entry-body").inner_text()
    status, _, body = text.partition("\n")
    assert status == "HTTP 200", text
    assert not json.loads(body).get("errors"), text


def send_control(
    page: Page, *, stream: str, action: str, operation: str, fields: list[str]
) -> None:
    form = page.locator("#control-form")
    form.get_by_label("Stream", exact=True).select_option(stream)
    form.get_by_label("Action", exact=True).select_option(action)
    form.get_by_role("radio", name=operation.capitalize(), exact=True).check()
    form.get_by_role("button", name="None of the fields").click()
    for field in fields:
        form.get_by_role("checkbox", name=field, exact=True).check()
    form.get_by_role("button", name="Send", exact=True).click()


# -- the test ---------------------------------------------------------------------------------


def test_example_client_page(client_page: OpenPage, tmp_path: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect

    page = client_page.page

    # The stream socket connects and the page shows its channel_id, as the connect frame says.
    expect(page.locator("#stream-status")).to_have_text("open")
    connect = entries(page, "stream", "received", "connect")
    wait_for_count(connect, 1)
    channel_id = frame_of(connect)["channel_id"]
    assert channel_id
    expect(page.locator("#channel-id")).to_have_text(channel_id)

    # The form offers the streams and fields read from the schema.
    options = page.locator("#control-stream option")
    expect(options).not_to_have_count(0)
    values = options.evaluate_all("(nodes) => nodes.map((node) => node.value)")
    assert {"userSubscription", "groupSubscription", "gadgetSubscription"} <= set(values)
    expect(page.locator("#control-stream")).to_contain_text("users (userSubscription)")

    # Subscribe to users UPDATE with two fields, over the stream socket.
    send_control(
        page,
        stream="userSubscription",
        action="UPDATE",
        operation="SUBSCRIBE",
        fields=["USERNAME", "FIRST_NAME"],
    )
    acks = entries(page, "stream", "received", "ack")
    wait_for_count(acks, 1)
    assert frame_of(acks.nth(0)) == {
        "action": "update",
        "operation": "subscribe",
        "ok": True,
        "stream": "users",
        "error": None,
    }
    sent = frames(entries(page, "stream", "sent", "control"))
    assert sent[0]["variables"] == {
        "operation": "SUBSCRIBE",
        "action": "UPDATE",
        "channelId": channel_id,
        "id": None,
        "data": ["USERNAME", "FIRST_NAME"],
        "after": "",
    }
    expect(page.locator("#held-list li")).to_have_count(1)

    # A demo mutation changes alice: the event carries exactly the two fields.
    click_demo(page, TOUCH_USER, 1)
    events = entries(page, "stream", "received", "event")
    wait_for_count(events, 1)
    event = frame_of(events.nth(0))
    assert event["stream"] == "users"
    assert event["payload"]["action"] == "update"
    assert event["payload"]["model"] == "auth.user"
    assert set(event["payload"]["data"]) == {"username", "first_name"}
    assert event["payload"]["data"]["username"] == "alice"

    # Unsubscribe, this time by HTTP POST; the ack still arrives on the socket.
    page.get_by_role("radio", name="HTTP POST").check()
    send_control(
        page, stream="userSubscription", action="UPDATE", operation="UNSUBSCRIBE", fields=[]
    )
    wait_for_count(acks, 2)
    assert frame_of(acks.nth(1))["operation"] == "unsubscribe"
    expect(page.locator("#held-list li")).to_have_count(0)
    unsubscribed_at = log_position(page, acks.nth(1))

    # Subscribe to gadgets CREATE: the marker that must arrive.
    page.get_by_role("radio", name="the stream socket (text frame)").check()
    send_control(
        page, stream="gadgetSubscription", action="CREATE", operation="SUBSCRIBE", fields=["ID"]
    )
    wait_for_count(acks, 3)
    assert frame_of(acks.nth(2))["stream"] == "gadgets"

    # Change alice again, then create a gadget. Every event passes the server's hub in commit
    # order, so had alice's update been sent, it would be logged before the gadget's creation.
    click_demo(page, TOUCH_USER, 2)
    click_demo(page, CREATE_GADGET, 1)
    wait_for_count(events, 2)
    marker = frame_of(events.nth(1))
    assert marker["stream"] == "gadgets"
    assert marker["payload"]["action"] == "create"
    assert list(marker["payload"]["data"]) == ["id"]
    assert log_position(page, events.nth(1)) > unsubscribed_at

    # The typed panel: userChanged UPDATE with two fields over graphql-transport-ws.
    typed = page.locator("#typed-form")
    typed.get_by_label("Subscription", exact=True).select_option("userChanged")
    typed.get_by_label("Action", exact=True).select_option("UPDATE")
    typed.get_by_role("button", name="None of the fields").click()
    typed.get_by_role("checkbox", name="username", exact=True).check()
    typed.get_by_role("checkbox", name="firstName", exact=True).check()
    typed.get_by_role("button", name="Subscribe", exact=True).click()
    expect(page.locator("#typed-status")).to_have_text("connected")
    wait_for_count(entries(page, "typed", "received", "connection_ack"), 1)
    wait_for_count(entries(page, "typed", "sent", "subscribe"), 1)
    expect(page.locator("#typed-list li")).to_have_count(1)

    # graphql-transport-ws does not acknowledge a subscribe, so the server's subscription is in
    # place at some moment no message announces: change alice until a next arrives (bounded).
    nexts = entries(page, "typed", "received", "next")
    touches = 2
    deadline = time.monotonic() + TIMEOUT / 1000
    while nexts.count() == 0:
        assert time.monotonic() < deadline, "no next arrived for userChanged"
        touches += 1
        click_demo(page, TOUCH_USER, touches)
        try:
            nexts.first.wait_for(timeout=1_000)
        except PlaywrightTimeoutError:
            continue
    message = frame_of(nexts.first)
    assert message["type"] == "next"
    changed = message["payload"]["data"]["userChanged"]
    assert changed["action"] == "UPDATE"
    assert changed["stream"] == "users"
    assert set(changed["data"]) == {"username", "firstName"}
    assert changed["data"]["username"] == "alice"
    expect(page.locator("#typed-list li")).to_contain_text("alice")

    # The page answers the server's pings (sent every 30 s; here one is injected on the way).
    assert len(client_page.sockets) == 2, "the stream socket and the typed socket"
    client_page.sockets[1].send(json.dumps({"type": "ping"}))
    wait_for_count(entries(page, "typed", "received", "ping"), 1)
    pongs = entries(page, "typed", "sent", "pong")
    wait_for_count(pongs, 1)
    assert frame_of(pongs) == {"type": "pong"}

    # Stop it: the client's complete is sent and the list empties.
    page.get_by_role("button", name="Stop userChanged UPDATE").click()
    wait_for_count(entries(page, "typed", "sent", "complete"), 1)
    expect(page.locator("#typed-list li")).to_have_count(0)

    # Tidy and readable at full width and in a narrow window.
    assert not page.locator("#page-alert").is_visible()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(tmp_path / "client-wide.png"), full_page=True)
    page.set_viewport_size({"width": 360, "height": 800})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a 360px window"
    page.screenshot(path=str(tmp_path / "client-narrow.png"), full_page=True)

    assert client_page.problems == []


def test_the_page_resumes_its_subscriptions_from_their_last_cursor_after_a_reconnect(
    client_page: OpenPage,
) -> None:
    from playwright.sync_api import expect

    page = client_page.page
    wait_for_count(entries(page, "stream", "received", "connect"), 1)
    send_control(
        page, stream="gadgetSubscription", action="CREATE", operation="SUBSCRIBE", fields=["ID"]
    )
    wait_for_count(entries(page, "stream", "received", "ack"), 1)
    clicks = entries(page, "http", "received", "response").filter(has_text=CREATE_GADGET).count()
    click_demo(page, CREATE_GADGET, clicks + 1)
    events = entries(page, "stream", "received", "event")
    wait_for_count(events, 1)
    seen = frame_of(events.nth(0))
    assert set(seen) == {"stream", "payload", "cursor"}

    # The socket drops; two gadgets are created meanwhile (the demo buttons post over HTTP).
    client_page.sockets[0].close(code=4000, reason="dropped by the test")
    expect(page.locator("#stream-reconnect")).to_be_visible()
    click_demo(page, CREATE_GADGET, clicks + 2)
    click_demo(page, CREATE_GADGET, clicks + 3)

    # Reconnect: the page subscribes again from the last cursor, and logs the missed events.
    page.locator("#stream-reconnect").click()
    wait_for_count(entries(page, "stream", "received", "connect"), 2)
    resumed = frames(entries(page, "stream", "sent", "control"))[-1]["variables"]
    assert resumed["after"] == seen["cursor"]
    assert resumed["action"] == "CREATE"
    assert resumed["data"] == ["ID"]
    replayed = entries(page, "stream", "received", "replayed")
    wait_for_count(replayed, 2)
    missed = frames(replayed)
    assert all(frame["payload"]["action"] == "create" for frame in missed)
    assert missed[0]["payload"]["data"]["id"] < missed[1]["payload"]["data"]["id"]
    assert seen["payload"]["data"]["id"] < missed[0]["payload"]["data"]["id"]
    expect(page.locator("#held-list li")).to_have_count(1)

    # And live events follow, as events again.
    click_demo(page, CREATE_GADGET, clicks + 4)
    wait_for_count(events, 2)
    assert frame_of(events.nth(1))["payload"]["data"]["id"] > missed[1]["payload"]["data"]["id"]
