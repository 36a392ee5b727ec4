"""bench/RESULTS.md: the file of a whole ``bench/run.py`` run (how it is measured, the tables,
the notes, the versions, the exact commands), or only its write-path, restarts or filtered-dispatch
section replaced."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shlex
from pathlib import Path
from typing import Any

import filters_report
import report
import restarts_report
import write_report
from measure import Options
from server import interpreter
from services import REDIS_DB
from supervise import BENCH, rel

RESULTS = BENCH / "RESULTS.md"


def machine() -> list[str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    return [
        f"{os.cpu_count()} cores ({cpu}){memory}, Linux {platform.release()}, "
        f"client and driver on Python {platform.python_version()}."
    ]


def versions_table(used: dict[str, str]) -> list[str]:
    rows = []
    for name, python in used.items():
        v = interpreter(python).versions
        rows.append([name, rel(python), ", ".join(f"{k} {val}" for k, val in v.items())])
    return report.table(["contender", "interpreter", "versions"], rows)


def write_results(
    path: Path,
    argv: list[str],
    options: Options,
    run: report.Run,
    commands: dict[str, list[str]],
    used: dict[str, str],
    duration: float,
    notes: list[str],
    redis_used: str = "",
    write_path: dict[str, Any] | None = None,
    restarts: dict[str, Any] | None = None,
    filters: dict[str, Any] | None = None,
) -> None:
    command = shlex.join(["python", "bench/run.py", *argv])
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` (`make bench BENCH_ARGS=...` runs the same) on "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, in {duration / 60:.1f} min.",
        "",
        *machine(),
        "",
        "## How it is measured",
        "",
        "Every contender serves one model (`Item`: id, name, seq) from one uvicorn process "
        "(`--ws websockets-sansio`, uvloop, httptools), started fresh for each N. One client "
        "process (asyncio + `websockets`' sans-I/O protocol) holds every subscriber. An event is "
        "one `POST /trigger?seq=k` that saves the item with `Model.save()` (SQLite), so each "
        "contender's own signal handling runs; the bare limit's POST hands one pre-encoded frame "
        "to every socket's queue.",
        "",
        "- **p50/p99 ms**: change-to-last-delivery latency, client clock, from just before the "
        "POST is written to the receipt of the frame by the last of the N subscribers; events "
        f"one at a time, at least {options.events} per size and more (up to "
        f"{options.frames_target:,} frames or {options.events_budget:g} s) at small N. With few "
        "events p99 is the slowest event.",
        "- **frames/s**: N / latency, the median over those events.",
        "- **CPU µs/frame**: server utime+stime (`/proc/PID/stat`) from the first POST until the "
        "server is idle again, less the idle CPU of an equally long quiet interval right after "
        f"(at most {options.quiet_cap:g} s, scaled), divided by the frames delivered. It "
        "includes the POST, the database write and the serialization: at small N these fixed "
        "costs per event dominate.",
        "- **RSS KB/sub**: server VmRSS (`/proc/PID/status`) with N idle subscribers minus before "
        "they connected (after a warm-up of 10), per subscriber; **after cycles**: the same "
        f"after {options.leak_cycles} more times closing and reconnecting all N "
        f"(at N={options.leak_size}); **growth/cycle**: the RSS growth per cycle after the "
        "first one (by then the allocator has reached its high-water mark, so steady growth here "
        "is memory kept per connection).",
        "- **connect+subscribe s**: wall time to connect and subscribe all N (64 handshakes in "
        "flight); **delivered/expected** over the timed events; **dup** (a frame received twice "
        "by one socket) and **order** (a socket receiving an older seq after a newer one) over "
        "every phase of the run.",
        "- **(x)**: the figure divided by the bare limit's at the same N in this run.",
        "",
        "## Results",
        "",
        *report.main_table(run),
        "",
    ]
    rate = report.rate_table(run)
    if rate:
        lines += [
            f"### Sustained rate and stalled readers (N={run.phase_size:,})",
            "",
            f"Sustained: {options.rate:g} events/s for {options.sustained_seconds:g} s without "
            "waiting for deliveries (frames/s: frames delivered / time from the first POST to the "
            f"last receipt). Stalled readers: {options.rate:g} events/s for "
            f"{options.stall_seconds:g} s with {options.stall_pad:,}-byte padded frames, first "
            "with every subscriber reading, then with "
            f"{options.stall_fraction:.0%} of them (sockets with a 4 KB receive buffer) no longer "
            "reading; the latency is the readers'. A ratio near 1 means the stalled readers do "
            "not delay the others.",
            "",
            *rate,
            "",
        ]
    steps = report.steps_table(run)
    if steps:
        lines += [
            f"### Highest sustained rate (N={run.phase_size:,})",
            "",
            f"Events at {', '.join(f'{r:g}' for r in options.rate_steps)} per second in turn, "
            f"{options.step_seconds:g} s each, not waiting for deliveries (each saved by the "
            "server's trigger view, in process), up to the first step whose p99 was 100 ms or "
            "more or that lost a frame: the highest rate that passed, the frames/s delivered "
            "there (x the bare app's at its own highest), and the step that failed.",
            "",
            *steps,
            "",
        ]
    redis = report.redis_table(run)
    if redis:
        lines += [
            "### Redis commands per event",
            "",
            "`INFO commandstats` deltas over the events, less the commands of the quiet interval "
            f"(the layers' blocking receives), per event, on {redis_used or 'Redis'}, which the "
            f"Redis-layer runs use (database {REDIS_DB}).",
            "",
            *redis,
            "",
        ]
    lines += ["## Targets", "", *report.targets(run), ""]
    if write_path is not None:
        lines += write_report.write_path_section(write_path, command)
    if restarts is not None:
        lines += restarts_report.section(restarts, command)
    if filters is not None:
        lines += filters_report.section(filters, command)
    if notes:
        lines += ["## Notes", "", *(f"- {note}" for note in notes), ""]
    lines += ["## Versions", "", *versions_table(used), "", "## Exact commands", ""]
    lines += [
        f"`{command}` from the repository root. For each contender: its server (one per N; the "
        "database file is a fresh copy of a migrated template in a temporary folder, the port a "
        "free one), then the client of each run.",
        "",
    ]
    for name, cmds in commands.items():
        lines += [f"**{name}**", "", "```sh", *cmds, "```", ""]
    path.write_text("\n".join(lines))


def replace_section(text: str, heading: str, section: list[str]) -> str:
    """``text`` (a RESULTS.md) with its section ``heading`` (up to the next ``## `` heading)
    replaced by ``section``; without one, ``section`` goes before "## Notes" or
    "## Versions", or at the end."""
    lines = text.splitlines()
    body = list(section)
    while body and not body[-1].strip():
        body.pop()
    body.append("")
    if heading in lines:
        start = lines.index(heading)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
    else:
        start = end = next(
            (i for i, line in enumerate(lines) if line in ("## Notes", "## Versions")), len(lines)
        )
    return "\n".join([*lines[:start], *body, *lines[end:]]) + "\n"
