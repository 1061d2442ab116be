"""Find the binaries that ``hack/build-tools.sh`` builds (and build them when missing)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "helm",
    "crane",
    "registry",
    "minio",
    # the real node (devenv/node.py)
    "kubelet",
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "pause",
)


class ToolsError(RuntimeError):
    """The binaries are missing and could not be built."""


def source_dir() -> Path:
    """The modelreg checkout (it holds ``hack/``): $MODELREG_SOURCE_DIR, cwd, or this package's."""
    candidates = []
    if env := os.environ.get("MODELREG_SOURCE_DIR"):
        candidates.append(Path(env))
    candidates += [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]
    for c in candidates:
        if (c / "hack" / "build-tools.sh").is_file():
            return c
    raise ToolsError(
        "cannot find the modelreg source tree (hack/build-tools.sh): run from a checkout "
        "or set MODELREG_SOURCE_DIR"
    )


@dataclass(frozen=True)
class Tools:
    """Absolute paths of the built binaries, plus KWOK's manifests of the same version."""

    path: dict[str, Path]
    kwok_manifests: Path

    def __getitem__(self, name: str) -> str:
        return str(self.path[name])

    @property
    def bin_path(self) -> str:
        """The tool directories as a PATH fragment (to put in front of $PATH)."""
        return os.pathsep.join(dict.fromkeys(str(p.parent) for p in self.path.values()))


def ensure_tools(build: bool = True, quiet: bool = False) -> Tools:
    """The built tools; runs ``hack/build-tools.sh`` first if ``build`` (a no-op when warm)."""
    script = source_dir() / "hack" / "build-tools.sh"
    args = ["bash", str(script)] + ([] if build else ["--print"])
    result = subprocess.run(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if quiet else None,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ToolsError(f"{script} failed (exit {result.returncode}); see its output above")
    dirs = [Path(d) for d in result.stdout.strip().splitlines()[-1].split(":") if d]
    found: dict[str, Path] = {}
    for d in dirs:
        for name in BINARIES:
            if (d / name).is_file() and name not in found:
                found[name] = d / name
    missing = [b for b in BINARIES if b not in found]
    if missing:
        raise ToolsError(f"{script} did not produce: {', '.join(missing)}")
    manifests = found["kwok"].parent / "manifests"
    if not manifests.is_dir():
        raise ToolsError(f"KWOK's manifests are missing from {manifests}; rebuild with --force")
    return Tools(found, manifests)
