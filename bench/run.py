"""``make bench``: this library against the bare limit, the usual patterns and its peers.

Real servers (uvicorn, one process each, ``--ws websockets-sansio``) and one real client process
(``bench/client.py``: asyncio + websockets, every subscriber in it) on loopback. For each contender
and each size N a fresh server is started, N subscribers connect and subscribe, and model changes
are triggered one at a time by an HTTP POST; then, at one size, a sustained-rate run and a run with
5% stalled readers; at the smallest size, connect/disconnect cycles for the leak check. The tables
go to the console and, with the exact commands, to bench/RESULTS.md.

    python bench/run.py                         # the default run (about 20 minutes)
    python bench/run.py --quick                 # a smoke run under 2 minutes (prints only)
    python bench/run.py --only bare,sms-stream --sizes 100,1000 --events 10
    python bench/run.py --profile sms-stream,sms-gtws   # py-spy profiles: bench/PROFILE.md
    python bench/run.py --write-path-only       # only the write-path table (bench/write_path.py)
    python bench/run.py --restarts-only         # only the restarts table (bench/restarts.py)
    python bench/run.py --filters-only          # only the filtered dispatch (bench/filters.py)
    python bench/run.py --scale-only            # only the scale table (bench/scale.py)
    python bench/run.py --faults-only           # only the faults table (bench/faults.py)
    python bench/run.py --efficiency-only       # only the multi-process table (efficiency.py)

Every run but a profile one ends with the write-path table of ``bench/write_path.py`` (saves per
second of a registered model against the same model unregistered, on PostgreSQL, for each channel
layer; ``--no-write-path`` leaves it out). ``--write-path-only`` runs only that and rewrites only
the "Write path" section of bench/RESULTS.md. Then comes the table of ``bench/restarts.py``
("Restarts and storms": 4,000 subscribers, half on each protocol, on a server killed with SIGKILL
and restarted while another process saves; lost and duplicated events, the catch-up, connect +
subscribe against the bare app's connects; with ``--quick`` N=200; ``--restarts-n`` sets N,
``--no-restarts`` leaves it out, ``--restarts-only`` runs only it and rewrites only its section).
Last, the tables of ``bench/filters.py`` ("Filtered dispatch": the CPU of the hub's dispatch per
event with 100 to 10,000 filtered subscriptions, in one process, no server: about 30 s;
``--no-filters`` leaves them out, ``--filters-only`` runs only them and rewrites only their
section). Then the table of ``bench/scale.py`` ("Scale": the bare limit and both protocols at
20,000 subscribers, or the most this machine's open-file limit allows one process; about 10
minutes; ``--no-scale`` leaves it out, ``--scale-only`` runs only it; ``--quick`` leaves it out).
Last, the table of ``bench/faults.py`` ("Faults under load": Redis and PostgreSQL restarted, a
stalled and a lossy client, one of two servers killed, while 1,000 subscribers receive 50
events/s; about 5 minutes; ``--no-faults``, ``--faults-only``; ``--quick`` leaves it out), and
that of ``bench/efficiency.py`` ("Multi-process efficiency": two servers on
RedisPubSubChannelLayer with 2,000 subscribers each against one with 4,000; about 2 minutes;
``--no-efficiency``, ``--efficiency-only``; ``--quick`` leaves it out).

This file is the command line; the work is done by its siblings: ``measure`` (the runs of a
contender), ``server`` (a contender's server process), ``supervise`` (the child processes, the
workspace), ``services`` (Redis), ``report``, ``write_report`` and ``restarts_report`` (the
tables), ``results`` (bench/RESULTS.md), ``profiling`` (``--profile``: bench/PROFILE.md),
``restarts`` (the restarts run, a process of its own), ``filters`` and ``filters_report`` (the
filtered dispatch), ``scale``, ``faults`` and ``netns`` (its client host), ``efficiency``; the
contenders and the targets they are judged by are in ``contenders``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import efficiency
import faults
import filters_report
import profiling
import report
import restarts_report
import scale
import services
import supervise
import venvs
import write_report
from contenders import BY_NAME, CONTENDERS, Contender
from filters_report import FILTERS_HEADING
from measure import (
    Options,
    python_for,
    run_contender,
    run_filters,
    run_restarts,
    run_write_path,
)
from profiling import PROFILE
from restarts_report import RESTARTS_HEADING
from results import RESULTS, replace_section, write_results
from services import REDIS, SHARED_REDIS
from supervise import rel, say, workspace
from write_report import WRITE_PATH_HEADING


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="contenders: " + ", ".join(c.name for c in CONTENDERS),
    )
    parser.add_argument("--sizes", default="100,1000,4000", help="subscriber counts N")
    parser.add_argument("--events", type=int, default=5, help="at least this many events per N")
    parser.add_argument("--only", help="comma-separated contenders (the bare limit is added)")
    parser.add_argument("--skip", help="comma-separated contenders to leave out")
    parser.add_argument("--quick", action="store_true", help="a smoke run, under 2 minutes")
    parser.add_argument(
        "--frames-target", type=int, default=30000, help="more events per N up to these frames"
    )
    parser.add_argument("--events-budget", type=float, default=1.0, help="seconds per N")
    parser.add_argument("--leak-cycles", type=int, default=10)
    parser.add_argument("--leak-size", type=int, help="N of the leak check (default: smallest)")
    parser.add_argument("--phase-size", type=int, default=1000, help="N of the rate runs")
    parser.add_argument("--rate", type=float, default=10.0, help="events/s of the rate runs")
    parser.add_argument("--sustained-seconds", type=float, default=2.0)
    parser.add_argument(
        "--rate-steps",
        default="10,50,100,200,400",
        help="events/s of the highest-sustained-rate steps, at the rate runs' N ('' for none)",
    )
    parser.add_argument("--step-seconds", type=float, default=5.0)
    parser.add_argument("--stall-seconds", type=float, default=1.5)
    parser.add_argument("--stall-fraction", type=float, default=0.05)
    parser.add_argument("--stall-pad", type=int, default=8192)
    parser.add_argument(
        "--bound",
        type=float,
        default=45.0,
        help="seconds a peer's or pattern's run may be predicted to take before it is skipped "
        "and reported as timeout",
    )
    parser.add_argument("--no-redis-n1", action="store_true", help="skip the N=1 Redis runs")
    parser.add_argument(
        "--shared-redis",
        action="store_true",
        help=f"use the Redis at {SHARED_REDIS[0]}:{SHARED_REDIS[1]} instead of a private one",
    )
    parser.add_argument("--results", type=Path, help=f"where to write (default {rel(RESULTS)})")
    parser.add_argument("--json", type=Path, help="also write every raw figure to this file")
    parser.add_argument(
        "--profile",
        metavar="NAME,...",
        help=f"py-spy the named contenders at the largest size instead: {rel(PROFILE)}",
    )
    parser.add_argument("--list", action="store_true", help="list the contenders")
    # The tables that run in a process of their own after the contenders: --X-only, --no-X.
    for name, what, script in (
        ("write-path", "the write-path table", "write_path.py"),
        ("restarts", "the restarts table", "restarts.py"),
        ("filters", "the filtered-dispatch tables", "filters.py"),
        ("scale", "the scale table", "scale.py"),
        ("faults", "the faults table", "faults.py"),
        ("efficiency", "the multi-process efficiency table", "efficiency.py"),
    ):
        parser.add_argument(
            f"--{name}-only",
            action="store_true",
            help=f"only {what} (bench/{script}): printed, and its section of RESULTS.md "
            "rewritten (with --quick: printed only)",
        )
        parser.add_argument(f"--no-{name}", action="store_true", help=f"leave {what} out")
    parser.add_argument(
        "--restarts-n", type=int, help="subscribers of the restarts run (4000; --quick: 200)"
    )
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    options = Options(
        sizes=sizes,
        events=args.events,
        frames_target=args.frames_target,
        events_budget=args.events_budget,
        leak_size=args.leak_size or sizes[0],
        leak_cycles=args.leak_cycles,
        phase_size=None,
        rate=args.rate,
        sustained_seconds=args.sustained_seconds,
        stall_seconds=args.stall_seconds,
        stall_fraction=args.stall_fraction,
        stall_pad=args.stall_pad,
        bound=args.bound,
        redis_n1=not args.no_redis_n1,
        quiet_cap=1.0,
        rate_steps=tuple(float(r) for r in args.rate_steps.split(",") if r.strip()),
        step_seconds=args.step_seconds,
    )
    if args.quick:
        options.sizes = [100] if args.sizes == "100,1000,4000" else sizes
        options.events = min(args.events, 2)
        options.frames_target = 0
        options.events_budget = 0.0
        options.leak_size = options.sizes[0]
        options.leak_cycles = min(args.leak_cycles, 1)
        options.sustained_seconds = min(args.sustained_seconds, 0.5)
        options.stall_seconds = min(args.stall_seconds, 0.5)
        options.redis_n1 = False
        options.quiet_cap = 0.3
        options.pause = 0.05
        options.rate_steps = options.rate_steps[:2]
        options.step_seconds = min(args.step_seconds, 0.5)
    if args.leak_size and args.leak_size not in options.sizes:
        options.sizes = sorted({*options.sizes, args.leak_size})
    # The rate runs at --phase-size, or the largest size below it.
    below = [n for n in options.sizes if n <= args.phase_size]
    options.phase_size = max(below) if below else options.sizes[0]
    return options


def chosen(args: argparse.Namespace) -> list[Contender]:
    names = [c.name for c in CONTENDERS]
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - set(names)
        if unknown:
            sys.exit(
                f"unknown contenders: {', '.join(sorted(unknown))} (known: {', '.join(names)})"
            )
        wanted.add("bare")
        names = [n for n in names if n in wanted]
    if args.skip:
        skipped = {n.strip() for n in args.skip.split(",")}
        names = [n for n in names if n not in skipped or n == "bare"]
    return [BY_NAME[n] for n in names]


def section_main(
    args: argparse.Namespace,
    argv: list[str],
    measured: tuple[dict[str, Any] | None, str],
    heading: str,
    section: Callable[[dict[str, Any], str], list[str]],
) -> int:
    """One table only (``--write-path-only`` and the like): its figures (or why not) printed,
    and its section (``heading``) of RESULTS.md rewritten (not --quick)."""
    data, why = measured
    if data is None:
        print(why, file=sys.stderr)
        return 1
    command = shlex.join(["python", "bench/run.py", *argv])
    lines = section(data, command)
    print()
    print("\n".join(lines))
    path = args.results or (None if args.quick else RESULTS)
    if path is None:
        print("(quick run: nothing written, pass --results PATH to keep it)")
        return 0
    text = path.read_text() if path.exists() else ""
    path.write_text(replace_section(text, heading, lines))
    print(f"the {heading[3:]!r} section of {rel(path)} rewritten")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.list:
        for c in CONTENDERS:
            print(f"{c.name:18} {c.title}")
        return 0
    signal.signal(signal.SIGTERM, supervise.on_signal)
    options = options_from(args)
    if args.profile:
        return profiling.main(args, argv, options)
    if args.write_path_only:
        measured = run_write_path(args.quick)
        return section_main(
            args, argv, measured, WRITE_PATH_HEADING, write_report.write_path_section
        )
    if args.restarts_only:
        measured = run_restarts(args.quick, args.restarts_n, args.shared_redis)
        return section_main(args, argv, measured, RESTARTS_HEADING, restarts_report.section)
    if args.filters_only:
        measured = run_filters(args.quick)
        return section_main(args, argv, measured, FILTERS_HEADING, filters_report.section)
    if args.scale_only:
        return section_main(
            args, argv, (scale.measure(args.quick), ""), scale.SCALE_HEADING, scale.section
        )
    if args.faults_only:
        return section_main(
            args, argv, (faults.measure(args.quick), ""), faults.FAULTS_HEADING, faults.section
        )
    if args.efficiency_only:
        measured = (efficiency.measure(args.quick), "")
        return section_main(args, argv, measured, efficiency.EFFICIENCY_HEADING, efficiency.section)
    contenders = chosen(args)
    run = report.Run(
        sizes=options.sizes,
        leak_size=options.leak_size,
        leak_cycles=options.leak_cycles,
        phase_size=options.phase_size,
    )
    commands: dict[str, list[str]] = {}
    used: dict[str, str] = {}
    notes: list[str] = []
    setup_log: list[str] = []
    redis_used = ""
    if any(c.redis for c in contenders):
        redis_used = (
            f"the shared Redis at {REDIS[0]}:{REDIS[1]}"
            if args.shared_redis
            else services.start_private_redis()
        )
        say(f"Redis: {redis_used}")
    redis_down = services.redis_available()
    say(
        f"sizes {', '.join(f'{n:,}' for n in options.sizes)}; contenders "
        f"{', '.join(c.name for c in contenders)}"
    )
    with workspace() as workdir:
        for contender in contenders:
            if contender.redis and redis_down:
                run.results[contender.name] = {
                    n: {"n": n, "skipped": redis_down} for n in options.sizes
                }
                notes.append(f"{contender.name}: skipped, {redis_down}")
                continue
            try:
                python = python_for(contender, setup_log)
            except venvs.VenvError as exc:
                reason = str(exc).splitlines()[0]
                run.results[contender.name] = {
                    n: {"n": n, "skipped": reason} for n in options.sizes
                }
                notes.append(f"{contender.name}: skipped, {reason}")
                say(f"{contender.name}: skipped ({reason})")
                continue
            used[contender.name] = python
            run_contender(contender, python, workdir, options, run, commands)
    write_path: dict[str, Any] | None = None
    if not args.no_write_path:
        write_path, why = run_write_path(args.quick)
        if write_path is None:
            notes.append(f"write path: not measured, {why}")
    restarts: dict[str, Any] | None = None
    if not args.no_restarts:
        restarts, why = run_restarts(args.quick, args.restarts_n, args.shared_redis)
        if restarts is None:
            notes.append(f"restarts: not measured, {why}")
    filters: dict[str, Any] | None = None
    if not args.no_filters:
        filters, why = run_filters(args.quick)
        if filters is None:
            notes.append(f"filtered dispatch: not measured, {why}")
    scaled: dict[str, Any] | None = None
    if not args.no_scale and not args.quick:
        scaled = scale.measure()
    faulted: dict[str, Any] | None = None
    if not args.no_faults and not args.quick:
        faulted = faults.measure()
    efficient: dict[str, Any] | None = None
    if not args.no_efficiency and not args.quick:
        efficient = efficiency.measure()
    duration = time.monotonic() - supervise.started_at
    notes += [f"peer virtualenv {line}" for line in setup_log]
    for name, by_size in run.results.items():
        for n, result in by_size.items():
            if result.get("server_errors"):
                notes.append(
                    f"{name} N={n:,}: the server logged {result['server_errors']} tracebacks "
                    f"(most frequent lines: {result.get('server_log')})"
                )
    print()
    print("\n".join(report.main_table(run)))
    rate = report.rate_table(run)
    if rate:
        print(f"\nSustained rate and 5% stalled readers, N={options.phase_size:,}:")
        print("\n".join(rate))
    steps = report.steps_table(run)
    if steps:
        print(f"\nHighest sustained rate, N={options.phase_size:,}:")
        print("\n".join(steps))
    redis = report.redis_table(run)
    if redis:
        print("\nRedis commands per event:")
        print("\n".join(redis))
    print("\nTargets:")
    print("\n".join(report.targets(run)))
    if write_path is not None:
        print("\nWrite path:")
        print("\n".join(write_report.write_path_table(write_path)))
        print("\n".join(write_report.write_path_targets(write_path)))
    if restarts is not None:
        print("\nRestarts and storms:")
        print("\n".join(restarts_report.console(restarts)))
    if filters is not None:
        print("\nFiltered dispatch:")
        print("\n".join(filters_report.console(filters)))
    if scaled is not None:
        print("\nScale:")
        print("\n".join(scale.section(scaled, "")[4:]))
    if faulted is not None:
        print("\nFaults under load:")
        print("\n".join(faults.section(faulted, "")[4:]))
    if efficient is not None:
        print("\nMulti-process efficiency:")
        print("\n".join(efficiency.section(efficient, "")[4:]))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "results": run.results,
                    "redis_n1": run.redis_n1,
                    "write_path": write_path,
                    "restarts": restarts,
                    "filters": filters,
                },
                indent=1,
            )
        )
    path = args.results or (None if args.quick else RESULTS)
    if path is not None:
        write_results(
            path,
            argv,
            options,
            run,
            commands,
            used,
            duration,
            notes,
            redis_used,
            write_path,
            restarts,
            filters,
        )
        command = shlex.join(["python", "bench/run.py", *argv])
        for data, heading, section in (
            (scaled, scale.SCALE_HEADING, scale.section),
            (faulted, faults.FAULTS_HEADING, faults.section),
            (efficient, efficiency.EFFICIENCY_HEADING, efficiency.section),
        ):
            if data is not None:
                path.write_text(replace_section(path.read_text(), heading, section(data, command)))
        print(f"\nwritten to {rel(path)} in {duration / 60:.1f} min")
    else:
        print(f"\n(quick run: {duration:.0f} s; nothing written, pass --results PATH to keep it)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        supervise.stop_all()
        sys.exit(130)
    finally:
        supervise.stop_all()
