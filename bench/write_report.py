"""Tables of the write path (``bench/write_path.py``): its section of bench/RESULTS.md, also
printed by it and by ``bench/run.py``."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from contenders import WRITE_LAYERS, WriteLayer
from report import TARGET_HEADERS, Result, number, status, table, verdict

#: The heading of the write-path section in RESULTS.md (``--write-path-only`` replaces only it).
WRITE_PATH_HEADING = "## Write path"


def _measured(data: Result) -> Iterator[tuple[WriteLayer, Result, Result | None]]:
    """Each layer the write path ran on: its result and its figures (None: none)."""
    for layer in WRITE_LAYERS:
        result = data["layers"].get(layer.name)
        if result is not None:
            yield layer, result, result.get("summary")


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
    for layer, result, s in _measured(data):
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
    for layer, result, s in _measured(data):
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
        rows.append([label, f"{s['ratio']:.2f}x{lost}", verdict(ok)])
    return table(TARGET_HEADERS, rows)


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
    lines = [WRITE_PATH_HEADING, ""] if heading else []
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
