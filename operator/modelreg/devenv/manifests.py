"""Pure builders for the files and Kubernetes objects of the local environment."""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from modelreg.devenv.identities import DEMO_NAMESPACE, OPERATOR_NAMESPACE, PEOPLE
from modelreg.devenv.node import namespace_annotations as node_namespace_annotations

Manifest = dict[str, Any]

CLUSTER_NAME = "modelreg-dev"

# --- kubeconfig --------------------------------------------------------------------------


def kubeconfig(
    server: str,
    ca_pem: bytes,
    tokens: Mapping[str, str],
    users: Sequence[str],
    current: str,
) -> Manifest:
    """A kubeconfig with one context per user, named after the user."""
    ca = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {"name": CLUSTER_NAME, "cluster": {"server": server, "certificate-authority-data": ca}}
        ],
        "users": [{"name": u, "user": {"token": tokens[u]}} for u in users],
        "contexts": [
            {"name": u, "context": {"cluster": CLUSTER_NAME, "user": u, "namespace": "default"}}
            for u in users
        ],
        "current-context": current,
    }


# --- cluster bootstrap objects ----------------------------------------------------------

#: What the people of the demo namespace may do with modelreg's objects.
MODELREG_RESOURCES = ["registeredmodels", "modelversions", "modeldeployments"]
#: Who may write RegisteredModels there: the model's policy (who approves, gates, sources)
#: is only as strong as the RBAC on this kind.
MODEL_OWNERS_GROUP = "data-scientists"
WRITE = ["create", "update", "patch", "delete"]
READ = ["get", "list", "watch"]


def demo_namespace_objects(namespace: str = DEMO_NAMESPACE) -> list[Manifest]:
    """The ``ml-demo`` namespace and the RBAC that lets every non-admin person work in it.

    RBAC grants create/update/patch on ModelVersions and ModelDeployments to everyone in
    it, approvers and non-approvers alike: stopping a non-approver from approving is the
    admission webhook's job, and tests rely on RBAC *not* doing it. RegisteredModels hold
    the approval policy, so only their owners (group ``data-scientists``: dana) may write
    them; approvers may not rewrite the policy they judge by, nor eve make herself one.
    """
    people = [p.name for p in PEOPLE if p.name != "admin"]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "modelreg-dev-editor"},
        "rules": [
            {
                "apiGroups": ["modelreg.dev"],
                "resources": ["modelversions", "modeldeployments"],
                "verbs": READ + WRITE,
            },
            {"apiGroups": ["modelreg.dev"], "resources": ["registeredmodels"], "verbs": READ},
            {
                "apiGroups": ["modelreg.dev"],
                "resources": [f"{r}/status" for r in MODELREG_RESOURCES],
                "verbs": ["get"],
            },
        ],
    }
    owner_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "modelreg-dev-model-owner"},
        "rules": [
            {"apiGroups": ["modelreg.dev"], "resources": ["registeredmodels"], "verbs": WRITE}
        ],
    }
    binding_subjects = [
        {"kind": "User", "name": n, "apiGroup": "rbac.authorization.k8s.io"} for n in people
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"modelreg.dev/dev-env": "true"}},
        },
        role,
        owner_role,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "modelreg-dev-model-owners", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "modelreg-dev-model-owner",
            },
            "subjects": [
                {
                    "kind": "Group",
                    "name": MODEL_OWNERS_GROUP,
                    "apiGroup": "rbac.authorization.k8s.io",
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "modelreg-dev-editors", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "modelreg-dev-editor",
            },
            "subjects": binding_subjects,
        },
        {
            # Everyone may look at what runs in the demo namespace (pods, deployments, events).
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "modelreg-dev-viewers", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view",
            },
            "subjects": binding_subjects,
        },
    ]


def operator_namespace(name: str = OPERATOR_NAMESPACE) -> Manifest:
    """The operator's own namespace (MODELREG_NAMESPACE), where it keeps how far each
    model's version numbers went; no RoleBinding in it: nobody but the admin (and the
    operator, which runs as the admin here) may read or write it."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"modelreg.dev/dev-env": "true"}},
    }


FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def fake_node(name: str, cpu: str = "32", memory: str = "256Gi", pods: str = "250") -> Manifest:
    """A node that KWOK plays: it reports Ready and runs every pod scheduled to it."""
    resources = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"allocatable": resources, "capacity": resources},
    }


# --- KWOK stages: how fake pods behave --------------------------------------------------

#: Pods whose model image repository ends in one of these suffixes misbehave on purpose,
#: so rollout-failure tests can push a "bad release" that is otherwise a normal image.
UNREADY_SUFFIX = "-unready"
CRASHLOOP_SUFFIX = "-crashloop"


def image_behaviour_query(suffix: str) -> str:
    """A KWOK (gojq) selector key: true when any container image's repository ends in suffix.

    Matches ``host:5000/team/model-unready:tag`` and ``host/x/model-unready@sha256:...``.
    """
    # the suffix goes into a jq string literal as it is: keep it to characters that need no
    # escaping in either jq or the regular expression
    if not re.fullmatch(r"[a-z0-9-]+", suffix):
        raise ValueError(f"image suffix {suffix!r} must match [a-z0-9-]+")
    # repository = text after the last "/", before ":" or "@"
    pattern = f"(^|/)[^/:@]*{suffix}([:@]|$)"
    return f'[.spec.containers[].image | test("{pattern}")] | any'


def _with_selector(stage: Manifest, key: str, operator: str) -> Manifest:
    stage = copy.deepcopy(stage)
    exprs = stage["spec"].setdefault("selector", {}).setdefault("matchExpressions", [])
    exprs.append({"key": key, "operator": operator, "values": ["true"]})
    return stage


def pod_stages(upstream_pod_ready: Manifest, others: Sequence[Manifest]) -> list[Manifest]:
    """KWOK's pod stages, plus two for the failure images.

    ``upstream_pod_ready`` is KWOK's own ``pod-ready`` stage (read from the KWOK module of
    the pinned version). It is kept, but no longer matches failure images; those get
    ``modelreg-pod-unready`` (running, never Ready) or ``modelreg-pod-crashloop`` (model
    container in CrashLoopBackOff after 5 restarts).
    """
    unready, crash = image_behaviour_query(UNREADY_SUFFIX), image_behaviour_query(CRASHLOOP_SUFFIX)
    ready = _with_selector(_with_selector(upstream_pod_ready, unready, "NotIn"), crash, "NotIn")
    pending: list[dict[str, Any]] = [
        {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
        {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
    ]
    return [
        ready,
        *others,
        pod_stage(
            "modelreg-pod-unready",
            [*pending, {"key": unready, "operator": "In", "values": ["true"]}],
            _UNREADY_STATUS,
        ),
        pod_stage(
            "modelreg-pod-crashloop",
            [*pending, {"key": crash, "operator": "In", "values": ["true"]}],
            _CRASHLOOP_STATUS,
        ),
    ]


def pod_stage(
    name: str, expressions: list[dict[str, Any]], status_template: str, weight: int = 0
) -> Manifest:
    """A KWOK Stage for pods matching ``expressions``. Tests add their own at runtime with
    a ``weight`` above 0, so that KWOK picks them over the default stages."""
    spec: Manifest = {
        "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
        "selector": {"matchExpressions": expressions},
        "next": {"statusTemplate": status_template},
    }
    if weight:
        spec["weight"] = weight
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": spec,
    }


# Init containers (the storage initializer) complete; the model container then misbehaves.
_INIT_DONE = """
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
{{ with NodeIPWith .spec.nodeName }}
hostIP: {{ . | Quote }}
{{ end }}
{{ with PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" )
     ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
podIP: {{ . | Quote }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""

_NOT_READY_CONDITIONS = """{{ $now := Now }}
conditions:
- {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: PodScheduled, status: "True", lastTransitionTime: {{ $now | Quote }}}
- type: Ready
  status: "False"
  reason: ContainersNotReady
  lastTransitionTime: {{ $now | Quote }}
- type: ContainersReady
  status: "False"
  reason: ContainersNotReady
  lastTransitionTime: {{ $now | Quote }}
"""


def _not_ready_status(container_state: str) -> str:
    """A KWOK status template: init containers done, every model container not ready."""
    return (
        _NOT_READY_CONDITIONS
        + """containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
"""
        + container_state
        + "{{ end }}\n"
        + _INIT_DONE
    )


_UNREADY_STATUS = _not_ready_status(
    """  started: true
  restartCount: 0
  state:
    running: {startedAt: {{ $now | Quote }}}
"""
)

_CRASHLOOP_STATUS = _not_ready_status(
    """  started: false
  restartCount: 5
  lastState:
    terminated:
      exitCode: 1
      reason: Error
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
  state:
    waiting: {reason: CrashLoopBackOff, message: "back-off restarting failed container"}
"""
)


# --- OCI registry ------------------------------------------------------------------------


def registry_config(port: int, storage: str, htpasswd: str | None = None) -> Manifest:
    """A CNCF distribution registry config: filesystem storage, optional htpasswd auth."""
    config: Manifest = {
        "version": "0.1",
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": storage},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
        },
        "http": {"addr": f"127.0.0.1:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "modelreg-dev", "path": htpasswd}}
    return config


#: the Secret a ModelDeployment's ``storage.secretRef`` names in a real-node namespace
MODEL_STORE_SECRET = "model-store"  # noqa: S105 (a name, not a secret)


def real_node_namespace_objects(
    namespace: str, s3_endpoint: str, access_key: str, secret_key: str, region: str
) -> list[Manifest]:
    """:func:`demo_namespace_objects`, with every pod on the real node (devenv/node.py)
    and the storage Secret its storage-initializers use.

    The Secret holds the S3 server's address as the real node reaches it (the gateway on
    the veth, not 127.0.0.1) and credentials. dana may name it in ``storage.secretRef``
    (``get`` on it alone: modelreg's webhook checks that she may use what she names); the
    people who may only view the namespace never read it.
    """
    objects = demo_namespace_objects(namespace)
    for o in objects:
        if o["kind"] == "Namespace":
            o["metadata"]["annotations"] = node_namespace_annotations()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": MODEL_STORE_SECRET, "namespace": namespace},
        "type": "Opaque",
        "stringData": {
            "MODELREG_S3_ENDPOINT": s3_endpoint,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_DEFAULT_REGION": region,
        },
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "model-store-user", "namespace": namespace},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": [MODEL_STORE_SECRET],
                "verbs": ["get"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "model-store-users", "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "model-store-user",
        },
        "subjects": [
            {"kind": "Group", "name": MODEL_OWNERS_GROUP, "apiGroup": "rbac.authorization.k8s.io"}
        ],
    }
    return [*objects, secret, role, binding]
