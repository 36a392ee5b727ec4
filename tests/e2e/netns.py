"""A host of its own for a test's server: a network namespace (``ip netns``) joined to this one
by a veth pair, whose kernel settings (socket buffer sizes) are its own.

Needs root and ``ip`` (iproute2): :func:`unavailable` says what is missing. Each namespace is
named after this process, so that two test runs on one machine do not meet.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Host:
    """The namespace: its name, its address and the one of this side of the link."""

    name: str
    address: str
    peer: str

    @property
    def prefix(self) -> tuple[str, ...]:
        """What runs a command inside it."""
        return ("ip", "netns", "exec", self.name)


def unavailable() -> str | None:
    """Why a namespace cannot be made here, or None."""
    if os.geteuid() != 0:
        return "a network namespace needs root"
    if shutil.which("ip") is None:
        return "`ip` is not installed (apt-get install iproute2)"
    return None


def _run(*argv: str, check: bool = True) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


@contextlib.contextmanager
def host(sysctls: dict[str, str] | None = None) -> Iterator[Host]:
    """A namespace with ``sysctls`` set in it (e.g. ``{"net.ipv4.tcp_wmem": "4096 8192
    16384"}``), torn down on exit."""
    tag = os.getpid() % 100_000
    name, outside, inside = f"sms-test-{tag}", f"smst{tag}o", f"smst{tag}i"
    subnet = f"10.233.{tag % 250}"
    namespace = Host(name, f"{subnet}.2", f"{subnet}.1")
    _tear_down(name, outside)
    try:
        _run("ip", "netns", "add", name)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        _run("ip", "link", "set", inside, "netns", name)
        _run("ip", "addr", "add", f"{namespace.peer}/24", "dev", outside)
        _run("ip", "link", "set", outside, "up")
        _run(*namespace.prefix, "ip", "addr", "add", f"{namespace.address}/24", "dev", inside)
        _run(*namespace.prefix, "ip", "link", "set", inside, "up")
        _run(*namespace.prefix, "ip", "link", "set", "lo", "up")
        for key, value in (sysctls or {}).items():
            _run(*namespace.prefix, "sysctl", "-q", "-w", f"{key}={value}")
        yield namespace
    finally:
        _tear_down(name, outside)


def _tear_down(name: str, link: str) -> None:
    _run("ip", "link", "del", link, check=False)  # its peer goes with it
    _run("ip", "netns", "del", name, check=False)
