"""``make run``'s steps, end to end: set up the demo twice (idempotent), serve, answer."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .harness import ROOT, log_problems
from .sample_site import SampleSite, sample_site_env, start_sample_site, stop

pytestmark = pytest.mark.e2e


def set_up(workdir: Path) -> str:
    """``python -m sample_site --no-serve``: migrate and load the demo data, then exit."""
    result = subprocess.run(
        [sys.executable, "-m", "sample_site", "--no-serve"],
        cwd=ROOT,
        env=sample_site_env(workdir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SampleSite, list[str]]]:
    workdir = tmp_path_factory.mktemp("sample_site_smoke")
    outputs = [set_up(workdir), set_up(workdir)]
    served = start_sample_site(workdir)
    try:
        yield served, outputs
    finally:
        stop(served.process)
    assert not log_problems(served.output()), served.output()


def test_loading_the_demo_data_twice_creates_it_once(site: tuple[SampleSite, list[str]]) -> None:
    _, (first, second) = site
    assert "demo data: 0 object(s) created" not in first
    assert "demo data: 0 object(s) created" in second


def test_the_example_client_page_is_served(site: tuple[SampleSite, list[str]]) -> None:
    served, _ = site
    page = httpx.get(f"{served.url}/", timeout=10)
    assert page.status_code == 200
    assert "sms-client-config" in page.text
    script = httpx.get(f"{served.url}/static/strawberry_model_subs/client.js", timeout=10)
    assert script.status_code == 200


def test_graphiql_and_queries_are_served(site: tuple[SampleSite, list[str]]) -> None:
    served, _ = site
    ide = httpx.get(f"{served.url}/graphql", headers={"accept": "text/html"}, timeout=10)
    assert ide.status_code == 200
    assert "graphiql" in ide.text.lower()
    users = httpx.post(
        f"{served.url}/graphql", json={"query": "{ users { username } }"}, timeout=10
    )
    assert users.json() == {
        "data": {"users": [{"username": "alice"}, {"username": "bob"}, {"username": "carol"}]}
    }


def test_the_startup_output_prints_the_urls(site: tuple[SampleSite, list[str]]) -> None:
    served, _ = site
    output = served.output()
    assert f"example client  {served.url}/" in output
    assert f"GraphiQL        {served.url}/graphql" in output
