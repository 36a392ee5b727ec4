"""Tables of the restarts benchmark (``bench/restarts.py``): its section of bench/RESULTS.md,
"Restarts and storms", also printed by it and by ``bench/run.py``."""

from __future__ import annotations

import datetime

from report import TARGET_HEADERS, Result, number, table, verdict

#: The heading of the section in RESULTS.md (``--restarts-only`` replaces only it).
RESTARTS_HEADING = "## Restarts and storms"
#: The target of issue 7: connect + subscribe (resume included) at most this many times the bare
#: app's connects of as many sockets, on each protocol.
MAX_CONNECT_RATIO = 2.0
PROTOCOLS = (("stream", "stream protocol"), ("gtws", "graphql-transport-ws"))
PHASES = (
    ("connect_s", 'connect + subscribe (`after: ""`), before the kill'),
    ("resume_connect_s", "reconnect + resubscribe with the cursor, after the restart"),
    ("resume_s", "reconnect + resubscribe + replay received, after the restart"),
)


def _ratio(data: Result, protocol: str, phase: str) -> float | None:
    sms, bare = data.get("sms") or {}, data.get("bare") or {}
    value, base = sms.get(f"{protocol}_{phase}"), bare.get("half_s")
    if value is None or not base:
        return None
    return float(value) / float(base)


def missed(data: Result) -> bool:
    """Whether a target was missed (or could not be judged)."""
    return any(ok is not True for _, _, ok in _targets(data))


def _targets(data: Result) -> list[tuple[str, str, bool | None]]:
    sms = data.get("sms") or {}
    half = data.get("n", 0) // 2
    rows: list[tuple[str, str, bool | None]] = []
    for key, what in (("lost", "events lost"), ("duplicated", "events duplicated")):
        values = [(sms.get(p) or {}).get(key) for p, _ in PROTOCOLS]
        known = [v for v in values if v is not None]
        rows.append(
            (
                f"{what} through the SIGKILL and the restart: 0",
                ", ".join(
                    f"{title} {number(v, 0)}"
                    for (_, title), v in zip(PROTOCOLS, values, strict=True)
                ),
                None if len(known) < len(values) else not any(known),
            )
        )
    for protocol, title in PROTOCOLS:
        for phase in ("connect_s", "resume_s"):
            r = _ratio(data, protocol, phase)
            label = (
                f"{title}: connect + subscribe of {half:,} sockets ≤ {MAX_CONNECT_RATIO:g}x the "
                f"bare app's connects"
                if phase == "connect_s"
                else f"{title}: reconnect + resubscribe + replay of {half:,} sockets after the "
                f"restart ≤ {MAX_CONNECT_RATIO:g}x the bare app's connects"
            )
            rows.append(
                (
                    label,
                    "-" if r is None else f"{r:.2f}x",
                    None if r is None else r <= MAX_CONNECT_RATIO,
                )
            )
    return rows


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def figures_table(data: Result) -> list[str]:
    sms, bare = data.get("sms") or {}, data.get("bare") or {}
    half = data.get("n", 0) // 2
    headers = ["figure", "stream protocol", "graphql-transport-ws"]
    rows: list[list[str]] = []
    base = bare.get("half_s")
    rows.append(
        [
            f"bare app: connect {half:,} sockets, s (median of {len(bare.get('halves_s', []))})",
            number(base, 2),
            number(base, 2),
        ]
    )
    for phase, what in PHASES:
        cells = [f"{what}, s (x bare)"]
        for protocol, _ in PROTOCOLS:
            value = sms.get(f"{protocol}_{phase}")
            r = _ratio(data, protocol, phase)
            cells.append(number(value, 2) + (f" ({r:.2f}x)" if r is not None else ""))
        rows.append(cells)
    rows.append(
        [
            "a resumed socket's replay (subscribed until the last event it missed), median / "
            "max, ms",
            *(
                f"{number(_ms(sms.get(f'{p}_replay_p50_s')), 0)} / "
                f"{number(_ms(sms.get(f'{p}_replay_max_s')), 0)}"
                for p, _ in PROTOCOLS
            ),
        ]
    )
    by_kind = sms.get("replayed_by_kind") or {}
    cells = ["frames of missed events received after resuming"]
    costs = ["resume less first connect, per frame of a missed event, µs"]
    for protocol, _ in PROTOCOLS:
        frames = by_kind.get(protocol)
        cells.append(number(frames, 0))
        fresh, resumed = sms.get(f"{protocol}_connect_s"), sms.get(f"{protocol}_resume_s")
        cost = (resumed - fresh) * 1e6 / frames if frames and fresh and resumed else None
        costs.append(number(cost, 0))
    rows += [cells, costs]
    for key, what in (
        ("lost", "events lost"),
        ("clients_with_loss", "sockets that lost an event"),
        ("duplicated", "events duplicated"),
        ("out_of_order", "events out of order"),
        ("frames", "frames received in all"),
    ):
        rows.append([what, *(number((sms.get(p) or {}).get(key), 0) for p, _ in PROTOCOLS)])
    return table(headers, rows)


def restart_table(data: Result) -> list[str]:
    sms = data.get("sms") or {}
    rows = [
        ["server start (`/health` answers), s", number(sms.get("start_s"), 2)],
        ["every socket closed after the SIGKILL, s", number(sms.get("closed_s"), 2)],
        ["killed to ready again (dead, then starting), s", number(sms.get("down_s"), 2)],
        ["of which the restart until `/health` answers, s", number(sms.get("restart_s"), 2)],
        ["events written while the server was down", number(sms.get("written_while_down"), 0)],
        [
            "restart (ready) until every socket caught up, s",
            f"{number(sms.get('catch_up_s'), 2)} (to event {sms.get('catch_up_target')})",
        ],
        ["frames of missed events received after resuming", number(sms.get("replayed"), 0)],
        [
            "events written in all / sockets without the last one",
            f"{number(sms.get('written'), 0)} / {number(sms.get('not_at_last'), 0)}",
        ],
        ["tracebacks in the server's logs", number(sms.get("server_errors"), 0)],
    ]
    return table(["restart", "measured"], rows)


def targets_table(data: Result) -> list[str]:
    return table(TARGET_HEADERS, [[label, m, verdict(ok)] for label, m, ok in _targets(data)])


def profile_lines(data: Result) -> list[str]:
    profile = data.get("profile")
    if not profile:
        return []
    figures = profile.get("figures") or {}
    out = [
        "### Profile: connect + subscribe",
        "",
        "A target was missed: one more cycle ran with py-spy on the server (250 Hz, `--gil "
        "--function`: the thread running Python) during each connect and resume phase; shares "
        "of the samples in which the server was busy. Under the profiler: stream "
        f"{number(figures.get('stream_connect_s'), 2)} s / graphql-transport-ws "
        f"{number(figures.get('gtws_connect_s'), 2)} s to connect + subscribe, "
        f"{number(figures.get('stream_resume_s'), 2)} s / "
        f"{number(figures.get('gtws_resume_s'), 2)} s to resume."
        + (f" The profiled cycle failed: {figures['error']}" if figures.get("error") else ""),
        "",
    ]
    for phase, summary in (profile.get("phases") or {}).items():
        out += [
            f"**{phase}** ({summary['samples']:,} samples)",
            "",
            "```",
            "self time by package: "
            + ", ".join(f"{name} {share:.1f}%" for name, share in summary["packages"]),
            "",
            "self time, top functions:",
            *(f"{share:5.1f}%  {name}" for name, share in summary["functions"]),
            "",
            "this library, inclusive:",
            *(f"{share:5.1f}%  {name}" for name, share in summary["library_inclusive"]),
            "```",
            "",
        ]
    return out


def section(data: Result, command: str) -> list[str]:
    """The "Restarts and storms" section of RESULTS.md."""
    n = data.get("n", 0)
    head = [
        RESTARTS_HEADING,
        "",
        f"Written by `{command}` on "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, in "
        f"{data.get('duration_s', 0):.0f} s (`python bench/restarts.py` runs the same alone; "
        "`make bench BENCH_ARGS=--restarts-only` rewrites only this section).",
        "",
    ]
    if data.get("error"):
        return [*head, f"Not measured: {data['error']}", ""]
    sms = data.get("sms") or {}
    head += [
        f"{n:,} subscribers on one server (`sms_site`, uvicorn, RedisChannelLayer on "
        f"{data.get('redis')}, PostgreSQL {data.get('pg')}): {n // 2:,} on the stream protocol, "
        f"{n // 2:,} on graphql-transport-ws (`itemChanged`), each keeping the cursor of the last "
        "event it received. Another process (`bench/servers/restart_writer.py`) saves the item "
        f"through the ORM at {data.get('rate', 0):g} events/s (each save its own transaction, "
        "`seq` = 1, 2, ...) from before the first socket connects until the end. Once every "
        f"socket has an event and {data.get('steady', 0):g} s more, the server is killed "
        f"(SIGKILL); {data.get('down', 0):g} s later it is started again on the same Redis, and "
        "once `/health` answers the stream sockets reconnect and resubscribe with their cursors, "
        "then the graphql-transport-ws ones; "
        f"{data.get('tail', 0):g} s after every socket caught up the writer stops, and each "
        "socket's seqs are checked against what was written: from its first event on, every "
        f"seq once, in order. {data.get('concurrency', 64)} handshakes in flight, as in the "
        "main table. The bare app's connect time is that of as many sockets "
        f"({n // 2:,}), measured in the same run (with as many already open for the second "
        "half). A stream socket is subscribed when its control operation's answer (`ok: true`) "
        "arrived, a graphql-transport-ws one when its `subscribe` was sent (the protocol "
        "answers nothing); with the replay: once it also received the last event committed "
        "before its subscribe was sent. **caught up**: every socket received the last event "
        "committed before the last resubscribe was sent.",
        "",
        *figures_table(data),
        "",
        *restart_table(data),
        "",
        *targets_table(data),
        "",
    ]
    if sms.get("errors"):
        head += [f"Subscribe errors: {'; '.join(sms['errors'])}", ""]
    head += profile_lines(data)
    head += [
        "Its processes, from the repository root (the driver's own sockets are in "
        "`bench/restarts.py`):",
        "",
        "```sh",
        str((data.get("bare") or {}).get("command", "")),
        str(sms.get("server_command", "")),
        str(sms.get("writer_command", "")),
        "```",
        "",
    ]
    return head


def console(data: Result) -> list[str]:
    """The tables alone, for the console."""
    if data.get("error"):
        return [f"not measured: {data['error']}"]
    return [*figures_table(data), "", *restart_table(data), "", *targets_table(data)]
