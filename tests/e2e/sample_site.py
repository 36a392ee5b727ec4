"""``python -m sample_site`` in a subprocess, for the tests that need the real demo site."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from .harness import ROOT, free_port, stop_process

STARTUP_TIMEOUT = 60.0


def sample_site_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    # pytest-django exports the test suite's settings; the site must use its own.
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(SAMPLE_SITE_DB=str(workdir / "sample.sqlite3"), PYTHONUNBUFFERED="1")
    return env


@dataclass
class SampleSite:
    """``python -m sample_site`` on a loopback port, its output in a file."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_sample_site(workdir: Path) -> SampleSite:
    port = free_port()
    env = sample_site_env(workdir)
    log_path = workdir / "sample_site.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "sample_site", "--port", str(port), "--no-input"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    site = SampleSite(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the sample site exited with code {process.returncode} before answering; "
                f"its output:\n{site.output()}"
            )
        try:
            response = httpx.get(f"{site.url}/", timeout=1.0)
            if response.status_code == 200:
                return site
            last_error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last_error = repr(exc)
        time.sleep(0.1)  # readiness poll of a starting process, not test synchronisation
    stop(process)
    raise RuntimeError(
        f"the sample site did not answer on {site.url} within {STARTUP_TIMEOUT} s "
        f"(last: {last_error}); its output:\n{site.output()}"
    )


#: The sample site's tests stop it like any other server child process.
stop = stop_process
