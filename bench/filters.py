"""Filtered dispatch: the CPU ``Hub.dispatch`` spends on one event with filtered subscriptions, in
this process (no server, no socket, no channel layer: the hub's own work, which is what grows
with the subscriptions).

Django is set up with the bench's ``sms_site`` settings (``bench/servers``), so the stream
``items`` is registered as the servers register it (``Item``: id, name, seq; ``seq`` plays an
owner id). A :class:`~strawberry_model_subs.hub.Hub` is built directly (no layer: nothing is
joined) and each subscription is a sink that counts what it is given, indexed with
``hub.add(sink, "items", ALL_ACTIONS, None, None, where)``, ``where`` compiled per subscription
with ``compile_where`` as a server compiles each subscriber's filter. An event is an
``Event`` as the hub receives one from the layer (a fresh object for every dispatch: events
cache their views), an update of the item:

- **update**: its ``seq`` is one a filter takes (no ``before``: it stays in);
- **update, moved**: ``before`` holds a ``seq`` another filter takes (the object leaves one,
  enters the other: two frames marked ``moved``);
- **update, matching none**: ``seq`` and ``before`` both outside every filter.

The cases, timed in interleaved rounds (one round of each case, then the next round), the
figure the median per event of the rounds (``time.process_time`` over a round of events, the
garbage collector off while a round runs and collected between rounds):

1. N subscriptions each ``{"seq": {"exact": i}}`` (distinct), N = 100 and 10,000; for reference,
   the 10,000 filters each tested once, with no index;
2. ``{"seq": {"range": [lo, hi]}}`` filters, which no index holds: 10 subscriptions over 10
   distinct ranges, 1,000 over the same 10, 1,000 over 100;
3. N unfiltered subscriptions, N = 1, 100, 1,000 and 10,000 (every one gets every event).

**filter tests/event** counts the calls of ``Where.matches`` during dispatches (an untimed
pass). A target missed is profiled: cProfile over one more round of the case that missed.

    python bench/filters.py                  # the tables printed (about 25 s)
    python bench/filters.py --quick          # fewer, shorter rounds
    python bench/filters.py --json /tmp/filters.json --profile

``make bench`` runs it (``bench/run.py``: its tables go to bench/RESULTS.md, "Filtered dispatch";
``--filters-only`` runs only it, ``--no-filters`` leaves it out).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import logging
import os
import pstats
import re
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import filters_report
from supervise import BENCH, rel, run_script

SERVERS = BENCH / "servers"
STREAM = "items"
#: Rows of a cProfile table.
PROFILE_TOP = 10
#: The kinds of event, as the tables name them.
KINDS = ("update", "update, moved", "update, matching none")
#: A seq no filter takes.
OUTSIDE = 10**9

perf = time.perf_counter
cpu = time.process_time


def setup_django() -> Any:
    """Django with the servers' settings, the stream ``items`` registered: its registration."""
    if str(SERVERS) not in sys.path:
        sys.path.insert(0, str(SERVERS))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sms_site.settings")
    os.environ.setdefault("BENCH_LAYER", "memory")
    import django

    django.setup()
    # Registered after Django started, as in the servers (their ASGI module imports it): the
    # library's warning about it says nothing here.
    registry_log = logging.getLogger("strawberry_model_subs.registry")
    registry_log.disabled = True
    try:
        from sms_site import serializers  # noqa: F401  (registers the stream, as the servers do)
    finally:
        registry_log.disabled = False

    from strawberry_model_subs.registry import registration_for_stream

    registration = registration_for_stream(STREAM)
    assert registration is not None, f"no stream {STREAM!r}"
    assert "seq" in registration.filter_fields, registration.filter_fields
    return registration


class CountingSink:
    """A subscriber that counts what it is given (``Hub.dispatch`` needs ``user`` and ``push``)."""

    __slots__ = ("frames", "user")

    def __init__(self) -> None:
        self.user = None
        self.frames = 0

    def push(self, event: Any, fields: Any) -> None:
        self.frames += 1


@dataclass(eq=False)
class Case:
    """One hub and one kind of event: what a timed round dispatches."""

    group: str
    label: str
    subscriptions: int
    distinct: int
    kind: str
    #: Event number k -> its (seq, seq before or None).
    values: Callable[[int], tuple[int, int | None]]
    hub: Any = None
    #: Instead of a hub: what one event costs some other way (the no-index reference).
    run: Callable[[Any], None] | None = None
    per_round: int = 0
    rounds_us: list[float] = field(default_factory=list)
    frames: float = 0.0
    tests: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.label}: {self.kind}"

    def summary(self) -> dict[str, Any]:
        us = statistics.median(self.rounds_us)
        return {
            "group": self.group,
            "label": self.label,
            "kind": self.kind,
            "subscriptions": self.subscriptions,
            "distinct_filters": self.distinct,
            "us_per_event": us,
            "us_per_frame": us / self.frames if self.frames else None,
            "frames_per_event": self.frames,
            "tests_per_event": self.tests,
            "events_per_round": self.per_round,
            "rounds_us": [round(x, 3) for x in self.rounds_us],
        }


class Events:
    """Fresh update events of the item (``Event`` as ``decode_event`` makes them)."""

    def __init__(self, registration: Any) -> None:
        from strawberry_model_subs.events import Action, Event

        self.event = Event
        self.update = Action.UPDATE
        self.model = registration.model._meta.label_lower

    def make(self, k: int, seq: int, before: int | None) -> Any:
        pk = str(k % 200 + 1)
        data = {"id": int(pk), "name": f"item {pk}", "seq": seq}
        return self.event(
            STREAM,
            self.update,
            self.model,
            pk,
            data,
            json.dumps(data),
            before=None if before is None else {"seq": before},
        )

    def batch(self, case: Case, start: int, count: int) -> list[Any]:
        return [self.make(k, *case.values(k)) for k in range(start, start + count)]


def spread(k: int, n: int) -> int:
    """Event k's value among n: every value in turn, in a scattered order."""
    return (k * 7919 + 13) % n


def exact_values(n: int, kind: str) -> Callable[[int], tuple[int, int | None]]:
    if kind == "update":
        return lambda k: (spread(k, n), None)
    if kind == "update, moved":
        return lambda k: (spread(k, n), spread(k + 1, n))
    return lambda k: (OUTSIDE + k, OUTSIDE + k + 1)


def range_values(width: int, kind: str) -> Callable[[int], tuple[int, int | None]]:
    """Over ranges of ``width`` covering 0..999: a moved event leaves for the next range."""
    if kind == "update":
        return lambda k: (spread(k, 1000), None)
    if kind == "update, moved":
        return lambda k: (spread(k, 1000), (spread(k, 1000) + width) % 1000)
    return lambda k: (OUTSIDE + k, OUTSIDE + k + 1)


def build_hub(specs: Iterator[dict[str, Any] | None], registration: Any) -> tuple[Any, int]:
    """A hub with one counting sink per spec (None: unfiltered); the hub and its subscriptions."""
    from strawberry_model_subs.events import Action
    from strawberry_model_subs.filters import compile_where
    from strawberry_model_subs.hub import Hub
    from strawberry_model_subs.layers import ChannelLayer

    hub = Hub(layer=cast(ChannelLayer, None))
    count = 0
    for spec in specs:
        where = None if spec is None else compile_where(spec, registration.filter_fields)
        hub.add(CountingSink(), STREAM, Action.ALL_ACTIONS, None, None, where)
        count += 1
    return hub, count


def ranges(distinct: int, subscriptions: int) -> Iterator[dict[str, Any]]:
    """``subscriptions`` range filters, ``distinct`` of them, covering 0..999 in equal widths."""
    width = 1000 // distinct
    for i in range(subscriptions):
        lo = (i % distinct) * width
        yield {"seq": {"range": [lo, lo + width - 1]}}


def cases(registration: Any) -> list[Case]:
    from strawberry_model_subs.filters import compile_where

    found: list[Case] = []
    for n in (100, 10_000):
        hub, count = build_hub(({"seq": {"exact": i}} for i in range(n)), registration)
        for kind in KINDS:
            found.append(Case("exact", f"{n:,} exact", count, n, kind, exact_values(n, kind), hub))
    # What the index saves: every filter tested once per event (the old way, one per filter).
    wheres = [
        compile_where({"seq": {"exact": i}}, registration.filter_fields) for i in range(10_000)
    ]

    def test_all(event: Any) -> None:
        data = event.data
        for where in wheres:
            where.matches(data)

    found.append(
        Case(
            "exact",
            filters_report.NO_INDEX,
            10_000,
            10_000,
            "update",
            exact_values(10_000, "update"),
            run=test_all,
        )
    )
    for subscriptions, distinct in ((10, 10), (1000, 10), (1000, 100)):
        hub, count = build_hub(ranges(distinct, subscriptions), registration)
        label = f"{subscriptions:,} over {distinct} ranges"
        for kind in KINDS:
            found.append(
                Case(
                    "range",
                    label,
                    count,
                    distinct,
                    kind,
                    range_values(1000 // distinct, kind),
                    hub,
                )
            )
    for n in (1, 100, 1000, 10_000):
        hub, count = build_hub((None for _ in range(n)), registration)
        for kind in KINDS[:2]:
            values = range_values(100, kind)
            found.append(Case("unfiltered", f"{n:,} unfiltered", count, 0, kind, values, hub))
    return found


def dispatcher(case: Case) -> Callable[[Any], Any]:
    return case.run if case.run is not None else case.hub.dispatch


def time_round(case: Case, events: Any, start: int) -> float:
    """One round of ``case``: µs of CPU per event."""
    batch = events.batch(case, start, case.per_round)
    dispatch = dispatcher(case)
    gc.collect()
    gc.disable()
    try:
        t0 = cpu()
        for event in batch:
            dispatch(event)
        elapsed = cpu() - t0
    finally:
        gc.enable()
    return elapsed / len(batch) * 1e6


def count_pass(case: Case, events: Any, count: int = 200) -> None:
    """Frames and filter tests per event, untimed (``Where.matches`` counted meanwhile)."""
    from strawberry_model_subs.filters import Where

    if case.run is not None:
        case.frames, case.tests = 0.0, float(case.subscriptions)
        return
    calls = [0]
    original = Where.matches

    def counted(self: Any, data: Any) -> bool:
        calls[0] += 1
        return original(self, data)

    frames = 0
    Where.matches = counted  # type: ignore[method-assign]
    try:
        for event in events.batch(case, 0, count):
            frames += case.hub.dispatch(event)
    finally:
        Where.matches = original  # type: ignore[method-assign]
    case.frames, case.tests = frames / count, calls[0] / count


def calibrate(case: Case, events: Any, round_s: float) -> None:
    """Events per round: about ``round_s`` of CPU, 5 to 5,000."""
    batch = events.batch(case, 0, 20)
    dispatch = dispatcher(case)
    t0 = perf()
    for event in batch:
        dispatch(event)
    per_event = max((perf() - t0) / len(batch), 1e-7)
    case.per_round = max(5, min(5000, int(round_s / per_event)))


def profile_case(case: Case, events: Any) -> dict[str, Any]:
    """cProfile over 1,000 more events of ``case`` (or a round's, if more): the top functions
    by own time."""
    batch = events.batch(case, 0, max(case.per_round, 1000))
    dispatch = dispatcher(case)
    profiler = cProfile.Profile()
    profiler.enable()
    for event in batch:
        dispatch(event)
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    entries = cast_stats(stats)
    for (filename, line, function), (_, ncalls, tottime, cumtime, _) in sorted(
        entries.items(), key=lambda item: item[1][2], reverse=True
    )[:PROFILE_TOP]:
        rows.append(
            {
                "function": f"{short_path(filename)}:{line}({function})",
                "ncalls": ncalls,
                "tottime_s": tottime,
                "cumtime_s": cumtime,
            }
        )
    return {"case": case.name, "events": len(batch), "rows": rows}


def cast_stats(stats: pstats.Stats) -> dict[tuple[str, int, str], Any]:
    return stats.stats  # type: ignore[attr-defined, no-any-return]


def short_path(filename: str) -> str:
    """A profiled file as RESULTS.md shows it: from the package, the bench folder or the
    standard library on."""
    for marker in ("strawberry_model_subs/", "bench/"):
        if marker in filename:
            return filename[filename.index(marker) :]
    return re.sub(r"^.*?/lib/python3\.\d+/(site-packages/)?", "", filename)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    started = perf()
    registration = setup_django()
    events = Events(registration)
    all_cases = cases(registration)
    built = perf() - started
    for case in all_cases:
        count_pass(case, events)
        calibrate(case, events, args.round_s)
    # What the cases hold (tens of thousands of sinks, filters and closures) is left out of the
    # collections between rounds: those then cost a round's garbage only.
    gc.collect()
    gc.freeze()
    # Rounds interleaved: a slower stretch of the machine falls on every case alike.
    for r in range(args.rounds):
        for case in all_cases:
            case.rounds_us.append(time_round(case, events, (r + 1) * case.per_round))
    data: dict[str, Any] = {
        "options": {"rounds": args.rounds, "round_s": args.round_s},
        "setup_s": built,
        "cases": [c.summary() for c in all_cases],
        "library": library_revision(),
        "python": sys.version.split()[0],
        "cores": os.cpu_count(),
    }
    by_name = {c.name: c for c in all_cases}
    missed = filters_report.missed(data)
    if missed or args.profile:
        profiled = missed or [filters_report.PROFILED_BY_DEFAULT]
        data["profiles"] = [
            profile_case(by_name[name], events) for name in profiled if name in by_name
        ]
    data["duration_s"] = perf() - started
    return data


def library_revision() -> str:
    from write_path import library_revision as revision

    return revision()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=21, help="timed rounds of each case")
    parser.add_argument(
        "--round-s", type=float, default=0.02, help="seconds of CPU a round is sized to"
    )
    parser.add_argument("--quick", action="store_true", help="7 rounds of 5 ms")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile a case even when every target is met"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = min(args.rounds, 7)
        args.round_s = min(args.round_s, 0.005)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = measure(args)
    data["argv"] = sys.argv[1:] if argv is None else argv
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))
    command = shlex.join(["python", rel(__file__), *data["argv"]])
    print("\n".join(filters_report.section(data, command, heading=False)))
    return 0


if __name__ == "__main__":
    run_script(main, lambda: None)
