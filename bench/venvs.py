"""The peers' own virtualenvs under bench/.venvs/ (git-ignored), installed from the exact pins in
bench/peers/<name>.txt and reused while the pins and the interpreter stay the same."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
VENVS = BENCH / ".venvs"
PEERS = BENCH / "peers"


@dataclass(frozen=True)
class PeerVenv:
    name: str
    #: "major.minor" the venv needs, or None for this interpreter's version.
    python: str | None = None
    why: str = ""

    @property
    def path(self) -> Path:
        return VENVS / self.name

    @property
    def requirements(self) -> Path:
        return PEERS / f"{self.name}.txt"

    @property
    def executable(self) -> Path:
        return self.path / "bin" / "python"


PEER_VENVS = {
    "dcrf": PeerVenv("dcrf"),
    # 0.9.1 (the latest release) passes coroutines to asyncio.wait(), an error since Python 3.11.
    "dcgw": PeerVenv(
        "dcgw", "3.10", "django-channels-graphql-ws 0.9.1 needs Python <= 3.10 (asyncio.wait)"
    ),
}


class VenvError(Exception):
    pass


def _works(candidate: str, version: str) -> bool:
    try:
        out = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def find_python(version: str | None) -> str:
    """An interpreter of ``version``: this one's base, ``pythonX.Y`` on PATH, pyenv's."""
    if version is None:
        return getattr(sys, "_base_executable", sys.executable)
    candidates = [
        shutil.which(f"python{version}") or "",
        *sorted(
            glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}"))
        ),
        f"/usr/bin/python{version}",
        f"/usr/local/bin/python{version}",
    ]
    for candidate in candidates:
        if candidate and _works(candidate, version):
            return candidate
    raise VenvError(f"no Python {version} interpreter found (looked on PATH, in pyenv, /usr)")


def _stamp(spec: PeerVenv, python: str) -> str:
    digest = hashlib.sha256(spec.requirements.read_bytes())
    digest.update(python.encode())
    return digest.hexdigest()


def ensure(spec: PeerVenv, log: list[str]) -> Path:
    """Create or reuse ``bench/.venvs/<name>``; returns its interpreter."""
    python = find_python(spec.python)
    stamp_file = spec.path / ".bench-stamp"
    stamp = _stamp(spec, python)
    if stamp_file.exists() and stamp_file.read_text() == stamp and spec.executable.exists():
        return spec.executable
    started = time.monotonic()
    print(f"  creating {spec.path.relative_to(BENCH.parent)} ({python}) ...", flush=True)
    shutil.rmtree(spec.path, ignore_errors=True)
    commands = [
        [python, "-m", "venv", str(spec.path)],
        [
            str(spec.executable),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(spec.requirements),
        ],
    ]
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(spec.path, ignore_errors=True)
            raise VenvError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    stamp_file.write_text(stamp)
    log.append(f"created {spec.name} in {time.monotonic() - started:.0f} s")
    return spec.executable
