"""The built binaries say the versions pinned in hack/versions.env (the ldflags are set)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from modelreg.devenv.tools import Tools, ToolsError, ensure_tools

VERSIONS = Path(__file__).resolve().parents[2] / "hack" / "versions.env"


def pinned() -> dict[str, str]:
    lines = VERSIONS.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z_]+=", line))


@pytest.fixture(scope="module")
def tools() -> Tools:
    try:
        return ensure_tools(build=False, quiet=True)
    except ToolsError as e:
        pytest.skip(f"the binaries are not built (hack/build-tools.sh): {e}")


def output(tools: Tools, name: str, *args: str) -> str:
    r = subprocess.run(
        [tools[name], *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, r.stderr
    return r.stdout + r.stderr


#: (binary, arguments, a regular expression for one whole line of its output)
CASES = [
    ("kube-apiserver", ["--version"], r"^Kubernetes {KUBE_VERSION}$"),
    ("kube-controller-manager", ["--version"], r"^Kubernetes {KUBE_VERSION}$"),
    ("kube-scheduler", ["--version"], r"^Kubernetes {KUBE_VERSION}$"),
    ("kubectl", ["version", "--client"], r"^Client Version: {KUBE_VERSION}$"),
    ("etcd", ["--version"], r"^etcd Version: {ETCD_VERSION_NUMBER}$"),
    ("kwok", ["--version"], r"^kwok version {KWOK_VERSION} "),
    ("helm", ["version"], r'^version.BuildInfo\{{Version:"{HELM_VERSION}",'),
    ("crane", ["version"], r"^{CRANE_VERSION}$"),
    (
        "registry",
        ["--version"],
        r" github.com/distribution/distribution/v3 {DISTRIBUTION_VERSION}$",
    ),
    # the real node
    ("kubelet", ["--version"], r"^Kubernetes {KUBE_VERSION}$"),
    ("containerd", ["--version"], r"^containerd \S+ {CONTAINERD_VERSION_NUMBER}(\s|$)"),
    ("containerd-shim-runc-v2", ["-v"], r"^\s+Version:\s+{CONTAINERD_VERSION_NUMBER}$"),
    ("ctr", ["--version"], r"^ctr \S+ {CONTAINERD_VERSION_NUMBER}$"),
    ("pause", ["-v"], r"^pause\.c v{PAUSE_VERSION}-modelreg$"),
]


@pytest.mark.parametrize(("binary", "args", "line"), CASES, ids=[c[0] for c in CASES])
def test_binary_prints_the_pinned_version(
    tools: Tools, binary: str, args: list[str], line: str
) -> None:
    v = {k: re.escape(x) for k, x in pinned().items()}
    v["ETCD_VERSION_NUMBER"] = re.escape(pinned()["ETCD_VERSION"].removeprefix("v"))
    v["CONTAINERD_VERSION_NUMBER"] = re.escape(pinned()["CONTAINERD_VERSION"].removeprefix("v"))
    got = output(tools, binary, *args)
    assert re.search(line.format(**v), got, re.M), f"{binary} {' '.join(args)}:\n{got}"


def test_every_built_binary_is_checked() -> None:
    from modelreg.devenv.tools import BINARIES

    # MinIO is built without version ldflags (it prints DEVELOPMENT.GOGET): not checked
    assert {c[0] for c in CASES} == set(BINARIES) - {"minio"}
