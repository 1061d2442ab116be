"""Run the shell commands of a Markdown document, in order, the way a reader would.

A document's commands are the lines of its fenced ``sh`` blocks. Conventions, so that
documentation stays runnable:

- A block right after the line ``<!-- test: skip (why) -->`` is not run (installing or
  starting the environment, which the test session has done; running the test suite).
- A command whose trailing comment starts with ``# refused`` must fail with a refusal
  (an admission denial, an authentication error): the point of showing it.
- A line ending in a backslash continues on the next line. Full-line comments and blank
  lines are ignored. Output shown to the reader goes in ``text`` blocks, never ``sh``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SKIP_MARKER = re.compile(r"^<!--\s*test:\s*skip\b.*-->\s*$")
REFUSED = re.compile(r"\s#\s*refused\b")
#: what a refused command's output must contain (any of them)
REFUSALS = ("denied the request", "UNAUTHORIZED", "Forbidden")


@dataclass(frozen=True)
class Command:
    text: str  # one command, continuation lines joined with their backslash-newlines
    skipped: bool  # in a block marked <!-- test: skip -->
    refused: bool  # must fail with a refusal


def section(markdown: str, heading: str) -> str:
    """The text of the ``## `` section whose heading starts with ``heading``."""
    out: list[str] = []
    inside = fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            if inside:
                break
            inside = line[3:].startswith(heading)
            continue
        if inside:
            out.append(line)
    if not out:
        raise AssertionError(f"no section '## {heading}'")
    return "\n".join(out)


def commands(markdown: str) -> list[Command]:
    """The commands of every ``sh`` block of ``markdown``, in order."""
    found: list[Command] = []
    lines = markdown.splitlines()
    i = 0
    previous = ""  # the last non-blank line before the current one
    while i < len(lines):
        line = lines[i]
        if line.strip() in ("```sh", "```bash", "```shell"):
            skipped = bool(SKIP_MARKER.match(previous))
            i += 1
            pending: list[str] = []
            while i < len(lines) and lines[i].strip() != "```":
                body = lines[i]
                i += 1
                if not pending and (not body.strip() or body.lstrip().startswith("#")):
                    continue
                pending.append(body)
                if not body.endswith("\\"):
                    text = "\n".join(pending)
                    found.append(Command(text, skipped, bool(REFUSED.search(pending[-1]))))
                    pending = []
            if pending:
                raise AssertionError(f"a command ends in a backslash: {pending}")
        elif line.startswith("```"):  # another fenced block (output): skip it whole
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1
        if line.strip():
            previous = line.strip()
        i += 1
    return found


def script(cmds: Sequence[Command]) -> str:
    """One bash script that runs ``cmds`` in order, echoing each and stopping at the first
    that does not do what the document says (fails, or succeeds where it must be refused)."""
    out = ["set -uo pipefail"]
    for n, c in enumerate(cmds, 1):
        out.append(f"printf '\\n$ %s\\n' {shlex.quote(c.text)}")
        if c.refused:
            refusals = "|".join(f"*{shlex.quote(r)}*" for r in REFUSALS)
            out += [
                "__out=$( {",
                c.text,
                "} 2>&1 ); __rc=$?",
                "printf '%s\\n' \"$__out\"",
                f'[ "$__rc" -ne 0 ] || {{ echo "command {n} was not refused" >&2; exit 1; }}',
                f'case "$__out" in {refusals}) ;; '
                f'*) echo "command {n} failed without a refusal" >&2; exit 1;; esac',
            ]
        else:
            out += [
                "{",
                c.text,
                f'}} || {{ echo "command {n} failed (exit $?)" >&2; exit 1; }}',
            ]
    return "\n".join(out) + "\n"


def run(
    cmds: Sequence[Command], cwd: Path, env: Mapping[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``cmds`` with bash; stdout and stderr interleaved in ``stdout``."""
    return subprocess.run(
        ["bash", "-c", script(cmds)],
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
