"""The processes of the local environment and how each is started (pure argv builders)."""

from __future__ import annotations

import base64
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from modelreg.devenv import host, identities
from modelreg.devenv import node as nodecfg
from modelreg.devenv.layout import Layout, Ports
from modelreg.devenv.node import Node
from modelreg.devenv.tools import Tools

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
S3_BUCKET = "models"
S3_KMS_KEY = "modelreg-dev"
S3_REGION = "us-east-1"


@dataclass(frozen=True)
class Component:
    """One long-running process: how to start it and where it writes."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def etcd(tools: Tools, layout: Layout, ports: Ports) -> Component:
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    client = f"http://127.0.0.1:{ports.etcd}"
    return Component(
        "etcd",
        [
            tools["etcd"],
            "--name=modelreg-dev",
            f"--data-dir={layout.data / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=modelreg-dev={peer}",
            "--listen-metrics-urls=",
            # a throwaway dev/test cluster: durability is not worth an fsync per write
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
    )


def apiserver(tools: Tools, layout: Layout, ports: Ports) -> Component:
    pki = layout.pki
    return Component(
        "kube-apiserver",
        [
            tools["kube-apiserver"],
            f"--etcd-servers=http://127.0.0.1:{ports.etcd}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports.apiserver}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            # Node: the real node's kubelet may touch only its own node and pods
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            # no service proxy: nothing may answer at the advertise address
            "--endpoint-reconciler-type=none",
            # PodNodeSelector and PodTolerationRestriction: a namespace's annotations send
            # its pods to the real node (devenv/node.py)
            "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
            "DefaultStorageClass,ResourceQuota,NodeRestriction,PodNodeSelector,"
            "PodTolerationRestriction,MutatingAdmissionWebhook,"
            "ValidatingAdmissionWebhook,ValidatingAdmissionPolicy",
            # the real node: reached by its address (its name is not in any DNS), its
            # serving certificate checked, the API server known to it by a client cert
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            f"--kubelet-client-certificate={pki / 'kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'kubelet-client.key'}",
            "--profiling=false",
            "--v=1",
        ],
    )


def controller_manager(tools: Tools, layout: Layout, ports: Ports) -> Component:
    pki = layout.pki
    return Component(
        "kube-controller-manager",
        [
            tools["kube-controller-manager"],
            f"--kubeconfig={layout.internal_kubeconfig('kube-controller-manager')}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--v=1",
        ],
    )


def scheduler(tools: Tools, layout: Layout, ports: Ports) -> Component:
    return Component(
        "kube-scheduler",
        [
            tools["kube-scheduler"],
            f"--kubeconfig={layout.internal_kubeconfig('kube-scheduler')}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            "--v=1",
        ],
    )


def kwok(tools: Tools, layout: Layout, ports: Ports) -> Component:
    return Component(
        "kwok",
        [
            tools["kwok"],
            f"--kubeconfig={layout.internal_kubeconfig('kwok')}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address=127.0.0.1:{ports.kwok}",
            "--node-ip=10.0.0.1",
            f"--cidr={POD_CIDR}",
            # stages come from Stage objects, so tests can add their own at runtime
            "--enable-crds=Stage",
            # KWOK renews node leases (the heartbeat-with-lease stage expects them); without
            # them the node lifecycle controller marks every pod NotReady after ~40 s
            "--node-lease-duration-seconds=40",
            "--v=INFO",
        ],
        env={"HOME": str(layout.data / "kwok")},
    )


def minio(tools: Tools, layout: Layout, ports: Ports, user: str, password: str) -> Component:
    return Component(
        "minio",
        [
            tools["minio"],
            "server",
            f"--address=127.0.0.1:{ports.s3}",
            f"--console-address=127.0.0.1:{ports.s3_console}",
            "--quiet",
            str(layout.data / "minio"),
        ],
        env={
            "MINIO_ROOT_USER": user,
            "MINIO_ROOT_PASSWORD": password,
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER": "off",
            "MINIO_REGION": S3_REGION,
            # a built-in KMS key, so objects can be stored with SSE-S3 / SSE-KMS (the
            # security policy's requiredArtifactEncryption is tested against it)
            "MINIO_KMS_SECRET_KEY": f"{S3_KMS_KEY}:"
            + base64.b64encode(hashlib.sha256(password.encode()).digest()).decode(),
            "HOME": str(layout.data / "minio-home"),
        },
    )


#: the addresses of the local environment's own servers
LOOPBACK = "127.0.0.0/8,::1/128"


def operator(layout: Layout, ports: Ports, env: dict[str, str]) -> Component:
    """The modelreg operator from this checkout, webhooks served on 127.0.0.1."""
    pki = layout.pki
    return Component(
        "operator",
        [
            sys.executable,
            "-m",
            "modelreg",
            "run",
            f"--liveness=http://127.0.0.1:{ports.operator_health}/healthz",
            f"--metrics=127.0.0.1:{ports.operator_metrics}",
        ],
        env={
            # as in the image (Dockerfile): glibc's per-thread malloc arenas make a
            # threaded Python process keep far more memory than it uses
            "MALLOC_ARENA_MAX": "2",
            **env,
            # its S3 server and registries are on loopback: allowed explicitly (never
            # by default: verify/egress.py)
            "MODELREG_ALLOWED_ADDRESSES": LOOPBACK,
            # one person's environment: every namespace may use every source (the chart
            # allows none until an admin lists them: sources.allowed)
            "MODELREG_ALLOWED_SOURCES": '{"*": {"artifacts": ["*"], "images": ["*"]}}',
            # where it keeps how far each model's version numbers went (marks.py)
            "MODELREG_NAMESPACE": identities.OPERATOR_NAMESPACE,
            "MODELREG_WEBHOOK_LISTEN": "127.0.0.1",
            "MODELREG_WEBHOOK_HOST": "127.0.0.1",
            "MODELREG_WEBHOOK_PORT": str(ports.webhook),
            "MODELREG_WEBHOOK_CERT_FILE": str(pki / "webhook.crt"),
            "MODELREG_WEBHOOK_KEY_FILE": str(pki / "webhook.key"),
            "MODELREG_WEBHOOK_CA_FILE": str(pki / "ca.crt"),
        },
    )


def registry(tools: Tools, layout: Layout, name: str) -> Component:
    return Component(name, [tools["registry"], "serve", str(layout.root / f"{name}.yml")])


# --- the real node (devenv/node.py) --------------------------------------------------------


def gateway_ports(ports: Ports) -> list[int]:
    """What the real node reaches on the host: the API server, S3 and the registries."""
    return [ports.apiserver, ports.s3, ports.registry, ports.private_registry]


def node_gateway(node: Node, ports: Ports) -> Component:
    """The forwarder on the veth's host end to the servers the node needs (gateway.py)."""
    argv = [sys.executable, "-m", "modelreg.devenv.gateway", f"--listen={node.host_ip}"]
    argv += [f"--port={p}" for p in gateway_ports(ports)]
    return Component("node-gateway", argv)


def containerd(tools: Tools, node: Node) -> Component:
    """containerd in the node's network namespace; its shims are found next to it."""
    return Component(
        "containerd",
        host.in_netns(
            node, [tools["containerd"], f"--config={node.config_dir / 'containerd.toml'}"]
        ),
        env={"PATH": f"{Path(tools['containerd']).parent}:/usr/sbin:/usr/bin:/sbin:/bin"},
    )


def kubelet(tools: Tools, node: Node, kubeconfig: Path) -> Component:
    return Component(
        "kubelet",
        host.in_netns(node, nodecfg.kubelet_argv(tools["kubelet"], node, kubeconfig)),
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
