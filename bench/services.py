"""Services of ``bench/run.py``: the Redis its Redis-layer runs use (a private redis-server
started for the run, or the shared one), spoken to over a plain socket; free loopback ports.
(PostgreSQL is only the write path's: ``bench/write_path.py`` sets it up itself.)"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from typing import Any

from supervise import forget, spawn

#: The Redis the Redis-layer runs use: a private redis-server started by the benchmark (so that
#: INFO commandstats counts only the benchmark's commands), or with --shared-redis this one.
SHARED_REDIS = ("127.0.0.1", 6379)
REDIS: list[Any] = list(SHARED_REDIS)
#: The Redis database the benchmark's layers use (flushed before each Redis run).
REDIS_DB = 9
#: The private redis-server's process and command line, once started.
_private: list[Any] = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_command(*commands: str) -> list[bytes]:
    """Send inline commands to the local Redis; the first line of each reply."""
    with socket.create_connection((REDIS[0], REDIS[1]), timeout=5) as sock:
        sock.sendall("".join(f"{c}\r\n" for c in commands).encode())
        replies: list[bytes] = []
        buffer = b""
        while len(replies) < len(commands):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
            while b"\r\n" in buffer and len(replies) < len(commands):
                line, buffer = buffer.split(b"\r\n", 1)
                replies.append(line)
        return replies


def start_private_redis() -> str:
    """Start a redis-server of our own on a free loopback port (stopped on exit); describe it."""
    binary = shutil.which("redis-server")
    if binary is None:
        return f"the shared Redis at {REDIS[0]}:{REDIS[1]} (no redis-server on PATH)"
    port = free_port()
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    _private[:] = [spawn(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), command]
    REDIS[:] = ["127.0.0.1", port]
    if _wait_for_redis(10.0):
        return f"a private `redis-server --port {port} --save '' --appendonly no`"
    REDIS[:] = list(SHARED_REDIS)
    _private.clear()
    return f"the shared Redis at {REDIS[0]}:{REDIS[1]} (the private redis-server did not start)"


def _wait_for_redis(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if redis_command("PING") == [b"+PONG"]:
                return True
        time.sleep(0.02)
    return False


def private_redis() -> bool:
    """Whether the Redis in use is the private redis-server (which a run may stop)."""
    return bool(_private) and list(REDIS) != list(SHARED_REDIS)


def stop_private_redis() -> None:
    """Stop the private redis-server at once (SIGKILL: no persistence, every key is gone), as
    a crashed or restarted Redis without persistence; :func:`start_private_redis_again`
    starts it on the same port."""
    if not _private:
        raise RuntimeError("no private redis-server to stop")
    process = _private[0]
    process.kill()
    process.wait(10)
    forget(process)


def start_private_redis_again(timeout: float = 10.0) -> None:
    """Start the private redis-server again, on its port, empty; wait until it answers."""
    if not _private:
        raise RuntimeError("no private redis-server to start")
    _private[0] = spawn(_private[1], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not _wait_for_redis(timeout):
        raise RuntimeError(f"the private redis-server did not answer in {timeout:g} s")


def redis_available() -> str | None:
    """None when Redis answers PING, else the reason."""
    try:
        reply = redis_command("PING")
    except OSError as exc:
        return f"Redis at {REDIS[0]}:{REDIS[1]} does not answer ({exc})"
    return None if reply == [b"+PONG"] else f"Redis answered {reply!r}"
