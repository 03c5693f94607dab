#!/usr/bin/env python3
"""Heap at the peak per socket, by allocation site, from a heaptrack flamegraph dump.

    heaptrack_print --flamegraph-cost-type peak -F stacks.txt heaptrack.X.zst
    (or `--flamegraph-cost-type leaked`: what was still allocated when the process ended)
    heap_sites.py stacks.txt SOCKETS

Each stack's peak bytes are given to one site: for a tokio task cell, the function that
spawned the task; otherwise the innermost frame of a crate we patch or own (engineioxide,
socketioxide, tungstenite, http, hyper, lms_realtime, ...). Prints the sites above 40 B per
socket, largest first, in bytes per socket (peak ÷ SOCKETS).
"""

import re
import sys
from collections import defaultdict

KNOWN = (
    "engineioxide",
    "socketioxide",
    "tungstenite",
    "tokio_tungstenite",
    "lms_realtime",
    "http::",
    "hyper",
    "axum",
    "governor",
    "matchit",
)
GENERIC = re.compile(r"<[^<>]*>")


def short(frame: str) -> str:
    # Legacy-mangled escapes, then generic arguments (repeatedly, for nesting), the
    # closure/hash noise and the source file heaptrack appends.
    for code, char in (("$LT$", "<"), ("$GT$", ">"), ("$u7b$", "{"), ("$u7d$", "}"),
                       ("$u20$", " "), ("$RF$", "&"), ("$C$", ","), ("..", "::")):
        frame = frame.replace(code, char)
    frame = re.sub(r" \([^()]*\)$", "", frame)
    frame = re.sub(r"::h[0-9a-f]{16}", "", frame)
    prev = None
    while prev != frame:
        prev, frame = frame, GENERIC.sub("", frame)
    frame = re.sub(r"::\{\{closure\}\}", "", frame)
    frame = re.sub(r"^_", "", frame)
    return frame.strip()


RUNTIME = ("std::", "core::", "alloc::", "tokio::", "_<tokio", "<tokio", "__rust")


def site(frames: list[str]) -> str:
    # frames: outermost first.
    for i, f in enumerate(frames):
        if "RawTask::new" in f or "task::core::Cell" in f or "runtime::task::new_task" in f:
            for g in reversed(frames[:i]):
                if not short(g).startswith(RUNTIME):
                    return "task cell: " + short(g)
            return "task cell: ?"
    for f in reversed(frames):
        if any(k in f for k in KNOWN):
            return short(f)
    return "other: " + short(frames[-1]) if frames else "?"


def main() -> None:
    path, sockets = sys.argv[1], int(sys.argv[2])
    # --min X: the smallest per-unit figure printed (default 40, in bytes per socket).
    least = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--min" else 40
    by_site: dict[str, int] = defaultdict(int)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\n")
            stack, _, cost = line.rpartition(" ")
            if not stack or not cost.isdigit():
                continue
            by_site[site(stack.split(";"))] += int(cost)
    total = sum(by_site.values())
    print(f"{'B/socket':>9}  site")
    for name, cost in sorted(by_site.items(), key=lambda kv: -kv[1]):
        per = cost / sockets
        if per < least:
            break
        print(f"{per:9.0f}  {name}")
    print(f"{total / sockets:9.0f}  TOTAL (heap in the dump / sockets)")


if __name__ == "__main__":
    main()
