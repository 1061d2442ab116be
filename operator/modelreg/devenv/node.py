"""The real node of the local environment: its names, addresses and configuration (pure).

Next to KWOK's fake nodes, ``modelreg dev up`` runs one real node: a kubelet and
containerd (built by ``hack/build-tools.sh``), runc and the CNI plugins from Debian's
packages. The node is the environment's own test host. It lives in a network namespace
that the environment creates, reached from the host by a veth pair that it creates; the
host's own interfaces, routes and firewall tables are never changed. Pods get addresses
on a bridge inside that namespace, and their traffic to the host end of the veth is
masqueraded there (iptables rules of that namespace only), so the host needs no route to
them. Every name below derives from the environment's directory, so two environments
(the tests run a second one) never share a namespace, an interface or a cgroup, and
``dev down`` finds everything again after a crash. devenv/host.py does the I/O.

Pods land on the real node only where they are meant to: the node carries the taint
:data:`TAINT_KEY` and the label :data:`LABEL`; a namespace annotated by
:func:`namespace_annotations` gets both a node selector and the toleration by the API
server's ``PodNodeSelector`` and ``PodTolerationRestriction`` admission plugins, so
whatever a modelreg Deployment creates there runs for real, unchanged.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the name of the real node (the API server reaches it by its InternalIP)
NODE_NAME = "real-node-0"
#: label and taint of the real node
LABEL = "modelreg.dev/node"
LABEL_VALUE = "real"
TAINT_KEY = "modelreg.dev/real-node"
#: veth links come from here, one /30 per environment
LINK_RANGE = ipaddress.ip_network("10.250.0.0/16")
#: pods of the real node (inside its namespace only; KWOK's fake pods use 10.244.0.0/16)
POD_RANGE = "10.245.0.0/24"
KUBELET_PORT = 10250
#: the pause image's tag: the pause program is built from the Kubernetes module's source
PAUSE_REPOSITORY = "modelreg-dev/pause"


@dataclass(frozen=True)
class Node:
    """Where the real node of the environment in ``root`` lives."""

    root: Path
    #: the node's files: .dev/data/node (images, pods' volumes, logs)
    base: Path

    @property
    def ident(self) -> str:
        """Eight hex digits naming this environment's node everywhere on the host."""
        return hashlib.sha256(str(self.root).encode()).hexdigest()[:8]

    @property
    def netns(self) -> str:
        return f"modelreg-{self.ident}"

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    @property
    def host_link(self) -> str:
        """The veth end on the host (interface names have at most 15 characters)."""
        return f"mrh{self.ident}"

    @property
    def node_link(self) -> str:
        """The veth end inside the namespace, before it is renamed to eth0 there."""
        return f"mrn{self.ident}"

    @property
    def link(self) -> ipaddress.IPv4Network:
        slots = (LINK_RANGE.num_addresses // 4) - 1
        index = 1 + int(self.ident, 16) % slots
        return ipaddress.IPv4Network(f"{LINK_RANGE[index * 4]}/30")

    @property
    def host_ip(self) -> str:
        """The host end of the veth: the node reaches the environment's servers here."""
        return str(self.link[1])

    @property
    def node_ip(self) -> str:
        return str(self.link[2])

    @property
    def cgroup(self) -> str:
        """The kubelet's cgroup root: every pod's cgroup is below it."""
        return f"/modelreg-{self.ident}"

    @property
    def cni_network(self) -> str:
        return f"modelreg-{self.ident}"

    # the node's own files ---------------------------------------------------------------

    @property
    def run(self) -> Path:
        """Runtime state and sockets, at a short path: a Unix socket's path has at most
        107 bytes, and the kubelet makes some deep below its root directory (a test's
        environment directory alone can be 60). Removed by ``dev down``."""
        return Path("/run") / f"modelreg-{self.ident}"

    @property
    def kubelet_dir(self) -> Path:
        """The kubelet's files, on disk in the environment's directory."""
        return self.base / "kubelet"

    @property
    def kubelet_root(self) -> Path:
        """The kubelet's ``--root-dir``: a link in :attr:`run` to :attr:`kubelet_dir`."""
        return self.run / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.base / "pod-logs"

    @property
    def containerd_root(self) -> Path:
        return self.base / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.run / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def runc_root(self) -> Path:
        return self.run / "runc"

    @property
    def cni_conf_dir(self) -> Path:
        return self.base / "cni"

    @property
    def cni_data_dir(self) -> Path:
        return self.base / "cni-ipam"

    @property
    def registry_hosts_dir(self) -> Path:
        return self.base / "certs.d"

    @property
    def config_dir(self) -> Path:
        return self.base / "config"

    def owned_paths(self) -> tuple[Path, ...]:
        """Directories under which every mount of the node lies (``down`` unmounts them)."""
        return (self.base, self.run)


def node_of(root: Path) -> Node:
    root = root.resolve()
    return Node(root=root, base=root / "data" / "node")


def namespace_annotations() -> dict[str, str]:
    """Annotations that send a namespace's pods to the real node (and only there)."""
    return {
        "scheduler.alpha.kubernetes.io/node-selector": f"{LABEL}={LABEL_VALUE}",
        "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(
            [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
        ),
    }


def kubelet_config(node: Node, ca_file: Path, cert: Path, key: Path) -> dict[str, Any]:
    """The kubelet's KubeletConfiguration (kubelet.config.k8s.io/v1beta1)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node.node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        # the namespace's own loopback: nothing outside it reaches these
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(cert),
        "tlsPrivateKeyFile": str(key),
        "containerRuntimeEndpoint": f"unix://{node.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": node.cgroup,
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        # REAL-NODE.md: these machines have cgroup v1, which the kubelet refuses by default
        "failCgroupV1": False,
        "failSwapOn": False,
        "podLogsDir": str(node.pod_logs),
        "registerWithTaints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}],
        "registerNode": True,
        # a shared machine's disk is not this node's: evict only when it is really full,
        # and never garbage-collect images for disk usage the node did not cause
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "maxPods": 40,
        "staticPodPath": "",
        "nodeStatusUpdateFrequency": "4s",
        "shutdownGracePeriod": "0s",
        "containerLogMaxSize": "10Mi",
        "containerLogMaxFiles": 2,
    }


def kubelet_argv(kubelet: str, node: Node, kubeconfig: Path) -> list[str]:
    return [
        kubelet,
        f"--config={node.config_dir / 'kubelet.yaml'}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={node.kubelet_root}",
        f"--cert-dir={node.kubelet_dir / 'pki'}",
        f"--node-ip={node.node_ip}",
        f"--hostname-override={NODE_NAME}",
        f"--node-labels={LABEL}={LABEL_VALUE}",
        "--v=1",
    ]


def containerd_config(node: Node, pause_image: str) -> str:
    """containerd's config.toml (version 4, containerd 2.4), every path the node's own."""
    cni_dir = "/usr/lib/cni"
    return f"""version = 4
root = {json.dumps(str(node.containerd_root))}
state = {json.dumps(str(node.containerd_state))}
# nothing from the host's own containerd configuration
imports = []

[debug]
  level = "info"

# version 4: the servers are plugins (an old top-level [grpc] is ignored)
[plugins."io.containerd.server.v1.grpc"]
  address = {json.dumps(str(node.containerd_socket))}

[plugins."io.containerd.server.v1.ttrpc"]
  address = {json.dumps(str(node.containerd_socket) + ".ttrpc")}

# by default /opt/containerd, made on the host
[plugins."io.containerd.internal.v1.opt"]
  path = {json.dumps(str(node.containerd_root / "opt"))}

[plugins."io.containerd.nri.v1.nri"]
  # its socket would be a fixed host path (/var/run/nri)
  disable = true

[plugins."io.containerd.transfer.v1.local"]
  config_path = {json.dumps(str(node.registry_hosts_dir))}

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = {json.dumps(pause_image)}
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = {json.dumps(str(node.registry_hosts_dir))}

[plugins."io.containerd.cri.v1.runtime"]
  # REAL-NODE.md: without CAP_SYS_RESOURCE runc may not lower oom_score_adj
  restrict_oom_score_adj = true
  enable_selinux = false
  # the pods' network namespaces under containerd's state, not in the host's /run/netns
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "/usr/bin/runc"
        Root = {json.dumps(str(node.runc_root))}
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [{json.dumps(cni_dir)}]
    conf_dir = {json.dumps(str(node.cni_conf_dir))}
    max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def cni_config(node: Node) -> dict[str, Any]:
    """The pod network: a bridge with host-local addresses, masqueraded out of the pods'
    range (so replies from the host end of the veth find their way back)."""
    return {
        "cniVersion": "1.0.0",
        "name": node.cni_network,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_RANGE}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(node.cni_data_dir),
                },
            },
        ],
    }


def registry_hosts(registry: str, host_ip: str) -> tuple[str, str]:
    """containerd's ``hosts.toml`` for an image named ``127.0.0.1:PORT/...``: pulled from
    the host end of the veth, where the gateway forwards the same port. Returns the
    directory name and the file's text."""
    port = registry.rsplit(":", 1)[1]
    return registry, (
        f'server = "http://{registry}"\n\n'
        f'[host."http://{host_ip}:{port}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
    )
