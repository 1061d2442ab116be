"""What the real node changes on the host, and how all of it is removed again (OS I/O).

Everything here acts only on names derived from the environment's directory
(devenv/node.py): its network namespace and the veth pair it created, its cgroup, the
mounts below its own directories, its containerd's shims and their sockets, and the few
files the kubelet and the CNI plugins write to fixed host paths. The host's own
interfaces, routes and firewall tables are never touched: the veth's host end is a new
interface of the environment's own, and every iptables rule is written inside the
node's namespace. :func:`teardown` is safe to run twice and after a crash (``kill -9``
of everything): each step looks for what is left and removes only that.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from modelreg.devenv.node import Node

CGROUP_FS = Path("/sys/fs/cgroup")
CNI_BIN = Path("/usr/lib/cni")
RUNC = Path("/usr/bin/runc")
#: paths the kubelet and CNI write whatever their configuration says
KUBELET_CONTAINER_LOGS = Path("/var/log/containers")
KUBELET_DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")
CNI_RESULTS = Path("/var/lib/cni/results")
SHIM_SOCKETS = Path("/run/containerd/s")
#: fixed directories the kubelet and CNI make; removed when empty (another node's stay)
FIXED_DIRS = (
    CNI_RESULTS,
    CNI_RESULTS.parent,
    KUBELET_CONTAINER_LOGS,
    KUBELET_DEVICE_PLUGINS,
    KUBELET_DEVICE_PLUGINS.parent,
)

#: capabilities the node needs (bits of CapEff): CAP_NET_ADMIN, CAP_SYS_ADMIN
_NEEDED_CAPS = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21}


class HostError(RuntimeError):
    """The host cannot run the real node, or a step of setting it up failed."""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)
    if check and result.returncode != 0:
        raise HostError(f"{' '.join(argv)} failed: {(result.stderr or result.stdout).strip()}")
    return result


# --- what the machine must have ----------------------------------------------------------


def preflight() -> list[str]:
    """What this machine lacks to run the real node, each said plainly (empty: nothing)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the real node needs root (network namespaces, mounts, cgroups)")
    caps = _effective_caps()
    for name, bit in _NEEDED_CAPS.items():
        if not caps >> bit & 1:
            problems.append(f"the real node needs {name}, which this process does not have")
    for tool, package in (("ip", "iproute2"), ("nsenter", "util-linux"), ("iptables", "iptables")):
        if shutil.which(tool) is None:
            problems.append(f"`{tool}` is missing (Debian package {package})")
    if not RUNC.exists():
        problems.append(f"{RUNC} is missing (Debian package runc)")
    for plugin in ("bridge", "host-local", "loopback"):
        if not (CNI_BIN / plugin).exists():
            problems.append(
                f"CNI plugin {CNI_BIN / plugin} is missing "
                "(Debian package containernetworking-plugins)"
            )
    if "overlay" not in Path("/proc/filesystems").read_text():
        problems.append("the kernel has no overlay filesystem (containerd's snapshotter)")
    if cgroup_version() is None:
        problems.append(f"no cgroup hierarchy is mounted at {CGROUP_FS}")
    elif cgroup_version() == 1:
        missing = [c for c in ("cpu", "cpuset", "memory", "pids") if not _v1_dir(c).is_dir()]
        if missing:
            problems.append(f"cgroup v1 controllers not mounted: {', '.join(missing)}")
    if not Path("/proc/self/ns/net").exists():
        problems.append("the kernel has no network namespaces")
    return problems


def _effective_caps() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


# --- network -----------------------------------------------------------------------------


def _links() -> dict[str, list[str]]:
    """The host's interfaces and their IPv4 networks (read only)."""
    out = _run("ip", "-j", "-4", "addr", "show").stdout
    return {
        link["ifname"]: [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])]
        for link in json.loads(out or "[]")
    }


def ensure_network(node: Node) -> None:
    """The node's namespace and veth pair, addressed and up; idempotent."""
    links = _links()
    for name, addresses in links.items():
        if name == node.host_link:
            continue
        for a in addresses:
            if ipaddress.ip_interface(a).network.overlaps(node.link):
                raise HostError(
                    f"{name} already uses {a}, which overlaps the real node's link "
                    f"{node.link}; remove that interface or use another --dir"
                )
    if node.netns_path.exists() and _link_exists(node.host_link) and _ns_has_eth0(node):
        return
    # a half-made network (a crash while making it): start again
    _delete_network(node)
    _run("ip", "netns", "add", node.netns)
    _run("ip", "link", "add", node.host_link, "type", "veth", "peer", "name", node.node_link,
         "netns", node.netns)  # fmt: skip
    n = ("ip", "-n", node.netns)
    _run(*n, "link", "set", node.node_link, "name", "eth0")
    _run(*n, "addr", "add", f"{node.node_ip}/30", "dev", "eth0")
    _run(*n, "link", "set", "eth0", "up")
    _run(*n, "link", "set", "lo", "up")
    # the host does not forward (its ip_forward is its own): nothing leaves through here
    _run(*n, "route", "add", "default", "via", node.host_ip)
    _run("ip", "addr", "add", f"{node.host_ip}/30", "dev", node.host_link)
    _run("ip", "link", "set", node.host_link, "up")
    # forwarding between the pods' bridge and eth0, inside the namespace only
    _run("ip", "netns", "exec", node.netns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")


def _link_exists(name: str) -> bool:
    return _run("ip", "link", "show", "dev", name, check=False).returncode == 0


#: the node's own filter chain (inside its namespace; the host's tables are never touched)
EGRESS_CHAIN = "MODELREG-PODS"


def ensure_pod_egress(node: Node, pod_range: str, ports: list[int]) -> None:
    """What the node's pods may reach on the host: the gateway's ports on the veth's host
    end, and nothing else there (a server of the host's bound to all addresses is not
    the pods' to reach). Written into the node's namespace, again on every ``up``."""
    ipt = ("ip", "netns", "exec", node.netns, "iptables", "-w", "5")
    if _run(*ipt, "-n", "-L", EGRESS_CHAIN, check=False).returncode != 0:
        _run(*ipt, "-N", EGRESS_CHAIN)
    _run(*ipt, "-F", EGRESS_CHAIN)
    _run(*ipt, "-A", EGRESS_CHAIN, "-p", "tcp", "-d", node.host_ip,
         "-m", "multiport", "--dports", ",".join(map(str, ports)), "-j", "ACCEPT")  # fmt: skip
    _run(*ipt, "-A", EGRESS_CHAIN, "-d", node.host_ip, "-j", "REJECT")
    # pods' traffic to the host is forwarded (bridge -> eth0) in the namespace; traffic to
    # the host's end from the node's own processes (kubelet, containerd) is not
    rule = ("-s", pod_range, "-j", EGRESS_CHAIN)
    if _run(*ipt, "-C", "FORWARD", *rule, check=False).returncode != 0:
        _run(*ipt, "-I", "FORWARD", "1", *rule)


def _ns_has_eth0(node: Node) -> bool:
    return _run("ip", "-n", node.netns, "link", "show", "eth0", check=False).returncode == 0


def _delete_network(node: Node) -> None:
    if node.netns_path.exists():
        _run("ip", "netns", "del", node.netns, check=False)
    # the pair goes with the namespace; a host end left from a half-made network does not
    _run("ip", "link", "del", node.host_link, check=False)


def in_netns(node: Node, argv: list[str]) -> list[str]:
    """``argv`` run in the node's network namespace (and the host's mount namespace, so
    the kubelet's mounts are containerd's too)."""
    return ["nsenter", f"--net={node.netns_path}", "--", *argv]


# --- cgroups -----------------------------------------------------------------------------


def cgroup_version() -> int | None:
    if (CGROUP_FS / "cgroup.controllers").exists():
        return 2
    if any(_v1_dir(c).is_dir() for c in ("cpu", "memory")):
        return 1
    return None


def _v1_dir(controller: str) -> Path:
    return CGROUP_FS / controller


def _hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1: one per controller mount; v2: the one)."""
    if cgroup_version() == 2:
        return [CGROUP_FS]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype = right.split()[0] if right else ""
        if fstype in ("cgroup", "cgroup2"):
            mountpoint = Path(left.split()[4])
            if mountpoint.is_relative_to(CGROUP_FS):
                found.append(mountpoint)
    return found


def ensure_cgroup(node: Node) -> None:
    """The kubelet's cgroup root in every hierarchy; v1's cpuset gets its parent's CPUs
    and memory nodes (REAL-NODE.md: a new cpuset starts empty)."""
    rel = node.cgroup.lstrip("/")
    for h in _hierarchies():
        d = h / rel
        d.mkdir(exist_ok=True)
        if (h / "cpuset.cpus").exists() and cgroup_version() == 1:
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not (d / f).read_text().strip():
                    (d / f).write_text((h / f).read_text())
            (d / "cgroup.clone_children").write_text("1")


def _cgroup_dirs(node: Node) -> list[Path]:
    """The node's cgroups in every hierarchy, deepest first."""
    rel = node.cgroup.lstrip("/")
    dirs: list[Path] = []
    for h in _hierarchies():
        top = h / rel
        if top.is_dir():
            dirs += [Path(p) for p, _, _ in os.walk(top)]
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def _kill_cgroups(node: Node, timeout: float = 10) -> None:
    """SIGKILL every process in the node's cgroups (the pods' containers), until none."""
    deadline = time.monotonic() + timeout
    while True:
        pids = set()
        for d in _cgroup_dirs(node):
            with contextlib.suppress(OSError):
                pids |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise HostError(f"processes {sorted(pids)} in {node.cgroup} did not die")
        time.sleep(0.1)


def _remove_cgroups(node: Node) -> None:
    for d in _cgroup_dirs(node):
        with contextlib.suppress(FileNotFoundError):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:  # EBUSY while the last process is being reaped
                    time.sleep(0.1)


# --- processes the daemons leave -------------------------------------------------------


def _shims(node: Node) -> list[int]:
    """containerd's shims of this node (each runs in a session of its own)."""
    address = str(node.containerd_socket)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address.encode() in argv:
            found.append(int(entry.name))
    return found


def _kill_shims(node: Node) -> None:
    for _ in range(100):
        pids = _shims(node)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    raise HostError(f"containerd shims {_shims(node)} did not die")


def _remove_shim_sockets(node: Node) -> None:
    """The shims' sockets live in /run/containerd/s whatever containerd's state is; each
    bundle records its socket's address."""
    tasks = node.containerd_state / "io.containerd.runtime.v2.task"
    for address_file in tasks.glob("*/*/address"):
        with contextlib.suppress(OSError):
            address = address_file.read_text().strip()
            path = Path(address.removeprefix("unix://"))
            if path.parent == SHIM_SOCKETS:
                path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        SHIM_SOCKETS.rmdir()  # only if empty: another containerd may use it
        SHIM_SOCKETS.parent.rmdir()


# --- mounts ------------------------------------------------------------------------------


def mounts_under(paths: tuple[Path, ...]) -> list[Path]:
    """Mount points below ``paths`` (deepest first), from this mount namespace."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = Path(line.split()[4].replace("\\040", " "))
        if any(point.is_relative_to(p) for p in paths):
            found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def _unmount_all(node: Node) -> None:
    for _ in range(5):
        points = mounts_under(node.owned_paths())
        if not points:
            return
        for p in points:
            _run("umount", "--lazy", str(p), check=False)
    left = mounts_under(node.owned_paths())
    if left:
        raise HostError(f"could not unmount {', '.join(map(str, left))}")


# --- files at fixed host paths ----------------------------------------------------------


def _remove_fixed_path_files(node: Node) -> None:
    if KUBELET_CONTAINER_LOGS.is_dir():
        for link in KUBELET_CONTAINER_LOGS.iterdir():
            with contextlib.suppress(OSError):
                if link.is_symlink() and Path(os.readlink(link)).is_relative_to(node.pod_logs):
                    link.unlink()
    if CNI_RESULTS.is_dir():
        for f in CNI_RESULTS.glob(f"{node.cni_network}-*"):
            f.unlink(missing_ok=True)
    # the kubelet's device-plugin socket is at a fixed path whatever its root dir: it
    # belongs to whichever kubelet runs, so it goes only when none does
    if not _kubelets_running():
        (KUBELET_DEVICE_PLUGINS / "kubelet.sock").unlink(missing_ok=True)
    for d in FIXED_DIRS:
        with contextlib.suppress(OSError):
            d.rmdir()


def _kubelets_running() -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "kubelet":
                    return True
    return False


def teardown(node: Node) -> list[str]:
    """Remove everything the node made on the host, after its kubelet and containerd
    have stopped. Returns what was removed (for the log); safe to run again."""
    done = []
    if _cgroup_dirs(node):
        _kill_cgroups(node)
    if _shims(node):
        _kill_shims(node)
        done.append("containerd shims")
    _remove_shim_sockets(node)
    if mounts_under(node.owned_paths()):
        _unmount_all(node)
        done.append("mounts")
    if _cgroup_dirs(node):
        _remove_cgroups(node)
        done.append(f"cgroup {node.cgroup}")
    _remove_fixed_path_files(node)
    if node.netns_path.exists() or _link_exists(node.host_link):
        _delete_network(node)
        done.append(f"network namespace {node.netns} and veth {node.host_link}")
    # runtime state only (sockets, runc's state, bundles); images and data stay in base
    shutil.rmtree(node.run, ignore_errors=True)
    return done


def what_is_left(node: Node) -> list[str]:
    """What of the node still exists on the host (empty after a clean teardown)."""
    left = []
    if node.netns_path.exists():
        left.append(f"network namespace {node.netns}")
    if _link_exists(node.host_link):
        left.append(f"interface {node.host_link}")
    left += [f"cgroup {d}" for d in _cgroup_dirs(node)]
    left += [f"mount {p}" for p in mounts_under(node.owned_paths())]
    left += [f"shim pid {p}" for p in _shims(node)]
    if KUBELET_CONTAINER_LOGS.is_dir():
        for link in KUBELET_CONTAINER_LOGS.iterdir():
            with contextlib.suppress(OSError):
                if link.is_symlink() and Path(os.readlink(link)).is_relative_to(node.pod_logs):
                    left.append(f"log link {link}")
    if CNI_RESULTS.is_dir():
        left += [f"CNI result {f}" for f in CNI_RESULTS.glob(f"{node.cni_network}-*")]
    if node.run.exists() or node.run.is_symlink():
        left.append(f"runtime directory {node.run}")
    return left
