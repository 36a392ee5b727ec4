"""``bench/run.py --profile``: py-spy over the server of each named contender while N
subscribers connect and while events are delivered, and the garbage collector's pauses;
the summaries go to bench/PROFILE.md."""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from typing import Any

import profile_summary
import report
from contenders import BY_NAME
from measure import Options, describe, python_for, run_once
from supervise import BENCH, rel, say, workspace

PROFILE = BENCH / "PROFILE.md"


def gc_lines(stats: dict[str, Any], n: int, cpu_s: float | None) -> list[str]:
    """The server's garbage collections while the events were delivered, and its objects."""
    if not {"before_connect", "before_events", "after_events"} <= set(stats):
        return []
    before, after = stats["before_events"]["generations"], stats["after_events"]["generations"]
    rows = [
        [
            gen,
            str(after[gen]["collections"] - before[gen]["collections"]),
            report.number(after[gen]["total_ms"] - before[gen]["total_ms"]),
            report.number(after[gen]["max_ms"]),
        ]
        for gen in sorted(after)
    ]
    objects = stats["before_events"]["tracked_objects"] - stats["before_connect"]["tracked_objects"]
    pause = sum(after[g]["total_ms"] - before[g]["total_ms"] for g in after) / 1e3
    share = (
        f"The collector paused the server for {pause:.2f} s of the {cpu_s:.2f} s of CPU the "
        f"events took ({100 * pause / cpu_s:.0f}%). "
        if cpu_s
        else ""
    )
    return [
        f"Objects tracked by the garbage collector: {objects / n:,.0f} more per subscriber with "
        f"the {n:,} connected ({stats['before_events']['tracked_objects']:,} in all, thresholds "
        f"{tuple(stats['before_events']['thresholds'])}). {share}Collections while the events "
        "were delivered:",
        "",
        *report.table(
            ["generation", "collections", "pause ms in all", "longest pause ms (whole run)"], rows
        ),
        "",
    ]


def main(args: argparse.Namespace, argv: list[str], options: Options) -> int:
    """py-spy the server of each named contender while N subscribers connect and while events
    are delivered; the summaries go to bench/PROFILE.md."""
    names = [name.strip() for name in args.profile.split(",") if name.strip()]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        sys.exit(f"unknown contenders: {', '.join(unknown)}")
    n = max(options.sizes)
    command = shlex.join(["python", "bench/run.py", *argv])
    text = [
        "# Profiles",
        "",
        f"Written by `{command}` on {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}: "
        f"py-spy at 250 Hz (`--gil --function`: the thread running Python, by function) over "
        f"the server process while {n:,} subscribers "
        "connect and subscribe, and while events are delivered one at a time (percentages of the "
        "samples in which the server was busy; the figures in each heading were measured under "
        "the profiler, which slows the server). The garbage collector's pauses are timed by a "
        "`gc.callbacks` hook in the server (`BENCH_GC_STATS=1`, profile runs only).",
        "",
    ]
    setup_log: list[str] = []
    commands: dict[str, list[str]] = {}
    with workspace() as workdir:
        for name in names:
            contender = BY_NAME[name]
            python = python_for(contender, setup_log)
            profile_dir = workdir / f"profile-{name}"
            profile_dir.mkdir()
            say(f"profiling {name} at N={n:,} ...")
            phases = {
                "gcstats": True,
                "profile_dir": profile_dir,
                "events": max(options.events, 10),
                "frames_target": 10**9,
                "events_budget": 10.0,
            }
            result = run_once(contender, python, workdir, n, options, phases, commands)
            say(f"{name} N={n:,}: {describe(result)}")
            e = result.get("events") or {}
            cpu_per_frame = (
                e["cpu_s"] * 1e6 / e["delivered"] if e.get("cpu_s") and e.get("delivered") else None
            )
            text += [
                f"## {name}: {contender.title}",
                "",
                f"N={n:,}: connect+subscribe {report.number(result.get('connect_s'), 2)} s; "
                f"{e.get('events', 0)} events, p50 {report.number(e.get('p50_ms'))} ms, "
                f"p99 {report.number(e.get('p99_ms'))} ms, "
                f"{report.number(cpu_per_frame)} µs of server CPU per frame (all of it, "
                "idle not subtracted).",
                "",
                *gc_lines(result.get("gc") or {}, n, e.get("cpu_s")),
            ]
            for phase, title in (
                ("connect", f"connecting and subscribing {n:,} sockets"),
                ("events", "delivering the events"),
            ):
                path = profile_dir / f"{phase}.txt"
                body = (
                    profile_summary.lines(profile_summary.read(path))
                    if path.exists()
                    else ["(py-spy wrote nothing: is ptrace allowed?)"]
                )
                text += [f"### {name}: {title}", "", *body, ""]
    text += ["## Commands", "", "```sh"]
    for cmds in commands.values():
        text += cmds
    text += ["```", ""]
    path = args.results or PROFILE
    path.write_text("\n".join(text))
    print("\n".join(text))
    print(f"written to {rel(path)}")
    return 0
