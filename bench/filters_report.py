"""Tables of the filtered dispatch (``bench/filters.py``): its section of bench/RESULTS.md, also
printed by it and by ``bench/run.py``."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from report import TARGET_HEADERS, Result, number, table, verdict

#: The heading of its section in RESULTS.md (``--filters-only`` replaces only it).
FILTERS_HEADING = "## Filtered dispatch"
#: The case profiled with ``--profile`` when no target is missed.
PROFILED_BY_DEFAULT = "10,000 exact: update, moved"
#: The largest ratio of CPU per event the targets allow.
MAX_RATIO = 2.0

EXACT_SMALL, EXACT_LARGE = "100 exact", "10,000 exact"
NO_INDEX = "10,000 exact, no index (each tested)"
RANGES_FEW, RANGES_MANY, RANGES_WIDE = (
    "10 over 10 ranges",
    "1,000 over 10 ranges",
    "1,000 over 100 ranges",
)
NONE = "update, matching none"


def _case(data: Result, label: str, kind: str) -> Result | None:
    return next((c for c in data["cases"] if c["label"] == label and c["kind"] == kind), None)


def _us(data: Result, label: str, kind: str) -> float | None:
    case = _case(data, label, kind)
    return None if case is None else float(case["us_per_event"])


def _ratio(data: Result, label: str, reference: str, kind: str) -> float | None:
    value, base = _us(data, label, kind), _us(data, reference, kind)
    return None if value is None or not base else value / base


def _kinds(data: Result, label: str) -> list[str]:
    return [c["kind"] for c in data["cases"] if c["label"] == label]


def exact_ratios(data: Result) -> dict[str, float | None]:
    """Per kind of event: CPU per event at 10,000 exact filters over that at 100."""
    return {k: _ratio(data, EXACT_LARGE, EXACT_SMALL, k) for k in _kinds(data, EXACT_LARGE)}


def tests_follow_filters(data: Result) -> bool | None:
    """Whether the range filters are tested once per event per distinct filter (twice with the
    values before an update), the same with 10 and 1,000 subscriptions."""
    ok = None
    for kind in _kinds(data, RANGES_MANY):
        few, many = _case(data, RANGES_FEW, kind), _case(data, RANGES_MANY, kind)
        if few is None or many is None:
            continue
        expected = many["distinct_filters"] * (1 if kind == "update" else 2)
        ok = (ok is not False) and few["tests_per_event"] == many["tests_per_event"] == expected
    return ok


def per_filter_us(data: Result) -> float | None:
    """The CPU one more distinct range filter costs per event (1,000 subscriptions over 100
    ranges against over 10, events matching none)."""
    wide, many = _us(data, RANGES_WIDE, NONE), _us(data, RANGES_MANY, NONE)
    if wide is None or many is None:
        return None
    return (wide - many) / 90


def missed(data: Result) -> list[str]:
    """The cases to profile: the worst one of each target missed."""
    out: list[str] = []
    ratios = {k: r for k, r in exact_ratios(data).items() if r is not None}
    if ratios and max(ratios.values()) > MAX_RATIO:
        out.append(f"{EXACT_LARGE}: {max(ratios, key=lambda k: ratios[k])}")
    ranged = _ratio(data, RANGES_MANY, RANGES_FEW, NONE)
    if (ranged is not None and ranged > MAX_RATIO) or tests_follow_filters(data) is False:
        out.append(f"{RANGES_MANY}: {NONE}")
    return out


def _shown_us(data: Result, c: Result) -> str:
    """A case's CPU per event, and its ratio to the first case of its group (same event)."""
    first = next(x for x in data["cases"] if x["group"] == c["group"] and x["kind"] == c["kind"])
    shown = number(c["us_per_event"], 2)
    if first is not c and first["us_per_event"]:
        shown += f" ({c['us_per_event'] / first['us_per_event']:.2f}x)"
    return shown


#: The columns of the cases' table: header, and the cell of a case.
COLUMNS: tuple[tuple[str, Callable[[Result, Result], str]], ...] = (
    ("subscriptions", lambda d, c: str(c["label"])),
    ("event", lambda d, c: str(c["kind"])),
    (
        "distinct filters",
        lambda d, c: f"{c['distinct_filters']:,}" if c["distinct_filters"] else "-",
    ),
    (
        "frames/event",
        lambda d, c: number(c["frames_per_event"], 1) if c["frames_per_event"] else "0",
    ),
    ("filter tests/event", lambda d, c: number(c["tests_per_event"], 1)),
    ("CPU µs/event (x first of its group)", _shown_us),
    ("µs/frame", lambda d, c: number(c["us_per_frame"], 3)),
    (
        "rounds, min-max µs",
        lambda d, c: f"{number(min(c['rounds_us']), 2)}-{number(max(c['rounds_us']), 2)}",
    ),
)


def cases_table(data: Result) -> list[str]:
    rows = [[cell(data, c) for _, cell in COLUMNS] for c in data["cases"]]
    return table([header for header, _ in COLUMNS], rows)


def targets(data: Result) -> list[str]:
    rows: list[list[str]] = []
    ratios = exact_ratios(data)
    known = [r for r in ratios.values() if r is not None]
    rows.append(
        [
            f"exact filters, each on a distinct owner id: CPU per event with 10,000 "
            f"subscriptions ≤ {MAX_RATIO:g}x with 100",
            "; ".join(f"{k} {number(r, 2)}x" for k, r in ratios.items()) or "-",
            verdict(max(known) <= MAX_RATIO if known else None),
        ]
    )
    ranged = _ratio(data, RANGES_MANY, RANGES_FEW, NONE)
    rows.append(
        [
            f"10 range filters: CPU per event (their tests: {NONE}) with 1,000 subscriptions "
            f"≤ {MAX_RATIO:g}x with 10",
            f"{number(ranged, 2)}x ({number(_us(data, RANGES_MANY, NONE), 2)} vs "
            f"{number(_us(data, RANGES_FEW, NONE), 2)} µs)"
            if ranged is not None
            else "-",
            verdict(None if ranged is None else ranged <= MAX_RATIO),
        ]
    )
    tests = []
    for kind in _kinds(data, RANGES_MANY):
        few, many = _case(data, RANGES_FEW, kind), _case(data, RANGES_MANY, kind)
        if few is not None and many is not None:
            tests.append(
                f"{kind} {number(few['tests_per_event'], 0)} / {number(many['tests_per_event'], 0)}"
            )
    rows.append(
        [
            "filters that cannot be indexed are tested once per event per distinct filter "
            "(twice with the values before), not per subscriber: 10 vs 1,000 subscriptions "
            "over 10 ranges",
            "; ".join(tests) or "-",
            verdict(tests_follow_filters(data)),
        ]
    )
    one = per_filter_us(data)
    tested = _us(data, RANGES_MANY, NONE)
    rows.append(
        [
            "cost of one more distinct range filter per event (1,000 subscriptions over 100 "
            "ranges against 10; information)",
            f"{number(one, 3)} µs per filter; over 10 ranges, "
            f"{number(tested / 1000 if tested is not None else None, 4)} µs per subscriber",
            "-",
        ]
    )
    indexed, naive = _us(data, EXACT_LARGE, "update"), _us(data, NO_INDEX, "update")
    if indexed and naive:
        rows.append(
            [
                "what the index saves at 10,000 exact filters (each filter tested once per "
                "event instead; information)",
                f"{number(naive, 0)} vs {number(indexed, 2)} µs per event "
                f"({naive / indexed:,.0f}x)",
                "-",
            ]
        )
    filtered, plain = _case(data, RANGES_MANY, "update"), _case(data, "1,000 unfiltered", "update")
    if filtered and plain and filtered["us_per_frame"] and plain["us_per_frame"]:
        rows.append(
            [
                "CPU per frame delivered through a filter (1,000 over 10 ranges, 100 frames an "
                "event) against without (1,000 unfiltered; information)",
                f"{number(filtered['us_per_frame'], 3)} vs {number(plain['us_per_frame'], 3)} µs "
                f"({filtered['us_per_frame'] / plain['us_per_frame']:.1f}x)",
                "-",
            ]
        )
    return table(TARGET_HEADERS, rows)


def profiles(data: Result) -> list[str]:
    lines: list[str] = []
    for profile in data.get("profiles") or []:
        lines += [
            f"### Profile: {profile['case']}",
            "",
            f"cProfile over {profile['events']:,} more events of `hub.dispatch`; "
            "the top 10 functions by own time:",
            "",
            *table(
                ["function", "ncalls", "tottime s", "cumtime s"],
                [
                    [
                        f"`{row['function']}`",
                        str(row["ncalls"]),
                        f"{row['tottime_s']:.3f}",
                        f"{row['cumtime_s']:.3f}",
                    ]
                    for row in profile["rows"]
                ],
            ),
            "",
        ]
    return lines


def section(data: Result, command: str, heading: bool = True) -> list[str]:
    """The "Filtered dispatch" section of bench/RESULTS.md (the console shows it without
    heading)."""
    o = data["options"]
    lines = [FILTERS_HEADING, ""] if heading else []
    lines += [
        f"Written by `{command}` on {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
        f"in {data.get('duration_s', 0):.0f} s (`python bench/filters.py` runs the same alone; "
        "`make bench BENCH_ARGS=--filters-only` rewrites only this section). The library at "
        f"`{data.get('library', 'unknown')}`, Python {data.get('python', '?')}.",
        "",
        "The CPU of `Hub.dispatch` for one event, in one process: Django set up with the "
        "servers' `sms_site` settings (the stream `items` of `Item`: id, name, seq, registered "
        "as the servers register it; `seq` plays an owner id), a `Hub` built directly (no "
        "channel layer), each subscription a sink that counts what it is given, indexed with "
        '`hub.add(sink, "items", ALL_ACTIONS, None, None, where)`, its `where` compiled per '
        'subscription with `compile_where` (`{"seq": {"exact": i}}`, i distinct, or '
        '`{"seq": {"range": [lo, hi]}}` over equal ranges covering 0-999). An event is a fresh '
        "`Event` (events cache their views), an update of the item: **update** (a `seq` a "
        "filter takes, no `before`), **update, moved** (`before` holds a `seq` of another "
        "filter: it leaves one and enters the other, two frames marked `moved` with exact "
        f"filters), **{NONE}** (`seq` and `before` outside every filter). "
        f"{o['rounds']} rounds of each case, interleaved (one round of every case, then the "
        f"next), each about {o['round_s'] * 1000:g} ms of CPU (`time.process_time` over the "
        "round's events, the garbage collector off while it runs); **CPU µs/event** is the "
        "median of the rounds, **(x)** against the first case of its group with the same "
        "event, **µs/frame** per frame delivered. **filter tests/event** counts the calls of "
        "`Where.matches` during dispatches (an untimed pass of 200 events). The no-index row "
        "tests each of the 10,000 filters once per event, as a dispatch would without the index.",
        "",
        *cases_table(data),
        "",
        *targets(data),
        "",
    ]
    lines += profiles(data)
    return lines


def console(data: Result) -> list[str]:
    """The tables, as ``bench/run.py`` prints them at the end."""
    return [*cases_table(data), "", *targets(data)]
