"""Summaries of ``py-spy record --format raw --function`` output (one collapsed stack a line,
root first, then the sample count): where the server's CPU time goes."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


@dataclass
class Profile:
    total: int
    self_time: Counter[str]
    inclusive: Counter[str]
    packages: Counter[str]
    callers: dict[str, Counter[str]]


def package(frame: str) -> str:
    match = FRAME.match(frame)
    path = match.group("file") if match else frame
    if path.startswith("<"):
        return "python internals"
    parts = path.replace("\\", "/").split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    if len(parts) == 1:
        return parts[0].removesuffix(".py")
    return parts[0]


def read(path: Path) -> Profile:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    callers: dict[str, Counter[str]] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        # py-spy prefixes the thread: "process ...;thread (...)" appear as frames without a file.
        total += count
        leaf = frames[-1]
        self_time[leaf] += count
        packages[package(leaf)] += count
        if len(frames) > 1:
            callers.setdefault(leaf, Counter())[frames[-2]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return Profile(total, self_time, inclusive, packages, callers)


def lines(profile: Profile, top: int = 25) -> list[str]:
    if not profile.total:
        return ["(no samples)"]

    def pct(count: int) -> str:
        return f"{100 * count / profile.total:5.1f}%"

    out = [f"{profile.total:,} samples of the busy server (idle waits excluded).", ""]
    out += ["Self time by package (the function on top of the stack):", "", "```"]
    out += [f"{pct(c)}  {name}" for name, c in profile.packages.most_common(15)]
    out += ["```", "", f"Self time, top {top} functions (and the most frequent caller):", ""]
    out += ["```"]
    for name, c in profile.self_time.most_common(top):
        out.append(f"{pct(c)}  {name}")
        caller = profile.callers.get(name)
        if caller:
            parent, n = caller.most_common(1)[0]
            out.append(f"          <- {parent} ({100 * n / c:.0f}%)")
    out += ["```", "", f"Inclusive time (the function anywhere on the stack), top {top}:", ""]
    out += ["```"]
    ranked = [
        (c, name)
        for name, c in profile.inclusive.most_common()
        if FRAME.match(name) and not name.startswith(("process ", "thread "))
    ]
    out += [f"{pct(c)}  {name}" for c, name in ranked[:top]]
    out += ["```"]
    return out
