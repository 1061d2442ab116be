"""``modelreg dev up`` twice, after a crash, and ``down`` with no stray process left.

Runs a second, private environment (its own directory and ports) beside the session's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelreg import devenv
from modelreg.devenv import host, images, process
from modelreg.devenv import node as nodecfg

pytestmark = pytest.mark.cluster


def processes_using(root: Path) -> dict[int, str]:
    """Live processes of the environment in ``root``: pid -> command line.

    A process belongs to it if its command line mentions ``root`` (the servers' files),
    its environment carries ``MODELREG_DEV_DIR=root`` (the operator, whose command line
    names no file of the environment) or it runs in ``root``.
    """
    marker = f"MODELREG_DEV_DIR={root.resolve()}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            environ = (entry / "environ").read_bytes().split(b"\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if state == "Z":
            continue
        if str(root) in cmdline or marker in environ or cwd.is_relative_to(root.resolve()):
            found[int(entry.name)] = cmdline
    return found


def modelreg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelreg", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def status(root: Path) -> dict[str, dict[str, object]]:
    r = modelreg("dev", "status", "--dir", str(root), "-o", "json")
    return {s["name"]: s for s in json.loads(r.stdout)}


def test_up_twice_crash_recovery_and_clean_down(tmp_path: Path) -> None:
    root = tmp_path / "env"
    try:
        first = modelreg("dev", "up", "--dir", str(root))
        assert first.returncode == 0, first.stderr
        assert modelreg("dev", "status", "--dir", str(root)).returncode == 0
        before = status(root)
        assert all(s["healthy"] for s in before.values()), before

        # files the issue promises
        env_sh = (root / "env.sh").read_text()
        for var in (
            "KUBECONFIG",
            "MODELREG_S3_ENDPOINT",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
            "MODELREG_REGISTRY",
            "MODELREG_PRIVATE_REGISTRY",
            "MODELREG_PRIVATE_REGISTRY_USERNAME",
            "MODELREG_PRIVATE_REGISTRY_PASSWORD",
        ):
            assert f"export {var}=" in env_sh
        assert (root / "kubeconfig").stat().st_mode & 0o077 == 0

        # a second `up` changes nothing
        again = modelreg("dev", "up", "--dir", str(root))
        assert again.returncode == 0, again.stderr
        assert again.stderr.count("already running") == len(before)
        assert {n: s["pid"] for n, s in status(root).items()} == {
            n: s["pid"] for n, s in before.items()
        }

        # a crash: kill -9 the API server and a registry; `up` brings them back
        for name in ("kube-apiserver", "registry"):
            os.kill(int(before[name]["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
        crashed = modelreg("dev", "status", "--dir", str(root))
        assert crashed.returncode == 1
        assert "stopped" in crashed.stdout
        recovered = modelreg("dev", "up", "--dir", str(root))
        assert recovered.returncode == 0, recovered.stderr
        after = status(root)
        assert all(s["healthy"] for s in after.values()), after
        assert after["kube-apiserver"]["pid"] != before["kube-apiserver"]["pid"]
        assert after["etcd"]["pid"] == before["etcd"]["pid"]
        # the stray-process check below sees every component, the operator included
        assert {int(s["pid"]) for s in after.values()} <= set(processes_using(root))  # type: ignore[call-overload]
    finally:
        down = modelreg("dev", "down", "--dir", str(root))
    assert down.returncode == 0, down.stderr
    assert processes_using(root) == {}
    assert not any(process.read_pidfile(p) for p in (root / "run").glob("*.pid"))
    assert modelreg("dev", "status", "--dir", str(root)).returncode == 1


def test_up_without_operator_reports_it_disabled(tmp_path: Path) -> None:
    root = tmp_path / "env"
    try:
        first = modelreg("dev", "up", "--dir", str(root), "--no-operator")
        assert first.returncode == 0, first.stderr
        assert process.read_pidfile(root / "run" / "operator.pid") is None
        table = modelreg("dev", "status", "--dir", str(root))
        assert table.returncode == 0, table.stdout
        assert re.search(r"^operator\s+-\s+disabled$", table.stdout, re.M), table.stdout
        s = status(root)
        assert s["operator"]["disabled"] is True
        assert s["operator"]["pid"] is None
        assert all(v["healthy"] for n, v in s.items() if n != "operator"), s

        # `up` with the operator: it runs and is no longer disabled
        with_operator = modelreg("dev", "up", "--dir", str(root))
        assert with_operator.returncode == 0, with_operator.stderr
        s = status(root)
        assert s["operator"]["healthy"] is True
        assert s["operator"]["disabled"] is False
        assert int(s["operator"]["pid"]) in processes_using(root)  # type: ignore[call-overload]

        # and left out again: stopped, disabled, still exit 0
        again = modelreg("dev", "up", "--dir", str(root), "--no-operator")
        assert again.returncode == 0, again.stderr
        assert modelreg("dev", "status", "--dir", str(root)).returncode == 0
        assert status(root)["operator"]["pid"] is None
    finally:
        down = modelreg("dev", "down", "--dir", str(root))
    assert down.returncode == 0, down.stderr
    assert processes_using(root) == {}
    # a disabled operator does not make a stopped environment look healthy
    assert modelreg("dev", "status", "--dir", str(root)).returncode == 1


def _kill_everything(root: Path) -> None:
    """kill -9 every process of the environment: its servers, the kubelet, containerd and
    its shims. The pods' own processes live on, orphaned, as after a real crash."""
    for pid in processes_using(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _pod_processes(node: nodecfg.Node) -> set[int]:
    pids: set[int] = set()
    for d in host._cgroup_dirs(node):
        with contextlib.suppress(OSError):
            pids |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
    return pids


@pytest.mark.timeout(600)
def test_the_real_node_leaves_nothing_on_the_host_even_after_kill_9(tmp_path: Path) -> None:
    """A real pod runs; everything is killed with SIGKILL; `dev down` (twice) removes
    every mount, cgroup, namespace, interface, process and fixed-path file the node made;
    `dev up` then starts it again."""
    root = tmp_path / "env"
    node = nodecfg.node_of(root)
    try:
        up = modelreg("dev", "up", "--dir", str(root), "--no-operator")
        assert up.returncode == 0, up.stderr
        env = devenv.open_existing(root)
        assert env is not None
        assert env.node_ready()
        image = images.ensure(env.tools["crane"], env.registry, images.busybox())
        ns = "real"
        env.kubectl("create", "namespace", ns)
        env.kubectl(
            "annotate", "namespace", ns,
            *[f"{k}={v}" for k, v in nodecfg.namespace_annotations().items()],
        )  # fmt: skip
        env.kubectl(
            "-n", ns, "run", "sleeper", f"--image={image}", "--restart=Never",
            "--overrides", json.dumps({"spec": {"securityContext": {"runAsUser": 65532},
                                                "automountServiceAccountToken": False}}),
            "--command", "--", "sleep", "3600",
        )  # fmt: skip
        env.kubectl("-n", ns, "wait", "pod/sleeper", "--for=condition=Ready", "--timeout=90s")
        assert host._shims(node), "a running pod has a shim"
        assert host.mounts_under(node.owned_paths()), "a running pod has mounts"

        _kill_everything(root)
        time.sleep(0.5)
        assert _pod_processes(node), "the pod's processes outlive their shim"
        for _ in range(2):  # down after a crash, and down again: both clean
            down = modelreg("dev", "down", "--dir", str(root))
            assert down.returncode == 0, down.stderr
            assert host.what_is_left(node) == []
            assert processes_using(root) == {}
            # the pods' network namespaces were containerd's (under its state), never
            # the host's /run/netns
            assert not list(Path("/run/netns").glob("cni-*"))

        again = modelreg("dev", "up", "--dir", str(root), "--no-operator")
        assert again.returncode == 0, again.stderr
        env = devenv.open_existing(root)
        assert env is not None
        assert env.node_ready()
    finally:
        down = modelreg("dev", "down", "--dir", str(root))
    assert down.returncode == 0, down.stderr
    assert host.what_is_left(node) == []
    assert processes_using(root) == {}
