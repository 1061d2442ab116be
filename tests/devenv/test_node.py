"""The real node's names, addresses and configuration (devenv/node.py): pure, no host."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

from modelreg.devenv import node as nodecfg


def test_every_name_fits_and_is_the_environments_own(tmp_path: Path) -> None:
    a, b = nodecfg.node_of(tmp_path / "a"), nodecfg.node_of(tmp_path / "b")
    for n in (a, b):
        # Linux interface names have at most 15 characters
        assert len(n.host_link) <= 15
        assert len(n.node_link) <= 15
        assert n.link.prefixlen == 30
        assert n.link.subnet_of(nodecfg.LINK_RANGE)
        assert n.link.network_address != nodecfg.LINK_RANGE.network_address
        assert ipaddress.ip_address(n.host_ip) in n.link
        assert ipaddress.ip_address(n.node_ip) in n.link
        assert n.host_ip != n.node_ip
    # two environments never share a namespace, an interface, a cgroup or a link
    assert a.netns != b.netns
    assert a.host_link != b.host_link
    assert a.cgroup != b.cgroup
    assert a.link != b.link
    # and one environment finds its own again (dev down after a crash)
    assert nodecfg.node_of(tmp_path / "a") == a


def test_containerd_config_keeps_everything_in_the_environment(tmp_path: Path) -> None:
    n = nodecfg.node_of(tmp_path)
    config = tomllib.loads(nodecfg.containerd_config(n, "127.0.0.1:5000/pause@sha256:" + "0" * 64))
    assert config["root"] == str(n.containerd_root)
    assert config["state"] == str(n.containerd_state)
    servers = config["plugins"]
    assert servers["io.containerd.server.v1.grpc"]["address"] == str(n.containerd_socket)
    assert servers["io.containerd.server.v1.ttrpc"]["address"].startswith(str(n.run))
    assert servers["io.containerd.internal.v1.opt"]["path"].startswith(str(n.base))
    assert config["imports"] == []
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]
    # REAL-NODE.md blocker 1: no CAP_SYS_RESOURCE here
    assert runtime["restrict_oom_score_adj"] is True
    assert runtime["netns_mounts_under_state_dir"] is True
    runc = runtime["containerd"]["runtimes"]["runc"]["options"]
    assert runc["Root"] == str(n.runc_root)
    assert runtime["cni"]["conf_dir"] == str(n.cni_conf_dir)
    images = config["plugins"]["io.containerd.cri.v1.images"]
    assert images["pinned_images"]["sandbox"].startswith("127.0.0.1:5000/pause@sha256:")
    assert images["registry"]["config_path"] == str(n.registry_hosts_dir)
    assert config["plugins"]["io.containerd.nri.v1.nri"]["disable"] is True


def test_kubelet_config(tmp_path: Path) -> None:
    n = nodecfg.node_of(tmp_path)
    c = nodecfg.kubelet_config(n, tmp_path / "ca.crt", tmp_path / "n.crt", tmp_path / "n.key")
    assert c["failCgroupV1"] is False
    assert c["cgroupRoot"] == n.cgroup
    assert c["address"] == n.node_ip
    assert c["readOnlyPort"] == 0
    assert c["authentication"]["anonymous"]["enabled"] is False
    assert c["authorization"]["mode"] == "Webhook"
    assert c["containerRuntimeEndpoint"] == f"unix://{n.containerd_socket}"
    assert c["podLogsDir"] == str(n.pod_logs)
    assert {"key": nodecfg.TAINT_KEY, "value": "true", "effect": "NoSchedule"} in c[
        "registerWithTaints"
    ]


def test_pods_address_the_bridge_and_keep_ipam_state_in_the_environment(tmp_path: Path) -> None:
    n = nodecfg.node_of(tmp_path)
    bridge = nodecfg.cni_config(n)["plugins"][0]
    assert bridge["type"] == "bridge"
    assert bridge["ipMasq"] is True
    assert bridge["ipam"]["dataDir"] == str(n.cni_data_dir)
    # never the range KWOK gives its fake pods
    assert not ipaddress.ip_network(nodecfg.POD_RANGE).overlaps(
        ipaddress.ip_network("10.244.0.0/16")
    )


def test_registry_named_by_loopback_is_pulled_through_the_veth() -> None:
    name, text = nodecfg.registry_hosts("127.0.0.1:5123", "10.250.0.5")
    assert name == "127.0.0.1:5123"
    hosts = tomllib.loads(text)
    assert hosts["server"] == "http://127.0.0.1:5123"
    assert hosts["host"]["http://10.250.0.5:5123"]["capabilities"] == ["pull", "resolve"]


def test_namespace_annotations_select_and_tolerate_the_real_node() -> None:
    a = nodecfg.namespace_annotations()
    assert a["scheduler.alpha.kubernetes.io/node-selector"] == "modelreg.dev/node=real"
    assert nodecfg.TAINT_KEY in a["scheduler.alpha.kubernetes.io/defaultTolerations"]


def test_sockets_have_short_paths_however_deep_the_environment_is(tmp_path: Path) -> None:
    """A Unix socket's path has at most 107 bytes; the kubelet makes some about 40 below
    its root directory (pod-resources/<random>), the environment's directory can be long."""
    n = nodecfg.node_of(tmp_path / ("x" * 120))
    assert len(str(n.containerd_socket) + ".ttrpc") < 60
    assert len(str(n.kubelet_root / "pod-resources" / "3175736950")) < 80
    argv = nodecfg.kubelet_argv("kubelet", n, tmp_path / "kubeconfig")
    assert f"--root-dir={n.kubelet_root}" in argv
