"""Tables of ``bench/run.py``: the console text and bench/RESULTS.md (the write path's tables:
``write_report``)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from contenders import BY_NAME, CONTENDERS, REDIS_GROWTH_N, Contender, Targets

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


def highest_step(result: Result | None) -> Result | None:
    """The highest step of the sustained-rate run that passed (None: none did, or none ran)."""
    passed = [s for s in (result or {}).get("steps") or [] if s.get("passed")]
    return passed[-1] if passed else None


def steps_table(run: Run) -> list[str]:
    """The highest sustained rate of each contender at the rate runs' N: the highest step whose
    p99 stayed under the bound with every frame delivered, and the step that failed after it."""
    n = run.phase_size
    if n is None or not any((r.get(n) or {}).get("steps") for r in run.results.values()):
        return []
    bare_step = highest_step((run.results.get("bare") or {}).get(n))
    bare_fps = bare_step.get("frames_per_s") if bare_step else None
    rows: list[list[str]] = []
    for name, by_size in run.results.items():
        result = by_size.get(n) or {}
        steps = result.get("steps") or []
        if not steps:
            rows.append([name, status(result) or "not measured", "-", "-", "-", "-", "-"])
            continue
        best = highest_step(result)
        failed = next((s for s in steps if not s.get("passed")), None)
        rows.append(
            [
                name,
                "none" if best is None else number(best["rate"], 0),
                "-"
                if best is None
                else with_ratio(best.get("frames_per_s"), bare_fps, 0, name == "bare"),
                "-" if best is None else number(best.get("p99_ms")),
                "-" if best is None else number(best.get("cpu_us_per_frame")),
                "-" if failed is None else number(failed["rate"], 0),
                "-"
                if failed is None
                else f"p99 {number(failed.get('p99_ms'))} ms, "
                f"{failed.get('delivered', 0)}/{failed.get('expected', 0)} delivered",
            ]
        )
    return table(
        [
            "contender",
            "highest rate/s",
            "frames/s there",
            "p99 ms there",
            "CPU µs/frame there",
            "next step/s",
            "the next step",
        ],
        rows,
    )


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


# -- targets (their limits stand beside the contenders: contenders.Targets) -------------------

#: The headers of a "Targets" table.
TARGET_HEADERS = ["target (reported, not asserted)", "measured", ""]


def opening(heading: str, data: dict[str, Any], command: str) -> tuple[list[str], bool]:
    """The first lines of a section of RESULTS.md: its heading and what wrote it, when and in
    how long (``data["duration_s"]``); ``(lines, False)`` when ``data`` holds an ``"error"``,
    the lines then saying it was not measured and why."""
    lines = [heading, ""]
    if "error" in data:
        return [*lines, f"Not measured: {data['error']}", ""], False
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    minutes = data["duration_s"] / 60
    return [*lines, f"Written by `{command}` on {when}, in {minutes:.1f} minutes.", ""], True


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**missed**")


def _p50(run: Run, name: str, n: int) -> float | None:
    value = events_of((run.results.get(name) or {}).get(n)).get("p50_ms")
    return float(value) if value is not None else None


def _ratio(run: Run, name: str, n: int) -> float | None:
    ours, bare = _p50(run, name, n), _p50(run, "bare", n)
    if ours is None or bare is None:
        return None
    return ours / bare


def _latency_row(run: Run, contender: Contender, limit: float, big: int) -> list[str]:
    t = contender.targets
    r = _ratio(run, contender.name, big)
    p99 = events_of(run.results[contender.name].get(big)).get("p99_ms")
    bp99 = events_of((run.results.get("bare") or {}).get(big)).get("p99_ms")
    p99_text = f"; p99 {p99 / bp99:.2f}x" if p99 and bp99 else ""
    return [
        f"{t.protocol}, {t.variant}: p50 latency ≤ {limit}x bare at N={big:,}",
        f"{r:.2f}x{p99_text}" if r is not None else "-",
        verdict(None if r is None else r <= limit),
    ]


def _redis_row(run: Run, name: str, growth: float) -> list[str]:
    n1 = redis_calls(run.redis_n1.get(name))
    mid = REDIS_GROWTH_N if REDIS_GROWTH_N in run.results[name] else max(run.results[name])
    nk = redis_calls(run.results[name].get(mid))
    ok = None if n1 is None or nk is None else nk <= n1 + growth
    return [
        f"{name}: Redis commands per event do not grow with N (N=1 vs N={mid:,})",
        f"{number(n1)} vs {number(nk)}",
        verdict(ok),
    ]


def _cpu_rows(by_size: dict[int, Result], t: Targets, big: int) -> list[list[str]]:
    """CPU per delivered frame: flat over N, at most a limit at the largest N, and (information)
    the marginal CPU of an extra subscriber."""
    rows: list[list[str]] = []
    cpu = {n: events_of(r).get("cpu_us_per_frame") for n, r in sorted(by_size.items())}
    if t.max_cpu_spread is not None:
        known = [v for v in cpu.values() if v is not None]
        text = ", ".join(f"N={n:,}: {number(v)}" for n, v in cpu.items())
        flat = max(known) / min(known) if known and min(known) > 0 else None
        rows.append(
            [
                f"{t.protocol}: CPU per delivered frame flat over N (max/min ≤ {t.max_cpu_spread})",
                f"{text} (max/min {flat:.2f})" if flat else text,
                verdict(None if flat is None else flat <= t.max_cpu_spread),
            ]
        )
    if t.max_cpu_us_per_frame is not None:
        at_big = cpu.get(big)
        rows.append(
            [
                f"{t.protocol}: CPU ≤ {t.max_cpu_us_per_frame} µs per delivered frame at N={big:,}",
                number(at_big),
                verdict(None if at_big is None else at_big <= t.max_cpu_us_per_frame),
            ]
        )
    per_event = {n: events_of(r).get("cpu_ms_per_event") for n, r in by_size.items()}
    sizes = sorted(n for n, v in per_event.items() if v is not None)
    if len(sizes) >= 2 and sizes[-1] > sizes[0]:
        lo, hi = sizes[0], sizes[-1]
        marginal = (per_event[hi] - per_event[lo]) * 1e3 / (hi - lo)  # type: ignore[operator]
        rows.append(
            [
                f"{t.protocol}: marginal CPU per extra subscriber, N={lo:,} to {hi:,} "
                "(information)",
                f"{marginal:.1f} µs/frame",
                "-",
            ]
        )
    return rows


def _peer_rows(run: Run, name: str, speedup: float, big: int) -> list[list[str]]:
    """``name``'s p50 latency at the largest N against each peer's (a lower bound of the speed-up
    when the peer did not run at that N)."""
    rows: list[list[str]] = []
    ours = _p50(run, name, big)
    for peer in [n for n in run.results if BY_NAME[n].group == "peer"]:
        label = f"≥ {speedup}x faster than {peer} at N={big:,} (p50 latency)"
        theirs = _p50(run, peer, big)
        result = run.results[peer].get(big) or {}
        if theirs is not None and ours:
            rows.append([label, f"{theirs / ours:.1f}x", verdict(theirs / ours >= speedup)])
        elif ours:
            # The peer did not run at this N: its largest completed N against ours at this N
            # is a lower bound of the speed-up.
            done = [(m, _p50(run, peer, m)) for m in sorted(run.results[peer]) if m < big]
            done = [(m, p) for m, p in done if p is not None]
            if done:
                m, theirs_small = done[-1]
                ours_small = _p50(run, name, m)
                same = f"; {theirs_small / ours_small:.1f}x at N={m:,}" if ours_small else ""
                bound = theirs_small / ours
                rows.append(
                    [
                        label,
                        f"> {bound:.1f}x (a lower bound: {peer} at N={m:,} against ours at "
                        f"N={big:,}; {peer} at N={big:,}: {status(result) or 'not run'})" + same,
                        verdict(True) if bound >= speedup else "- (lower bound only)",
                    ]
                )
            else:
                rows.append([label, status(result) or "-", "-"])
    return rows


def targets(run: Run) -> list[str]:
    """The "Targets" table: each contender of the run against its ``contenders.Targets``."""
    if not run.sizes:
        return []
    big = max(run.sizes)
    judged = [c for c in CONTENDERS if c.name in run.results]
    rows: list[list[str]] = []
    for c in judged:
        if c.targets.max_p50_ratio is not None:
            rows.append(_latency_row(run, c, c.targets.max_p50_ratio, big))
    for c in judged:
        if c.targets.max_redis_growth is not None:
            rows.append(_redis_row(run, c.name, c.targets.max_redis_growth))
    for c in judged:
        t = c.targets
        if t.max_cpu_spread is not None or t.max_cpu_us_per_frame is not None:
            rows += _cpu_rows(run.results[c.name], t, big)
        if t.max_rss_kb_per_sub is not None:
            rss = (run.results[c.name].get(big) or {}).get("rss_per_sub_kb")
            rows.append(
                [
                    f"{t.protocol}: idle memory per subscriber < {t.max_rss_kb_per_sub} KB at "
                    f"N={big:,}",
                    number(rss),
                    verdict(None if rss is None else rss < t.max_rss_kb_per_sub),
                ]
            )
        if t.min_peer_speedup is not None:
            rows += _peer_rows(run, c.name, t.min_peer_speedup, big)
    n = run.phase_size
    bare = (run.results.get("bare") or {}).get(n) if n is not None else None
    for c in judged:
        t = c.targets
        result = run.results[c.name].get(n) if n is not None else None
        if t.min_rate_ratio is not None and (bare or {}).get("steps"):
            ours, theirs = highest_step(result), highest_step(bare)
            fps = ours.get("frames_per_s") if ours else None
            base = theirs.get("frames_per_s") if theirs else None
            ratio = fps / base if fps and base else None
            rows.append(
                [
                    f"{t.protocol} ({t.variant}): highest sustained rate (p99 < 100 ms, nothing "
                    f"lost) at N={n:,}, frames/s ≥ {t.min_rate_ratio}x the bare app's",
                    "none passed" if ours is None else f"{ratio:.2f}x" if ratio else "-",
                    verdict(
                        None if base is None else ratio is not None and ratio >= t.min_rate_ratio
                    ),
                ]
            )
        if t.max_sustained_p99_ratio is not None and bare is not None:
            mine = ((result or {}).get("sustained") or {}).get("p99_ms")
            base = (bare.get("sustained") or {}).get("p99_ms")
            ratio = mine / base if mine and base else None
            rows.append(
                [
                    f"{t.protocol} ({t.variant}): p99 at the sustained rate, N={n:,}, ≤ "
                    f"{t.max_sustained_p99_ratio}x the bare app's",
                    "-" if ratio is None else f"{ratio:.2f}x",
                    verdict(None if ratio is None else ratio <= t.max_sustained_p99_ratio),
                ]
            )
    return table(TARGET_HEADERS, rows)
