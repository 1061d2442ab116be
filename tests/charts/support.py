"""Render the Helm chart with the Helm binary built by hack/build-tools.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelreg"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
KUBE_VERSION = "1.37.2"


def helm(binary: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [binary, *args], capture_output=True, text=True, check=False, env=env, timeout=120
    )
    if done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def render(
    binary: str,
    *args: str,
    release: str = "r1",
    namespace: str = "modelreg-system",
) -> list[dict[str, Any]]:
    """The chart's objects, as ``helm template`` renders them with ``args``."""
    out = helm(
        binary,
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        *args,
    )
    return [d for d in yaml.safe_load_all(out) if d]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]
