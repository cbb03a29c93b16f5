"""Summarise a ``py-spy record --format raw --threads`` file: samples per thread, then per busy
thread the functions with the most inclusive and self samples, as shares of that thread.

    python bench/pyspy_summary.py bench/results/catch_up.pyspy.txt [--top 15] [--min-share 0.05]

Record without ``--idle`` (as catch_up.py does), so that a sample means the thread was on a CPU:
at ``--rate 100`` a thread's sample count / 100 is its CPU seconds. Samples whose top frame is a
known blocking call (``Event.wait``, ``select``, ``readinto``...) are still set apart as idle.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

IDLE_LEAVES = ("Event.wait", "Condition.wait", "Selector.select", "SocketIO.readinto",
               "_check_inotify_fd", "Thread.join", "_wait_for_tstate_lock")
_FRAME = re.compile(r"^(?P<func>.+?) \((?P<where>[^()]*)\)$")


def short(frame: str) -> str:
    """``func (path/file.py:123)`` -> ``func (file.py:123)``."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    where = match["where"].rsplit("/", 2)
    return f"{match['func']} ({'/'.join(where[-2:])})"


def function_of(frame: str) -> str:
    """A frame without its line number, so one function's lines add up."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    return f"{match['func']} ({match['where'].rsplit(':', 1)[0].rsplit('/', 2)[-1]})"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--min-share", type=float, default=0.05,
                        help="skip threads with less than this share of the busy samples")
    args = parser.parse_args(argv)
    busy: Counter[str] = Counter()
    idle: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    own: dict[str, Counter[str]] = defaultdict(Counter)
    for line in args.file.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        frames = frames[1:]
        if not frames or any(p in frames[-1] for p in IDLE_LEAVES):
            idle[thread] += count
            continue
        busy[thread] += count
        for name in dict.fromkeys(function_of(f) for f in frames):
            inclusive[thread][name] += count
        own[thread][short(frames[-1])] += count
    total = sum(busy.values())
    print(f"{args.file}: {total} busy samples, {sum(idle.values())} idle")
    for thread, samples in busy.most_common():
        print(f"  thread {thread}: busy {samples} ({samples / max(total, 1):.0%} of busy), "
              f"idle {idle[thread]}")
    for thread, samples in busy.most_common():
        if samples < args.min_share * total:
            continue
        print(f"\n== thread {thread}: {samples} busy samples")
        print("  inclusive (function and everything it calls):")
        for name, n in inclusive[thread].most_common(args.top):
            print(f"    {n / samples:6.1%}  {name}")
        print("  self (the frame on top of the stack):")
        for name, n in own[thread].most_common(args.top):
            print(f"    {n / samples:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
