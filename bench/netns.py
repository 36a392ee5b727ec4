"""A client host of ``bench/faults.py``: a network namespace of its own (``ip netns``), joined to
this machine by a veth pair, so that its sockets cross a real link to the server; and that link
made lossy. This kernel has no ``netem`` qdisc (``tc qdisc add ... netem`` answers "Specified
qdisc kind is unknown"), so the loss is nftables' (``numgen random mod 100 < P drop``, on the
namespace's input and output: data and acknowledgements alike); no delay is added.

Needs root, ``ip`` (iproute2) and ``nft`` (Debian's nftables); :func:`unavailable` says what is
missing.

    with client_host() as run_in:       # the namespace made, torn down on exit
        process = subprocess.Popen(run_in([sys.executable, "client.py"]))
        set_loss(5)                     # 5% of packets each way dropped
        set_loss(0)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator

NAMESPACE = "sms-bench-client"
HOST_IF, CLIENT_IF = "smsb-host", "smsb-client"
#: The server's address as the namespace sees it, and the namespace's own.
HOST_IP, CLIENT_IP = "10.231.0.1", "10.231.0.2"
TABLE = "sms_bench_loss"


def unavailable() -> str | None:
    """Why a namespace cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (apt-get install {package})"
    return None


def _run(*argv: str, check: bool = True) -> None:
    subprocess.run(argv, check=check, capture_output=True, text=True)


def _in_namespace(*argv: str) -> list[str]:
    return ["ip", "netns", "exec", NAMESPACE, *argv]


def _tear_down() -> None:
    _run("ip", "link", "del", HOST_IF, check=False)  # also removes its peer
    _run("ip", "netns", "del", NAMESPACE, check=False)


@contextlib.contextmanager
def client_host() -> Iterator[Callable[[list[str]], list[str]]]:
    """Make the namespace and its link (left over ones removed first); yield a function that
    turns a command into the same command run inside it."""
    _tear_down()
    try:
        _run("ip", "netns", "add", NAMESPACE)
        _run("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", CLIENT_IF)
        _run("ip", "link", "set", CLIENT_IF, "netns", NAMESPACE)
        _run("ip", "addr", "add", f"{HOST_IP}/24", "dev", HOST_IF)
        _run("ip", "link", "set", HOST_IF, "up")
        _run(*_in_namespace("ip", "addr", "add", f"{CLIENT_IP}/24", "dev", CLIENT_IF))
        _run(*_in_namespace("ip", "link", "set", CLIENT_IF, "up"))
        _run(*_in_namespace("ip", "link", "set", "lo", "up"))
        yield lambda argv: _in_namespace(*argv)
    finally:
        _tear_down()


def set_loss(percent: int) -> None:
    """Drop ``percent`` % of the packets into and out of the namespace (0: none)."""
    _run(*_in_namespace("nft", "delete", "table", "inet", TABLE), check=False)
    if percent <= 0:
        return
    _run(*_in_namespace("nft", "add", "table", "inet", TABLE))
    for chain, hook in (("in", "input"), ("out", "output")):
        _run(
            *_in_namespace(
                "nft",
                "add",
                "chain",
                "inet",
                TABLE,
                chain,
                f"{{ type filter hook {hook} priority 0; }}",
            )
        )
        _run(
            *_in_namespace(
                "nft",
                "add",
                "rule",
                "inet",
                TABLE,
                chain,
                "numgen",
                "random",
                "mod",
                "100",
                "<",
                str(percent),
                "drop",
            )
        )
