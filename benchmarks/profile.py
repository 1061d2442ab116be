"""Summarise py-spy's collapsed stacks (``--format raw``): the functions with the most
samples on the stack (inclusive) and at the top (self).

``python -m benchmarks.profile /tmp/prof/registration-1000.txt [--top 25] [--match modelreg]``
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def _name(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "operator/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('fn')} ({path})"


def summarise(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """(total samples, inclusive, self) of the non-idle stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_name(f) for f in stack.split(";")[1:]]  # the first is the thread
        if not frames:
            continue
        total += count
        for f in set(frames):
            inclusive[f] += count
        own[frames[-1]] += count
    return total, inclusive, own


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    p.add_argument("file", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--match", default="", help="only functions whose file contains this")
    args = p.parse_args(argv)
    total, inclusive, own = summarise(args.file)
    print(f"{total} samples (non-idle threads)")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        rows = [(f, n) for f, n in counter.most_common() if args.match in f][: args.top]
        for f, n in rows:
            print(f"  {100 * n / max(total, 1):5.1f}%  {n:7d}  {f}")


if __name__ == "__main__":
    main()
