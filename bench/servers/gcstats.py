"""Garbage-collector pauses of a server, for ``bench/run.py --profile`` (``BENCH_GC_STATS=1``).

``install()`` times every collection with ``gc.callbacks``; ``snapshot()`` reports, per
generation, the collections, their total and longest pause, and the objects the collector tracks;
when the server runs with ``PYTHONTRACEMALLOC`` set (``bench/soak.py --trace-memory``), also the
source lines whose memory grew most since the first snapshot.
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from typing import Any

_started: list[float] = [0.0]
_stats: dict[int, list[float]] = {0: [0, 0.0, 0.0], 1: [0, 0.0, 0.0], 2: [0, 0.0, 0.0]}
_baseline: list[tracemalloc.Snapshot] = []


def _callback(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    elapsed = time.perf_counter() - _started[0]
    stats = _stats[info["generation"]]
    stats[0] += 1
    stats[1] += elapsed
    stats[2] = max(stats[2], elapsed)


def enabled() -> bool:
    return os.environ.get("BENCH_GC_STATS") == "1"


def install() -> None:
    if enabled() and _callback not in gc.callbacks:
        gc.callbacks.append(_callback)


def snapshot() -> dict[str, Any]:
    return {
        "generations": {
            str(gen): {"collections": int(s[0]), "total_ms": s[1] * 1e3, "max_ms": s[2] * 1e3}
            for gen, s in _stats.items()
        },
        "tracked_objects": len(gc.get_objects()),
        "thresholds": gc.get_threshold(),
        "grown": _grown(),
    }


def _grown(top: int = 15) -> list[str]:
    """The lines whose traced memory grew most since the first call (none before it)."""
    if not tracemalloc.is_tracing():
        return []
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    if not _baseline:
        _baseline.append(snapshot)
        return []
    return [str(stat) for stat in snapshot.compare_to(_baseline[0], "lineno")[:top]]
