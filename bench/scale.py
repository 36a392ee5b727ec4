"""Scale: the largest N one server process can hold here, for the bare limit and this library's
two protocols: change-to-last-delivery p50 and p99 against the bare app at the same N, and the
idle memory per subscriber.

Each contender runs as in the main table (``bench/measure.py``: a fresh uvicorn server, one
client process holding every socket, one change at a time by an HTTP POST), at one size: 20,000
subscribers, or the most this machine's file-descriptor limit allows a process (its hard
``RLIMIT_NOFILE`` less a margin for the server's own files, when the limit cannot be raised).

    python bench/scale.py                    # the section "Scale" printed
    python bench/run.py --scale-only         # the same, written to bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import resource
import sys
from pathlib import Path
from typing import Any

import report
from client import raise_open_files_limit
from contenders import BY_NAME
from measure import Options, run_once
from report import TARGET_HEADERS, number, table, verdict
from results import replace_section
from supervise import say, workspace

SCALE_HEADING = "## Scale"
WANTED_N = 20_000
#: Descriptors a server (or the client) needs besides its sockets: its listening socket, epoll,
#: logs, PostgreSQL and Redis connections, the interpreter's own.
FD_MARGIN = 500
CONTENDERS = ("bare", "sms-stream", "sms-gtws")
#: The targets: p50 at most this many times the bare app's at the same N; idle memory per
#: subscriber under these KB.
MAX_P50_RATIO = 1.2
MAX_KB = {"sms-stream": 30.0, "sms-gtws": 35.0}


def largest_n() -> tuple[int, str]:
    """The N to run, and why it is not 20,000 when it is not."""
    raise_open_files_limit()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft - FD_MARGIN >= WANTED_N:
        return WANTED_N, ""
    n = (soft - FD_MARGIN) // 100 * 100
    return n, (
        f"N={n:,}, not {WANTED_N:,}: this machine's hard limit of {soft:,} open files per process "
        f"(RLIMIT_NOFILE, which needs CAP_SYS_RESOURCE to raise) leaves no room for "
        f"{WANTED_N:,} sockets plus the server's own files"
    )


def options(n: int, quick: bool) -> Options:
    return Options(
        sizes=[n],
        events=2 if quick else 5,
        frames_target=0,
        events_budget=0.0,
        leak_size=None,
        leak_cycles=0,
        phase_size=None,
        rate=10.0,
        sustained_seconds=0.0,
        stall_seconds=0.0,
        stall_fraction=0.0,
        stall_pad=0,
        bound=600.0,
        redis_n1=False,
        quiet_cap=1.0,
        connect_timeout=900.0,
    )


def measure(quick: bool = False, n: int | None = None) -> dict[str, Any]:
    """Each contender at the largest N (or ``n``): what its client measured, and the commands."""
    chosen, why = (n, "") if n is not None else largest_n()
    opts = options(chosen, quick)
    data: dict[str, Any] = {"n": chosen, "why_n": why, "results": {}, "commands": {}}
    with workspace() as workdir:
        for name in CONTENDERS:
            say(f"scale: {name} N={chosen:,} ...")
            result = run_once(
                BY_NAME[name],
                sys.executable,
                workdir,
                chosen,
                opts,
                {"timeout": 900},
                data["commands"],
            )
            data["results"][name] = result
            say(f"scale: {name} N={chosen:,}: {describe(result)}")
    return data


def describe(result: dict[str, Any]) -> str:
    status = report.status(result)
    if status:
        return status
    events = result.get("events") or {}
    kb, connect = number(result.get("rss_per_sub_kb")), number(result.get("connect_s"))
    return (
        f"p50 {number(events.get('p50_ms'))} ms, p99 {number(events.get('p99_ms'))} ms, "
        f"{kb} KB/sub, connect {connect} s"
    )


def _figure(data: dict[str, Any], name: str, key: str) -> float | None:
    result = data["results"].get(name) or {}
    value = (result.get("events") or {}).get(key) if key.endswith("_ms") else result.get(key)
    return None if value is None else float(value)


def _ratio(data: dict[str, Any], name: str, key: str) -> float | None:
    value, bare = _figure(data, name, key), _figure(data, "bare", key)
    return None if value is None or not bare else value / bare


def targets(data: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    n = data["n"]
    rows: list[tuple[str, str, bool | None]] = []
    for name, what in (("sms-stream", "stream protocol"), ("sms-gtws", "graphql-transport-ws")):
        ratio = _ratio(data, name, "p50_ms")
        rows.append(
            (
                f"{what}: p50 at N={n:,} ≤ {MAX_P50_RATIO}x the bare app's",
                "not measured" if ratio is None else f"{ratio:.2f}x",
                None if ratio is None else ratio <= MAX_P50_RATIO,
            )
        )
    for name, what in (("sms-stream", "stream-protocol socket"), ("sms-gtws", "gtws connection")):
        kb = _figure(data, name, "rss_per_sub_kb")
        rows.append(
            (
                f"idle memory per {what} at N={n:,} < {MAX_KB[name]:g} KB",
                "not measured" if kb is None else f"{kb:.1f} KB",
                None if kb is None else kb < MAX_KB[name],
            )
        )
    return rows


def section(data: dict[str, Any], command: str) -> list[str]:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    n = data["n"]
    lines = [
        SCALE_HEADING,
        "",
        f"Written by `{command}` on {when}. One server process per contender (uvicorn, "
        "in-memory layer, as in the main table), one client process holding every socket, "
        f"N={n:,} subscribers, one change at a time; change-to-last-delivery latency.",
        "",
    ]
    if data.get("why_n"):
        lines += [data["why_n"] + ".", ""]
    rows = []
    for name in CONTENDERS:
        result = data["results"].get(name) or {}
        status = report.status(result)
        if status:
            rows.append([BY_NAME[name].title, status, "", "", "", ""])
            continue
        events = result.get("events") or {}
        p50, p99 = _figure(data, name, "p50_ms"), _figure(data, name, "p99_ms")
        r50, r99 = _ratio(data, name, "p50_ms"), _ratio(data, name, "p99_ms")
        rows.append(
            [
                BY_NAME[name].title,
                number(result.get("connect_s"), 2),
                f"{number(p50)}" + ("" if name == "bare" or r50 is None else f" ({r50:.2f}x)"),
                f"{number(p99)}" + ("" if name == "bare" or r99 is None else f" ({r99:.2f}x)"),
                number(result.get("rss_per_sub_kb")),
                f"{events.get('delivered')}/{events.get('expected')}",
            ]
        )
    lines += table(
        ["server", "connect s", "p50 ms (x bare)", "p99 ms (x bare)", "RSS KB/sub", "delivered"],
        rows,
    )
    lines += ["", *table(TARGET_HEADERS, [[w, m, verdict(ok)] for w, m, ok in targets(data)])]
    lines += ["", "Its processes:", "", "```sh"]
    for name in CONTENDERS:
        lines += data["commands"].get(name, [])
    lines += ["```", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 events instead of 5")
    parser.add_argument("--n", type=int, help="subscribers (default: the most the machine allows)")
    parser.add_argument("--results", type=Path, help="rewrite this RESULTS.md's Scale section")
    args = parser.parse_args(argv)
    data = measure(args.quick, args.n)
    lines = section(data, "python bench/scale.py" + "".join(f" {a}" for a in (argv or [])))
    print("\n".join(lines))
    if args.results is not None:
        text = args.results.read_text() if args.results.exists() else ""
        args.results.write_text(replace_section(text, SCALE_HEADING, lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
