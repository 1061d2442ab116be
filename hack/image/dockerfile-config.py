#!/usr/bin/env python3
"""Print the final stage's image configuration of a Dockerfile as `crane mutate` flags.

hack/build-images.sh builds the modelreg image without Docker; the configuration it
gives the image (ENV, USER, ENTRYPOINT, CMD, EXPOSE, LABEL) is read from the Dockerfile
by this script, so the two never say different things (tests/test_image.py checks it).
Only the instructions the Dockerfile uses are understood; any other one in the final
stage is an error, never silently dropped.

    hack/image/dockerfile-config.py Dockerfile   # one flag per line
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

#: instructions that shape the file system (done by the build script) or only the build
BUILD_ONLY = {"FROM", "RUN", "COPY", "ARG", "WORKDIR"}
#: the base image's PATH (python:*-slim-bookworm's, as Debian's), for ``$PATH`` in ENV
BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuations joined, comments dropped)."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def _pairs(rest: str) -> list[tuple[str, str]]:
    """``KEY=value KEY2="v 2"`` (the form this Dockerfile uses for ENV and LABEL)."""
    return [tuple(item.split("=", 1)) for item in shlex.split(rest)]  # type: ignore[misc]


def final_stage_flags(text: str) -> list[str]:
    stages: list[list[tuple[str, str]]] = []
    for word, rest in instructions(text):
        if word == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append((word, rest))
    flags: list[str] = []
    for word, rest in stages[-1]:
        if word == "ENV":
            flags += [f"--env={k}={v.replace('$PATH', BASE_PATH)}" for k, v in _pairs(rest)]
        elif word == "LABEL":
            flags += [f"--label={k}={v}" for k, v in _pairs(rest)]
        elif word == "USER":
            flags.append(f"--user={rest}")
        elif word == "ENTRYPOINT":
            flags.append("--entrypoint=" + ",".join(json.loads(rest)))
        elif word == "CMD":
            flags.append("--cmd=" + ",".join(json.loads(rest)))
        elif word == "EXPOSE":
            flags += [f"--exposed-ports={p}" for p in rest.split()]
        elif word not in BUILD_ONLY:
            raise SystemExit(f"dockerfile-config.py: {word} is not understood; add it here")
    return flags


def _main() -> None:
    text = Path(sys.argv[1]).read_text()
    path_env = None
    for flag in final_stage_flags(text):
        if flag.startswith("--env=PATH="):
            path_env = flag
        print(flag)
    if path_env is None:
        raise SystemExit("dockerfile-config.py: the final stage sets no PATH")


if __name__ == "__main__":
    _main()
