"""Tables of ``bench/run.py``: the console text and bench/RESULTS.md."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from contenders import BY_NAME, WRITE_LAYERS

Result = dict[str, Any]
#: contender -> N -> what bench/client.py printed (plus the driver's notes)
Results = dict[str, dict[int, Result]]


@dataclass
class Run:
    """Everything one ``bench/run.py`` invocation measured, for the report."""

    results: Results = field(default_factory=dict)
    redis_n1: dict[str, Result] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    leak_size: int | None = None
    leak_cycles: int = 0
    phase_size: int | None = None
    skipped: dict[str, str] = field(default_factory=dict)


# -- cells ------------------------------------------------------------------------------------


def number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if digits == 0 or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def with_ratio(
    value: float | None, bare: float | None, digits: int = 1, is_bare: bool = False
) -> str:
    text = number(value, digits)
    if value is None or is_bare or bare in (None, 0):
        return text
    assert bare is not None
    return f"{text} ({value / bare:.2f}x)"


def status(result: Result | None) -> str | None:
    """Why a run has no figures ("timeout ...", "error ...", "skipped ..."), or None."""
    if result is None:
        return "not run"
    for key in ("skipped", "timeout", "error"):
        value = str(result.get(key) or "")
        if value:
            return value if value.startswith(key) else f"{key}: {value}"
    return None


def events_of(result: Result | None) -> Result:
    if result is None:
        return {}
    events: Result = result.get("events") or {}
    return events


def counts_of(result: Result, phases: Sequence[str] | None = None) -> tuple[int, int]:
    counts = result.get("counts") or {}
    chosen = counts.values() if phases is None else [counts.get(p, {}) for p in phases]
    return (
        sum(c.get("duplicates", 0) for c in chosen),
        sum(c.get("order_violations", 0) for c in chosen),
    )


# -- tables -----------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Markdown table lines (also readable as plain text: columns are padded)."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [
        line(headers),
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        *(line(r) for r in rows),
    ]


def main_table(run: Run) -> list[str]:
    headers = [
        "contender",
        "N",
        "p50 ms",
        "p99 ms",
        "frames/s",
        "CPU µs/frame",
        "RSS KB/sub",
        f"RSS KB/sub after {run.leak_cycles} cycles",
        "growth KB/cycle",
        "connect+subscribe s",
        "delivered/expected",
        "dup",
        "order",
    ]
    rows: list[list[str]] = []
    bare = run.results.get("bare", {})
    for name, by_size in run.results.items():
        for n in sorted(by_size):
            result = by_size[n]
            b = bare.get(n) or {}
            be = events_of(b)
            is_bare = name == "bare"
            why = status(result)
            if why is not None and not result.get("events"):
                rows.append([name, str(n), why, *["-"] * (len(headers) - 3)])
                continue
            e = events_of(result)
            dup, order = counts_of(result)
            leak = result.get("rss_per_sub_after_kb")
            rows.append(
                [
                    name,
                    str(n),
                    with_ratio(e.get("p50_ms"), be.get("p50_ms"), 1, is_bare),
                    with_ratio(e.get("p99_ms"), be.get("p99_ms"), 1, is_bare),
                    with_ratio(e.get("frames_per_s"), be.get("frames_per_s"), 0, is_bare),
                    with_ratio(e.get("cpu_us_per_frame"), be.get("cpu_us_per_frame"), 1, is_bare),
                    with_ratio(result.get("rss_per_sub_kb"), b.get("rss_per_sub_kb"), 1, is_bare),
                    with_ratio(leak, b.get("rss_per_sub_after_kb"), 1, is_bare)
                    if leak is not None
                    else "-",
                    number(result.get("rss_growth_kb_per_cycle"), 0),
                    with_ratio(result.get("connect_s"), b.get("connect_s"), 2, is_bare),
                    f"{e.get('delivered', 0)}/{e.get('expected', 0)}"
                    + (f" ({why})" if why else ""),
                    str(dup),
                    str(order),
                ]
            )
    return table(headers, rows)


def rate_table(run: Run) -> list[str]:
    n = run.phase_size
    if n is None:
        return []
    headers = [
        "contender",
        "N",
        "rate/s",
        "p50 ms",
        "p99 ms",
        "frames/s",
        "CPU µs/frame",
        "delivered/expected",
        "dup",
        "order",
        "readers p50/p99 ms, all reading",
        "readers p50/p99 ms, 5% stalled",
        "stalled/all-reading p99",
        "readers delivered",
        "stalled sockets closed",
    ]
    bare = (run.results.get("bare") or {}).get(n) or {}
    bs = bare.get("sustained") or {}
    rows: list[list[str]] = []
    for name, by_size in run.results.items():
        result = by_size.get(n)
        if result is None:
            continue
        s = result.get("sustained")
        st = result.get("stall")
        if not s and not st:
            why = status(result) or "not measured"
            rows.append([name, str(n), why, *["-"] * (len(headers) - 3)])
            continue
        is_bare = name == "bare"
        dup, order = counts_of(result, ("sustained", "stall-off", "stall-on"))
        row = [name, str(n)]
        if s:
            row += [
                number(s.get("rate"), 0),
                with_ratio(s.get("p50_ms"), bs.get("p50_ms"), 1, is_bare),
                with_ratio(s.get("p99_ms"), bs.get("p99_ms"), 1, is_bare),
                with_ratio(s.get("frames_per_s"), bs.get("frames_per_s"), 0, is_bare),
                with_ratio(s.get("cpu_us_per_frame"), bs.get("cpu_us_per_frame"), 1, is_bare),
                f"{s.get('delivered', 0)}/{s.get('expected', 0)}",
            ]
        else:
            row += ["-"] * 6
        row += [str(dup), str(order)]
        if st:
            off, on = st["all_reading"], st["with_stalled"]
            ratio = (
                f"{on['p99_ms'] / off['p99_ms']:.2f}x"
                if on.get("p99_ms") and off.get("p99_ms")
                else "-"
            )
            row += [
                f"{number(off.get('p50_ms'))} / {number(off.get('p99_ms'))}",
                f"{number(on.get('p50_ms'))} / {number(on.get('p99_ms'))}",
                ratio,
                f"{on.get('delivered', 0)}/{on.get('expected', 0)}",
                f"{st.get('stalled_closed_by_server', 0)} of {st.get('stalled', 0)}",
            ]
        else:
            row += ["-"] * 5
        rows.append(row)
    return table(headers, rows)


def redis_calls(result: Result | None) -> float | None:
    calls = events_of(result).get("redis_calls_per_event")
    if calls is None:
        return None
    return float(sum(calls.values()))


def redis_breakdown(result: Result | None) -> str:
    calls = events_of(result).get("redis_calls_per_event") or {}
    top = sorted(((v, k) for k, v in calls.items() if abs(v) >= 0.05), reverse=True)[:6]
    return ", ".join(f"{k} {v:.1f}" for v, k in top) or "-"


def redis_table(run: Run) -> list[str]:
    names = [n for n, by in run.results.items() if BY_NAME[n].redis]
    if not names:
        return []
    sizes = sorted({n for name in names for n in run.results[name]})
    headers = [
        "contender",
        "N=1",
        *(f"N={n:,}" for n in sizes),
        "commands per event at N=1",
        f"commands per event at N={sizes[-1]:,}",
    ]
    rows = []
    for name in names:
        n1 = run.redis_n1.get(name)
        largest = run.results[name].get(sizes[-1])
        rows.append(
            [
                name,
                number(redis_calls(n1)),
                *(number(redis_calls(run.results[name].get(n))) for n in sizes),
                redis_breakdown(n1),
                redis_breakdown(largest),
            ]
        )
    return table(headers, rows)


# -- targets ----------------------------------------------------------------------------------


def _p50(run: Run, name: str, n: int) -> float | None:
    value = events_of((run.results.get(name) or {}).get(n)).get("p50_ms")
    return float(value) if value is not None else None


def _ratio(run: Run, name: str, n: int) -> float | None:
    ours, bare = _p50(run, name, n), _p50(run, "bare", n)
    if ours is None or bare is None:
        return None
    return ours / bare


def targets(run: Run) -> list[str]:
    if not run.sizes:
        return []
    big = max(run.sizes)
    rows: list[list[str]] = []

    def verdict(ok: bool | None) -> str:
        return "-" if ok is None else ("met" if ok else "**missed**")

    def latency_target(name: str, limit: float, label: str) -> None:
        if name not in run.results:
            return
        r = _ratio(run, name, big)
        p99 = events_of(run.results[name].get(big)).get("p99_ms")
        bp99 = events_of((run.results.get("bare") or {}).get(big)).get("p99_ms")
        p99_text = f"; p99 {p99 / bp99:.2f}x" if p99 and bp99 else ""
        rows.append(
            [
                f"{label}: p50 latency ≤ {limit}x bare at N={big:,}",
                f"{r:.2f}x{p99_text}" if r is not None else "-",
                verdict(None if r is None else r <= limit),
            ]
        )

    latency_target("sms-stream", 1.5, "stream protocol, in-memory")
    latency_target("sms-stream-redis", 2.0, "stream protocol, RedisChannelLayer")
    latency_target("sms-stream-pubsub", 2.0, "stream protocol, RedisPubSubChannelLayer")
    latency_target("sms-gtws", 2.0, "graphql-transport-ws, one shared document")
    latency_target("sms-gtws-100docs", 3.0, "graphql-transport-ws, 100 distinct documents")

    for name in ("sms-stream-redis", "sms-stream-pubsub"):
        if name not in run.results:
            continue
        n1 = redis_calls(run.redis_n1.get(name))
        mid = 1000 if 1000 in run.results[name] else max(run.results[name])
        nk = redis_calls(run.results[name].get(mid))
        ok = None if n1 is None or nk is None else nk <= n1 + 0.5
        rows.append(
            [
                f"{name}: Redis commands per event do not grow with N (N=1 vs N={mid:,})",
                f"{number(n1)} vs {number(nk)}",
                verdict(ok),
            ]
        )

    if "sms-stream" in run.results:
        cpu = {
            n: events_of(r).get("cpu_us_per_frame")
            for n, r in sorted(run.results["sms-stream"].items())
        }
        known = [v for v in cpu.values() if v is not None]
        text = ", ".join(f"N={n:,}: {number(v)}" for n, v in cpu.items())
        flat = max(known) / min(known) if known and min(known) > 0 else None
        rows.append(
            [
                "stream protocol: CPU per delivered frame flat over N (max/min ≤ 1.25)",
                f"{text} (max/min {flat:.2f})" if flat else text,
                verdict(None if flat is None else flat <= 1.25),
            ]
        )
        at_big = cpu.get(big)
        rows.append(
            [
                f"stream protocol: CPU ≤ 30 µs per delivered frame at N={big:,}",
                number(at_big),
                verdict(None if at_big is None else at_big <= 30),
            ]
        )
        per_event = {
            n: events_of(r).get("cpu_ms_per_event") for n, r in run.results["sms-stream"].items()
        }
        sizes = sorted(n for n, v in per_event.items() if v is not None)
        if len(sizes) >= 2 and sizes[-1] > sizes[0]:
            lo, hi = sizes[0], sizes[-1]
            marginal = (per_event[hi] - per_event[lo]) * 1e3 / (hi - lo)  # type: ignore[operator]
            rows.append(
                [
                    f"stream protocol: marginal CPU per extra subscriber, N={lo:,} to {hi:,} "
                    "(information)",
                    f"{marginal:.1f} µs/frame",
                    "-",
                ]
            )
        rss = (run.results["sms-stream"].get(big) or {}).get("rss_per_sub_kb")
        rows.append(
            [
                f"stream protocol: idle memory per subscriber < 30 KB at N={big:,}",
                number(rss),
                verdict(None if rss is None else rss < 30),
            ]
        )
        ours = _p50(run, "sms-stream", big)
        for peer in [n for n in run.results if BY_NAME[n].group == "peer"]:
            theirs = _p50(run, peer, big)
            result = run.results[peer].get(big) or {}
            if theirs is not None and ours:
                rows.append(
                    [
                        f"≥ 10x faster than {peer} at N={big:,} (p50 latency)",
                        f"{theirs / ours:.1f}x",
                        verdict(theirs / ours >= 10),
                    ]
                )
            elif ours:
                # The peer did not run at this N: its largest completed N against ours at this N
                # is a lower bound of the speed-up.
                done = [(m, _p50(run, peer, m)) for m in sorted(run.results[peer]) if m < big]
                done = [(m, p) for m, p in done if p is not None]
                if done:
                    m, theirs_small = done[-1]
                    ours_small = _p50(run, "sms-stream", m)
                    same = f"; {theirs_small / ours_small:.1f}x at N={m:,}" if ours_small else ""
                    bound = theirs_small / ours
                    rows.append(
                        [
                            f"≥ 10x faster than {peer} at N={big:,} (p50 latency)",
                            f"> {bound:.1f}x (a lower bound: {peer} at N={m:,} against ours at "
                            f"N={big:,}; {peer} at N={big:,}: {status(result) or 'not run'})"
                            + same,
                            verdict(True) if bound >= 10 else "- (lower bound only)",
                        ]
                    )
                else:
                    rows.append(
                        [
                            f"≥ 10x faster than {peer} at N={big:,} (p50 latency)",
                            status(result) or "-",
                            "-",
                        ]
                    )
    return table(["target (reported, not asserted)", "measured", ""], rows)


# -- the write path (bench/write_path.py) -----------------------------------------------------


def _write_summary(result: Result) -> Result | None:
    summary: Result | None = result.get("summary")
    return summary


def write_path_table(data: Result) -> list[str]:
    headers = [
        "layer",
        "plain saves/s",
        "registered saves/s",
        "ratio (registered/plain time per save)",
        "ratio per round, min-max",
        "CPU µs/save plain",
        "CPU µs/save registered",
        "received/expected",
    ]
    rows: list[list[str]] = []
    for layer in WRITE_LAYERS:
        result = data["layers"].get(layer.name)
        if result is None:
            continue
        s = _write_summary(result)
        if s is None:
            why = status(result) or "no figures"
            rows.append([layer.title, why, *["-"] * (len(headers) - 2)])
            continue
        rows.append(
            [
                layer.title,
                number(s["plain_per_s"], 0),
                number(s["registered_per_s"], 0),
                f"{s['ratio']:.2f}x",
                f"{s['ratio_min']:.2f}-{s['ratio_max']:.2f}",
                number(s["plain_cpu_us"]),
                number(s["registered_cpu_us"]),
                f"{s['received']:,}/{s['expected']:,}",
            ]
        )
    return table(headers, rows)


def write_path_targets(data: Result) -> list[str]:
    rows: list[list[str]] = []
    for layer in WRITE_LAYERS:
        result = data["layers"].get(layer.name)
        if result is None:
            continue
        s = _write_summary(result)
        label = (
            f"{layer.title}: a registered save (event published and delivered) ≤ "
            f"{layer.max_ratio}x a plain save's time"
        )
        if s is None:
            rows.append([label, status(result) or "-", "-"])
            continue
        complete = s["received"] == s["expected"]
        ok = s["ratio"] <= layer.max_ratio and complete
        lost = "" if complete else f"; only {s['received']:,}/{s['expected']:,} events received"
        rows.append([label, f"{s['ratio']:.2f}x{lost}", "met" if ok else "**missed**"])
    return table(["target (reported, not asserted)", "measured", ""], rows)


def _profile_table(rows: list[Result]) -> list[str]:
    return table(
        ["function", "ncalls", "tottime s", "cumtime s"],
        [
            [
                f"`{r['function']}`",
                r["ncalls"],
                f"{r['tottime_s']:.3f}",
                f"{r['cumtime_s']:.3f}",
            ]
            for r in rows
        ],
    )


def write_path_profiles(data: Result) -> list[str]:
    lines: list[str] = []
    for layer in WRITE_LAYERS:
        result = data["layers"].get(layer.name) or {}
        profile = result.get("profile")
        if not profile:
            continue
        lines += [
            f"### Profile: {layer.title}",
            "",
            f"One more registered measure under cProfile ({profile['saves']:,} saves and the "
            f"flush, {profile['wall_s']:.2f} s under the profiler; "
            f"{profile.get('received', 0):,} events received). The top {len(profile['main'])} "
            "functions by cumulative time of the saving thread:",
            "",
            *_profile_table(profile["main"]),
            "",
        ]
        if profile.get("main_library"):
            lines += [
                "Of which the saving thread spent in the `post_save` dispatch and this library "
                "(by cumulative time):",
                "",
                *_profile_table(profile["main_library"]),
                "",
            ]
        if profile.get("publisher"):
            lines += [
                "The publisher thread over the same measure (its publishing rounds, "
                "`Publisher._publish`, wrapped for this measure only):",
                "",
                *_profile_table(profile["publisher"]),
                "",
            ]
        elif profile.get("publisher_note"):
            lines += [profile["publisher_note"], ""]
    return lines


def write_path_section(data: Result, command: str, heading: bool = True) -> list[str]:
    """The "Write path" section of bench/RESULTS.md (the console shows it without heading)."""
    o = data["options"]
    lines = ["## Write path", ""] if heading else []
    lines += [
        f"Written by `{command}` on {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
        f"in {data.get('duration_s', 0):.0f} s (`python bench/write_path.py` runs the same "
        "alone; `make bench BENCH_ARGS=--write-path-only` rewrites only this section).",
        "",
        "Saves per second of a model registered with `@model_subscription` (`Item`) against the "
        "same model unregistered (`PlainItem`: name CharField, price DecimalField, in_stock "
        "BooleanField, updated DateTimeField(auto_now)), in the same process, on PostgreSQL "
        f"({o['pg']}, database `{o['db']}`, dropped and created for each layer), one child "
        "process per channel layer (Redis "
        f"{o['redis']}, prefix `{o['prefix']}`). A measure is {o['saves']:,} "
        f"`save()` calls updating {o['rows']} rows round-robin, in autocommit (each save its "
        f"own transaction and its own event), after a warm-up of {o['warmup']} saves of each; "
        f"{o['rounds']} rounds alternate plain and registered measures (the order swapped "
        "every round) and the figures are the medians. The registered measure's timed region "
        "ends after `flush_events(timeout=60)` returned True: it holds the publisher thread's "
        "work (versions, read-back, serialization, the send). One subscriber counts the events "
        "that arrive: on the in-memory layer a sink joined to the measured process's hub (a "
        "thread of that process, as in a deployment on that layer); on the Redis layers a "
        "process of its own (as a deployment's servers are), a receiver in the group "
        f"`{o['prefix']}.bench-items` counting the events of each `sms.events` message; "
        "**received/expected** is over the measured rounds. **CPU µs/save**: the measured "
        "process's CPU (every thread: the saving one, the publisher, on the in-memory layer the "
        "subscriber) per save; PostgreSQL's and the Redis receiver's are not in it."
        + (
            f" The library at `{data.get('library', 'unknown')}`. The machine "
            f"({data['cores']} cores) had a 1-minute load average of "
            f"{data['load'][0]:.2f} before the run and {data['load'][1]:.2f} after it (this "
            "run's own processes count in the second)."
            if data.get("load")
            else ""
        ),
        "",
        *write_path_table(data),
        "",
        *write_path_targets(data),
        "",
    ]
    notes = [
        f"{layer}: {status(result)}"
        for layer, result in data["layers"].items()
        if status(result) and not result.get("summary")
    ]
    if notes:
        lines += [*(f"- {note}" for note in notes), ""]
    lines += write_path_profiles(data)
    commands = [r["command"] for r in data["layers"].values() if r.get("command")]
    if commands:
        lines += [
            "Each layer's child process, from the repository root:",
            "",
            "```sh",
            *commands,
            "```",
            "",
        ]
    return lines
