"""Process supervision of ``bench/run.py``: every child process (the servers, the clients, a
private redis-server, bench/write_path.py) runs in a session of its own and is stopped on exit,
error or signal; the temporary workspace of a run; its timestamped progress lines."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

started_at = time.monotonic()


def say(message: str) -> None:
    elapsed = time.monotonic() - started_at
    print(f"[{elapsed:6.1f} s] {message}", flush=True)


def rel(path: Path | str) -> str:
    """A path relative to the repository root when it is inside it."""
    with contextlib.suppress(ValueError):
        return str(Path(os.path.abspath(path)).relative_to(ROOT))
    return str(path)


#: Every child process still running: stopped on exit, error or signal.
_children: dict[int, subprocess.Popen[Any]] = {}


def spawn(command: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    process = subprocess.Popen(command, start_new_session=True, **kwargs)
    _children[process.pid] = process
    return process


def forget(process: subprocess.Popen[Any]) -> None:
    """No longer stop ``process`` on exit (it has ended, or :func:`stop` has stopped it)."""
    _children.pop(process.pid, None)


def stop(process: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM the process (its own session: nothing else is signalled), then SIGKILL."""
    try:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(grace)
    finally:
        forget(process)


def stop_all() -> None:
    for process in list(_children.values()):
        stop(process, grace=2.0)


def on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    """A temporary folder for databases and server logs; kept (and named) after a failure."""
    path = Path(tempfile.mkdtemp(prefix="sms-bench-"))
    keep = False
    try:
        yield path
    except BaseException:
        keep = True
        raise
    finally:
        stop_all()
        if keep:
            print(f"server logs kept in {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def run_script(main: Callable[[], int], cleanup: Callable[[], None] = stop_all) -> NoReturn:
    """A bench script's ``__main__``: exit with what ``main`` returns (130 on Ctrl-C or
    SIGTERM, see :func:`on_signal`), ``cleanup`` (its child processes stopped) in any case."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        cleanup()
