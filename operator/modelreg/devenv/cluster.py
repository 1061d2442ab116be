"""``modelreg dev up|down|status``: the local cluster, S3 server and registries on 127.0.0.1.

Everything runs as the current user from binaries built by ``hack/build-tools.sh``:
etcd, kube-apiserver (TLS, RBAC, static-token users, admission webhooks),
kube-controller-manager, kube-scheduler, KWOK (fake nodes and kubelets), MinIO and two
CNCF distribution registries (anonymous and htpasswd-protected), and one real node
(kubelet, containerd, runc, CNI) in a network namespace of its own (devenv/node.py;
``real_node=False`` leaves it out). State lives in one directory (``.dev/``); ``up`` is
idempotent and recovers from a crash, ``down`` stops every process it started and
removes everything the real node made on the host.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shlex
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import yaml

from modelreg import pki
from modelreg.devenv import components, host, identities, images, manifests, process
from modelreg.devenv import node as nodecfg
from modelreg.devenv.components import Component
from modelreg.devenv.layout import PORT_NAMES, Layout, Ports
from modelreg.devenv.tools import Tools, ensure_tools, source_dir

Log = Callable[[str], None]

FAKE_NODES = ("kwok-node-0", "kwok-node-1")
#: The cluster itself (left out under kind, where the tests bring their own).
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
#: Start order; ``down`` stops in reverse.
ORDER = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "minio",
    "registry",
    "private-registry",
    "node-gateway",
    "containerd",
    "kubelet",
    "operator",
)
#: The real node (left out by ``--no-real-node``, and under kind).
REAL_NODE = ("node-gateway", "containerd", "kubelet")


class DevEnvError(RuntimeError):
    """The environment could not be started; the message names the log to read."""


@dataclass(frozen=True)
class Secrets:
    """Credentials generated once per environment and kept in ``pki/secrets.json``."""

    tokens: dict[str, str]
    s3_access_key: str
    s3_secret_key: str
    registry_user: str
    registry_password: str
    #: the operator's key for signing the approval record (modelreg.record)
    record_key: str

    @classmethod
    def load_or_create(cls, layout: Layout) -> Secrets:
        path = layout.pki / "secrets.json"
        fresh: dict[str, Any] = {
            "tokens": identities.new_tokens(),
            "s3_access_key": "modelreg-" + secrets.token_hex(4),
            "s3_secret_key": secrets.token_urlsafe(24),
            "registry_user": "modelreg",
            "registry_password": secrets.token_urlsafe(18),
            "record_key": secrets.token_urlsafe(32),
        }
        saved = json.loads(path.read_text()) if path.exists() else {}
        # keep what exists (data directories depend on it); add what newer versions need
        values = {**fresh, **{k: v for k, v in saved.items() if k in fresh}}
        values["tokens"] = {**fresh["tokens"], **saved.get("tokens", {})}
        if values != saved:
            _write_private(path, json.dumps(values, indent=2))
        return cls(**values)


@dataclass(frozen=True)
class Environment:
    """A configured (not necessarily running) environment."""

    layout: Layout
    ports: Ports
    tools: Tools
    secrets: Secrets

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports.s3}"

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.ports.registry}"

    @property
    def private_registry(self) -> str:
        return f"127.0.0.1:{self.ports.private_registry}"

    @property
    def node(self) -> nodecfg.Node:
        return nodecfg.node_of(self.layout.root)

    @property
    def node_s3_endpoint(self) -> str:
        """The S3 server as pods on the real node reach it (the gateway on the veth)."""
        return f"http://{self.node.host_ip}:{self.ports.s3}"

    def env_vars(self) -> dict[str, str]:
        """What ``.dev/env.sh`` exports."""
        return {
            "KUBECONFIG": str(self.layout.kubeconfig),
            "MODELREG_S3_ENDPOINT": self.s3_endpoint,
            "MODELREG_S3_BUCKET": components.S3_BUCKET,
            "AWS_ACCESS_KEY_ID": self.secrets.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.secrets.s3_secret_key,
            "AWS_DEFAULT_REGION": components.S3_REGION,
            "MODELREG_REGISTRY": self.registry,
            "MODELREG_PRIVATE_REGISTRY": self.private_registry,
            "MODELREG_PRIVATE_REGISTRY_USERNAME": self.secrets.registry_user,
            "MODELREG_PRIVATE_REGISTRY_PASSWORD": self.secrets.registry_password,
            "MODELREG_DEV_DIR": str(self.layout.root),
            # what a storage Secret gives pods on the real node (not 127.0.0.1: that is
            # the pod's own loopback there)
            "MODELREG_NODE_S3_ENDPOINT": self.node_s3_endpoint,
            # the images made for the real node (hack/build-images.sh), by digest
            **{
                f"MODELREG_{name.upper()}_IMAGE": ref
                for name, ref in self.layout.load_images().items()
            },
            # kubectl's discovery cache per environment: one in ~/.kube/cache, filled before
            # the CRDs were applied, would hide them for minutes
            "KUBECACHEDIR": str(self.layout.root / "kube-cache"),
        }

    def component(self, name: str) -> Component:
        t, lay, p = self.tools, self.layout, self.ports
        match name:
            case "etcd":
                return components.etcd(t, lay, p)
            case "kube-apiserver":
                return components.apiserver(t, lay, p)
            case "kube-controller-manager":
                return components.controller_manager(t, lay, p)
            case "kube-scheduler":
                return components.scheduler(t, lay, p)
            case "kwok":
                return components.kwok(t, lay, p)
            case "minio":
                s = self.secrets
                return components.minio(t, lay, p, s.s3_access_key, s.s3_secret_key)
            case "registry" | "private-registry":
                return components.registry(t, lay, name)
            case "operator":
                env = {**self.env_vars(), "MODELREG_RECORD_KEY": self.secrets.record_key}
                if modelreg_image := lay.load_images().get("modelreg"):
                    # model pods on the real node run this checkout's storage-initializer
                    env["MODELREG_STORAGE_INITIALIZER_IMAGE"] = modelreg_image
                return components.operator(lay, p, env)
            case "node-gateway":
                return components.node_gateway(self.node, p)
            case "containerd":
                return components.containerd(t, self.node)
            case "kubelet":
                return components.kubelet(t, self.node, self.node.config_dir / "kubeconfig")
        raise KeyError(name)

    # --- health --------------------------------------------------------------------------

    def healthy(self, name: str) -> bool:
        """Whether the component answers its health endpoint (or, without one, runs)."""
        try:
            match name:
                case "etcd":
                    r = httpx.get(f"http://127.0.0.1:{self.ports.etcd}/health", timeout=2)
                    return r.status_code == 200 and r.json().get("health") == "true"
                case "kube-apiserver":
                    return self._api_get("/readyz").status_code == 200
                case "kwok":
                    r = httpx.get(f"http://127.0.0.1:{self.ports.kwok}/healthz", timeout=2)
                    return r.status_code == 200
                case "minio":
                    r = httpx.get(f"{self.s3_endpoint}/minio/health/live", timeout=2)
                    return r.status_code == 200
                case "registry":
                    return httpx.get(f"http://{self.registry}/v2/", timeout=2).status_code == 200
                case "operator":
                    url = f"http://127.0.0.1:{self.ports.operator_health}/healthz"
                    return httpx.get(url, timeout=2).status_code == 200
                case "private-registry":
                    # without credentials the registry must refuse
                    url = f"http://{self.private_registry}/v2/"
                    return httpx.get(url, timeout=2).status_code == 401
                case "node-gateway":
                    with socket.create_connection((self.node.host_ip, self.ports.s3), 2):
                        pass
                    return process.read_pidfile(self.layout.pidfile(name)) is not None
                case "containerd":
                    with socket.socket(socket.AF_UNIX) as s:
                        s.settimeout(2)
                        s.connect(str(self.node.containerd_socket))
                    return process.read_pidfile(self.layout.pidfile(name)) is not None
                case "kubelet":
                    return process.read_pidfile(self.layout.pidfile(name)) is not None and (
                        self.node_ready()
                    )
        except (httpx.HTTPError, ValueError, OSError):
            return False
        return process.read_pidfile(self.layout.pidfile(name)) is not None

    def node_ready(self) -> bool:
        """Whether the real node reports Ready to the API server."""
        r = self._api_get(f"/api/v1/nodes/{nodecfg.NODE_NAME}")
        if r.status_code != 200:
            return False
        conditions = r.json().get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _api_get(self, path: str) -> httpx.Response:
        return httpx.get(
            self.server + path,
            headers={"Authorization": f"Bearer {self.secrets.tokens['admin']}"},
            verify=ssl.create_default_context(cafile=self.layout.pki / "ca.crt"),
            timeout=5,
        )

    # --- kubectl as admin ----------------------------------------------------------------

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            [
                self.tools["kubectl"],
                f"--kubeconfig={self.layout.kubeconfig}",
                "--context=admin",
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise DevEnvError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def apply(self, objects: Iterable[dict[str, Any]]) -> None:
        """Server-side apply, owned by the field manager ``modelreg-dev``."""
        docs = list(objects)
        if docs:
            self.kubectl(
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=modelreg-dev",
                "-f",
                "-",
                stdin=yaml.safe_dump_all(docs, sort_keys=False),
            )


def _write_private(path: Path, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _running(layout: Layout) -> list[str]:
    return [n for n in ORDER if process.read_pidfile(layout.pidfile(n)) is not None]


def open_existing(root: Path) -> Environment | None:
    """The environment configured in ``root``, read-only; None if never configured."""
    layout = Layout(root.resolve())
    ports = layout.load_ports()
    if ports is None or not (layout.pki / "secrets.json").exists():
        return None
    return Environment(
        layout, ports, ensure_tools(build=False, quiet=True), Secrets.load_or_create(layout)
    )


def configure(root: Path, *, build: bool = True) -> Environment:
    """Prepare ``root``: tools, ports, credentials, certificates and config files."""
    layout = Layout(root.resolve())
    layout.ensure()
    tools = ensure_tools(build=build)
    ports = layout.load_ports()
    # nothing of ours runs, but another program took a saved port: pick new ones
    if (
        ports is not None
        and not _running(layout)
        and any(_port_busy(getattr(ports, n)) for n in PORT_NAMES)
    ):
        layout.state_file.unlink()
        ports = None
    ports = ports or layout.allocate_ports()
    env = Environment(layout, ports, tools, Secrets.load_or_create(layout))
    _write_pki(layout, env.node)
    _write_configs(env)
    return env


_API_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


def _issue_unless_valid(d: Path, name: str, common_name: str, names: tuple[str, ...]) -> None:
    """``d/name.crt`` and ``.key`` from the environment's CA, unless they already serve
    ``names`` (an older environment's certificate lacks the real node's addresses)."""
    ca = pki.KeyPair((d / "ca.crt").read_bytes(), (d / "ca.key").read_bytes())
    crt, key = d / f"{name}.crt", d / f"{name}.key"
    if crt.exists() and key.exists():
        pair = pki.KeyPair(crt.read_bytes(), key.read_bytes())
        margin = dt.timedelta(days=1)
        if pki.serves(pair, ca.cert_pem, names, dt.datetime.now(dt.UTC), margin):
            return
    dns, ips = pki.split_names(names)
    pair = pki.issue(ca, common_name, dns_names=dns, ip_addresses=ips)
    _write_private(key, pair.key_pem)
    crt.write_bytes(pair.cert_pem)


def _write_pki(layout: Layout, node: nodecfg.Node) -> None:
    d = layout.pki
    if not (d / "ca.crt").exists():
        ca = pki.new_ca("modelreg-dev-ca")
        _write_private(d / "ca.key", ca.key_pem)
        (d / "ca.crt").write_bytes(ca.cert_pem)
    # the real node reaches the API server at the veth's host end
    api_names = (*_API_NAMES, "127.0.0.1", "10.96.0.1", node.host_ip)
    _issue_unless_valid(d, "apiserver", "kube-apiserver", api_names)
    # the kubelet's serving certificate, checked by the API server (logs, exec)
    _issue_unless_valid(d, "node", f"system:node:{nodecfg.NODE_NAME}", (node.node_ip,))
    if not (d / "kubelet-client.crt").exists():
        ca = pki.KeyPair((d / "ca.crt").read_bytes(), (d / "ca.key").read_bytes())
        client = pki.issue(
            ca,
            "kube-apiserver-kubelet-client",
            organizations=("system:masters",),
            server=False,
            client=True,
        )
        _write_private(d / "kubelet-client.key", client.key_pem)
        (d / "kubelet-client.crt").write_bytes(client.cert_pem)
    if not (d / "webhook.crt").exists():
        ca = pki.KeyPair((d / "ca.crt").read_bytes(), (d / "ca.key").read_bytes())
        webhook = pki.issue(
            ca, "modelreg-webhook", ip_addresses=("127.0.0.1",), dns_names=("localhost",)
        )
        _write_private(d / "webhook.key", webhook.key_pem)
        (d / "webhook.crt").write_bytes(webhook.cert_pem)
    if not (d / "sa.key").exists():
        sa = pki.new_service_account_keys()
        _write_private(d / "sa.key", sa.key_pem)
        (d / "sa.pub").write_bytes(sa.cert_pem)


def _write_configs(env: Environment) -> None:
    lay, s = env.layout, env.secrets
    ca = (lay.pki / "ca.crt").read_bytes()
    _write_private(lay.pki / "tokens.csv", identities.token_file(s.tokens))
    people = [p.name for p in identities.PEOPLE]
    _write_private(
        lay.kubeconfig,
        yaml.safe_dump(manifests.kubeconfig(env.server, ca, s.tokens, people, "admin")),
    )
    for component, user in (
        ("kube-controller-manager", "system:kube-controller-manager"),
        ("kube-scheduler", "system:kube-scheduler"),
        ("kwok", "system:kwok"),
    ):
        config = manifests.kubeconfig(env.server, ca, s.tokens, [user], user)
        _write_private(lay.internal_kubeconfig(component), yaml.safe_dump(config))
    htpasswd = lay.pki / "registry.htpasswd"
    hashed = bcrypt.hashpw(s.registry_password.encode(), bcrypt.gensalt(rounds=8)).decode()
    _write_private(htpasswd, f"{s.registry_user}:{hashed}\n")
    for name, port, auth in (
        ("registry", env.ports.registry, None),
        ("private-registry", env.ports.private_registry, str(htpasswd)),
    ):
        storage = lay.data / name
        storage.mkdir(exist_ok=True)
        (lay.root / f"{name}.yml").write_text(
            yaml.safe_dump(manifests.registry_config(port, str(storage), auth))
        )
    _write_env_sh(env)


def _write_env_sh(env: Environment) -> None:
    lay = env.layout
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.env_vars().items())
    _write_private(
        lay.env_sh,
        "# modelreg local environment: source me (`. .dev/env.sh`)\n"
        + exports
        + f'export PATH={shlex.quote(env.tools.bin_path)}:"$PATH"\n',
    )


# --- up ----------------------------------------------------------------------------------


def _wait(what: str, check: Callable[[], bool], timeout: float, log_file: Path | None) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    hint = f"; see {log_file}" if log_file else ""
    raise DevEnvError(f"timed out after {timeout:.0f}s waiting for {what}{hint}")


def _ensure_started(env: Environment, name: str, log: Log, timeout: float = 60) -> None:
    lay = env.layout
    if process.read_pidfile(lay.pidfile(name)) is not None:
        if env.healthy(name):
            log(f"  {name}: already running")
            return
        _wait(f"{name} to become healthy", lambda: env.healthy(name), 15, lay.log(name))
        log(f"  {name}: already running")
        return
    c = env.component(name)
    started = time.monotonic()
    running = process.start(
        c.argv, pidfile=lay.pidfile(name), log=lay.log(name), env=c.env, cwd=lay.root
    )

    def ready() -> bool:
        if process.read_pidfile(lay.pidfile(name)) is None:
            raise DevEnvError(f"{name} exited while starting; see {lay.log(name)}")
        return env.healthy(name)

    _wait(f"{name} to become healthy", ready, timeout, lay.log(name))
    log(f"  {name}: started (pid {running.pid}, {time.monotonic() - started:.1f}s)")


def up(
    root: Path,
    *,
    log: Log = print,
    build: bool = True,
    control_plane: bool = True,
    operator: bool = True,
    real_node: bool = True,
) -> Environment:
    """Start (or finish starting) the environment in ``root``; safe to run again.

    ``control_plane=False`` starts only the S3 server and the registries (for tests that
    bring their own cluster, such as kind). ``operator=False`` leaves out the operator
    (for tests that run their own); otherwise it starts last, with modelreg's CRDs.
    ``real_node=False`` leaves out the real node (a machine that cannot run one: the
    error of a failed start-up check says what it lacks).
    """
    env = configure(root, build=build)
    log(f"modelreg dev environment in {env.layout.root}")
    # what is left out on purpose: `dev status` shows it "disabled", not "stopped"
    disabled = set() if control_plane else {*CONTROL_PLANE, *REAL_NODE, "operator"}
    if not operator:
        disabled.add("operator")
    if not real_node:
        disabled.update(REAL_NODE)
    if control_plane and real_node and (problems := host.preflight()):
        raise DevEnvError(
            "this machine cannot run the real node: "
            + "; ".join(problems)
            + " (start without it: `modelreg dev up --no-real-node`; the tests that need "
            "it are then skipped, saying why)"
        )
    env.layout.save_disabled(disabled)
    if control_plane:
        _start_control_plane(env, log, real_node)
    _ensure_started(env, "minio", log)
    _ensure_bucket(env)
    _ensure_started(env, "registry", log)
    _ensure_started(env, "private-registry", log)
    if control_plane and real_node:
        _start_real_node(env, log, build)
    elif control_plane:
        _stop_real_node(env, log)
    if control_plane:
        _apply_crds(env)
        if operator:
            _ensure_started(env, "operator", log)
            _wait(
                "the operator's admission webhooks to be registered",
                lambda: webhooks_registered(env),
                60,
                env.layout.log("operator"),
            )
        else:
            process.stop(env.layout.pidfile("operator"))
    people = ", ".join(p.name for p in identities.PEOPLE)
    log(f"ready: . {env.layout.env_sh}  (kubectl contexts: {people})")
    return env


#: The admission webhook configuration the operator (kopf) manages.
WEBHOOK_CONFIGURATION = "modelreg.dev"


def webhooks_registered(env: Environment) -> bool:
    """Whether the operator's webhook configurations (mutating and validating) call this
    environment's webhook port.

    The configurations outlive the operator in etcd: one from an earlier run, with
    another port, must not count as registered.
    """
    prefix = f"https://127.0.0.1:{env.ports.webhook}/"
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        out = env.kubectl("get", kind, WEBHOOK_CONFIGURATION, "-o", "json", check=False)
        try:
            webhooks = json.loads(out).get("webhooks") or []
            urls = [w["clientConfig"]["url"] for w in webhooks]
        except (ValueError, KeyError, TypeError, AttributeError):
            return False
        if not urls or not all(u.startswith(prefix) for u in urls):
            return False
    return True


def _start_real_node(env: Environment, log: Log, build: bool = True) -> None:
    """The real node: its network and cgroup, its files, the pause image, then the
    gateway, containerd and the kubelet; done when the node is Ready."""
    node = env.node
    host.ensure_network(node)
    host.ensure_pod_egress(node, nodecfg.POD_RANGE, components.gateway_ports(env.ports))
    host.ensure_cgroup(node)
    _write_node_configs(env)
    _ensure_started(env, "node-gateway", log)
    _ensure_started(env, "containerd", log)
    _ensure_started(env, "kubelet", log, timeout=90)
    started = time.monotonic()
    refs = {
        name: images.push_built(env.tools["crane"], env.registry, name, directory)
        for name, directory in images.built(build=build).items()
    }
    if refs != env.layout.load_images():
        env.layout.save_images(refs)
        _write_env_sh(env)
        # the operator must start again to use a new storage-initializer image
        process.stop(env.layout.pidfile("operator"))
    log(f"  images: {', '.join(refs)} ({time.monotonic() - started:.1f}s)")


def _stop_real_node(env: Environment, log: Log) -> None:
    for name in reversed(REAL_NODE):
        if process.stop(env.layout.pidfile(name)):
            log(f"  {name}: stopped")
    if env.layout.load_images():
        env.layout.save_images({})
        _write_env_sh(env)
        process.stop(env.layout.pidfile("operator"))
    for what in host.teardown(env.node):
        log(f"  removed {what}")


def _write_node_configs(env: Environment) -> None:
    node, lay = env.node, env.layout
    pause_program = Path(env.tools["pause"])
    for d in (
        node.config_dir,
        node.kubelet_dir,
        node.pod_logs,
        node.containerd_root,
        node.cni_conf_dir,
        node.cni_data_dir,
        node.run,
    ):
        d.mkdir(parents=True, exist_ok=True)
    if not node.kubelet_root.is_symlink():
        node.kubelet_root.symlink_to(node.kubelet_dir)
    ca = (lay.pki / "ca.crt").read_bytes()
    user = f"system:node:{nodecfg.NODE_NAME}"
    server = f"https://{node.host_ip}:{env.ports.apiserver}"
    kubeconfig = manifests.kubeconfig(server, ca, env.secrets.tokens, [user], user)
    _write_private(node.config_dir / "kubeconfig", yaml.safe_dump(kubeconfig))
    kubelet = nodecfg.kubelet_config(
        node, lay.pki / "ca.crt", lay.pki / "node.crt", lay.pki / "node.key"
    )
    (node.config_dir / "kubelet.yaml").write_text(yaml.safe_dump(kubelet, sort_keys=False))
    (node.config_dir / "containerd.toml").write_text(
        nodecfg.containerd_config(
            node, images.ensure(env.tools["crane"], env.registry, images.pause(pause_program))
        )
    )
    (node.cni_conf_dir / "10-modelreg.conflist").write_text(
        json.dumps(nodecfg.cni_config(node), indent=2)
    )
    for registry in (env.registry, env.private_registry):
        name, text = nodecfg.registry_hosts(registry, node.host_ip)
        (node.registry_hosts_dir / name).mkdir(parents=True, exist_ok=True)
        (node.registry_hosts_dir / name / "hosts.toml").write_text(text)


def _start_control_plane(env: Environment, log: Log, real_node: bool) -> None:
    _ensure_started(env, "etcd", log)
    _ensure_started(env, "kube-apiserver", log, timeout=120)
    _bootstrap_api(env, real_node)
    for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
        _ensure_started(env, name, log)
    _wait_for_nodes(env)

    # the controller-manager creates service accounts: pods can be created from here on
    def has_default_sa() -> bool:
        out = env.kubectl(
            "get", "serviceaccount", "-n", identities.DEMO_NAMESPACE, "-o", "name", check=False
        )
        return "serviceaccount/default" in out

    _wait(
        "the default service account in ml-demo",
        has_default_sa,
        60,
        env.layout.log("kube-controller-manager"),
    )


def _bootstrap_api(env: Environment, real_node: bool) -> None:
    """Objects the cluster needs before KWOK starts: Stage CRD and stages, nodes, RBAC."""
    m = env.tools.kwok_manifests
    _apply_crd_files(env, [m / "kwok.x-k8s.io_stages.yaml"])

    def load(name: str) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load((m / name).read_text())
        return doc

    stages = [load("node-initialize.yaml"), load("node-heartbeat-with-lease.yaml")]
    stages += manifests.pod_stages(
        load("pod-ready.yaml"), [load("pod-complete.yaml"), load("pod-delete.yaml")]
    )
    env.apply(stages)
    env.apply(manifests.fake_node(n) for n in FAKE_NODES)
    if real_node:
        # the Quick start's pods run for real: on the real node, with a storage Secret
        s = env.secrets
        env.apply(
            manifests.real_node_namespace_objects(
                identities.DEMO_NAMESPACE,
                env.node_s3_endpoint,
                s.s3_access_key,
                s.s3_secret_key,
                components.S3_REGION,
            )
        )
    else:
        env.apply(manifests.demo_namespace_objects())
    env.apply([manifests.operator_namespace()])


def _apply_crd_files(env: Environment, files: list[Path]) -> None:
    """Apply CustomResourceDefinition manifests and wait for them to be Established."""
    env.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=modelreg-dev",
        *[f"--filename={f}" for f in files],
    )
    names = [
        f"crd/{doc['metadata']['name']}"
        for f in files
        for doc in yaml.safe_load_all(f.read_text())
        if doc
    ]
    env.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)


def _apply_crds(env: Environment) -> None:
    _apply_crd_files(env, sorted((source_dir() / "crds").glob("*.yaml")))


def _wait_for_nodes(env: Environment) -> None:
    def ready() -> bool:
        out = env.kubectl("get", "nodes", "-o", "json", check=False)
        try:
            items = json.loads(out)["items"]
        except (ValueError, KeyError):
            return False
        ready = {
            n["metadata"]["name"]
            for n in items
            for c in n.get("status", {}).get("conditions", [])
            if c["type"] == "Ready" and c["status"] == "True"
        }
        return set(FAKE_NODES) <= ready

    _wait("KWOK's fake nodes to become Ready", ready, 60, env.layout.log("kwok"))


def _ensure_bucket(env: Environment) -> None:
    from modelreg.devenv.s3 import ensure_bucket

    ensure_bucket(
        env.s3_endpoint,
        env.secrets.s3_access_key,
        env.secrets.s3_secret_key,
        components.S3_BUCKET,
        components.S3_REGION,
    )


# --- down and status ---------------------------------------------------------------------


def down(root: Path, *, log: Log = print) -> list[str]:
    """Stop every process of the environment in ``root`` (in reverse start order)."""
    layout = Layout(root.resolve())
    stopped = []
    for name in reversed(ORDER):
        if process.stop(layout.pidfile(name)):
            stopped.append(name)
            log(f"  {name}: stopped")
        if name == "containerd":
            # the kubelet and containerd are gone: now their pods, mounts, cgroups and
            # network (all of it found again by name, so also after a crash)
            for what in host.teardown(nodecfg.node_of(layout.root)):
                log(f"  removed {what}")
    return stopped


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    healthy: bool
    #: left out on purpose by the last ``up`` (``--no-operator``): not expected to run
    disabled: bool = False

    @property
    def ok(self) -> bool:
        """Healthy, or disabled and indeed not running."""
        return self.healthy or (self.disabled and self.pid is None)


def status(root: Path) -> list[ComponentStatus]:
    """What runs in the environment in ``root``, and whether it answers."""
    layout = Layout(root.resolve())
    env = open_existing(root)
    disabled = layout.load_disabled()
    result = []
    for name in ORDER:
        running = process.read_pidfile(layout.pidfile(name))
        healthy = running is not None and env is not None and env.healthy(name)
        result.append(
            ComponentStatus(name, running.pid if running else None, healthy, name in disabled)
        )
    return result
