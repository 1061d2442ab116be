"""Pure builders of the workloads a ModelDeployment owns (a Deployment and a Service)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from modelreg import __version__
from modelreg.api.model_deployment import ModelDeploymentSpec, Probe, Probes, Protocol

MODEL_DIR = "/mnt/models"
#: the model container's own shared memory (spec.sharedMemory), not a temporary file
SHM_PATH = "/dev/shm"  # noqa: S108
MANAGED_BY = {"app.kubernetes.io/managed-by": "modelreg"}

#: the init container that fetches the artifact and checks its sha256
STORAGE_INITIALIZER = "storage-initializer"


@dataclass(frozen=True)
class Serving:
    """What to serve: a deployable version, resolved."""

    name: str
    number: int
    image: str  # repository@sha256:...
    artifact_uri: str
    artifact_sha256: str | None
    #: the version's ``spec.image.pullSecrets``: the kubelet pulls the image with them
    pull_secrets: tuple[str, ...] = ()
    #: the S3 object version that was verified (versioned buckets)
    artifact_version_id: str | None = None


def storage_initializer_image() -> str:
    return os.environ.get(
        "MODELREG_STORAGE_INITIALIZER_IMAGE", f"ghcr.io/modelreg/modelreg:{__version__}"
    )


def _selector(name: str) -> dict[str, str]:
    return {"modelreg.dev/deployment": name}


_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def deployment(
    name: str,
    namespace: str,
    model: str,
    spec: ModelDeploymentSpec,
    serving: Serving,
    initializer_image: str,
) -> dict[str, Any]:
    """The apps/v1 Deployment serving ``serving`` (which must be deployable)."""
    labels = {**_selector(name), **MANAGED_BY, "modelreg.dev/model": model}
    pod_labels = {**labels, "modelreg.dev/version": str(serving.number)}
    env = [
        {"name": "MODEL_NAME", "value": model},
        {"name": "MODEL_VERSION", "value": str(serving.number) if serving else ""},
        {"name": "MODEL_PATH", "value": MODEL_DIR},
    ]
    env += [e.to_api() for e in spec.env]
    fetch = [
        "fetch-artifact",
        "--uri",
        serving.artifact_uri if serving else "",
        "--dest",
        MODEL_DIR,
    ]
    if serving is not None and serving.artifact_sha256:
        fetch += ["--sha256", serving.artifact_sha256]
    if serving is not None and serving.artifact_version_id:
        fetch += ["--version-id", serving.artifact_version_id]
    init: dict[str, Any] = {
        "name": STORAGE_INITIALIZER,
        "image": initializer_image,
        "args": fetch,
        "volumeMounts": [{"name": "model-store", "mountPath": MODEL_DIR}],
        "securityContext": {**_CONTAINER_SECURITY, "readOnlyRootFilesystem": True},
        "resources": INITIALIZER_RESOURCES,
    }
    if spec.storage_initializer.resources is not None:
        init["resources"] = {
            k: v for k, v in spec.storage_initializer.resources.to_api().items() if v
        }
    if spec.storage.secret_ref is not None:
        init["envFrom"] = [{"secretRef": {"name": spec.storage.secret_ref.name}}]
    container: dict[str, Any] = {
        "name": "model",
        "image": serving.image,
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "env": env,
        "volumeMounts": [{"name": "model-store", "mountPath": MODEL_DIR, "readOnly": True}],
        "securityContext": _CONTAINER_SECURITY,
    }
    resources = {k: v for k, v in spec.resources.to_api().items() if v}
    if resources:
        container["resources"] = resources
    container.update(probes(spec.protocol, spec.port, model, spec.probes))
    volumes: list[dict[str, Any]] = [{"name": "model-store", "emptyDir": {}}]
    if spec.shared_memory is not None:
        shm = {"medium": "Memory", "sizeLimit": spec.shared_memory.size_limit}
        volumes.append({"name": "dshm", "emptyDir": shm})
        container["volumeMounts"].append({"name": "dshm", "mountPath": SHM_PATH})
    pod_spec: dict[str, Any] = {
        "initContainers": [init],
        "containers": [container],
        "volumes": volumes,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": False,
    }
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod_spec["tolerations"] = [t.to_api() for t in spec.tolerations]
    if spec.termination_grace_period_seconds is not None:
        pod_spec["terminationGracePeriodSeconds"] = spec.termination_grace_period_seconds
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    if serving.pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in serving.pull_secrets]
    annotations = {"modelreg.dev/version-name": serving.name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": spec.replicas,
            "progressDeadlineSeconds": spec.rollout.progress_deadline_seconds,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": _selector(name)},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }


#: the storage-initializer's resources unless spec.storageInitializer.resources says
INITIALIZER_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}

#: a large model may take this long to load before liveness counts (startup probe)
STARTUP_SECONDS = 600


def probes(
    protocol: Protocol, port: int, model: str, explicit: Probes | None = None
) -> dict[str, Any]:
    """The model container's probes for a server speaking ``protocol`` on ``port``,
    each kind given in ``explicit`` (``spec.probes``) replacing the protocol's.

    Readiness decides whether a pod serves (and so whether a rollout succeeds); liveness
    restarts a server that stopped answering; the startup probe holds liveness off while
    the model loads (up to :data:`STARTUP_SECONDS`), so a big model is not killed for
    being slow and a small one is ready as soon as it is.
    """
    out = _protocol_probes(protocol, port, model)
    for kind, probe in (
        ("startupProbe", explicit and explicit.startup),
        ("readinessProbe", explicit and explicit.readiness),
        ("livenessProbe", explicit and explicit.liveness),
    ):
        if probe:
            out[kind] = _probe(probe, port)
    return out


def _probe(probe: Probe, port: int) -> dict[str, Any]:
    """A Kubernetes probe from ``spec.probes``; ports default to the model's."""
    out: dict[str, Any] = {}
    if probe.http_get is not None:
        h = probe.http_get
        out["httpGet"] = {"path": h.path, "port": h.port or port, "scheme": str(h.scheme)}
    elif probe.tcp_socket is not None:
        out["tcpSocket"] = {"port": probe.tcp_socket.port or port}
    elif probe.grpc is not None:
        out["grpc"] = {"port": probe.grpc.port or port}
        if probe.grpc.service is not None:
            out["grpc"]["service"] = probe.grpc.service
    for field, key in (
        ("initial_delay_seconds", "initialDelaySeconds"),
        ("period_seconds", "periodSeconds"),
        ("timeout_seconds", "timeoutSeconds"),
        ("failure_threshold", "failureThreshold"),
    ):
        value = getattr(probe, field)
        if value is not None:
            out[key] = value
    return out


def _protocol_probes(protocol: Protocol, port: int, model: str) -> dict[str, Any]:
    if protocol is Protocol.NONE:
        return {}
    if protocol is Protocol.V2:
        ready, live = "/v2/health/ready", "/v2/health/live"
        liveness: dict[str, Any] = {"httpGet": {"path": live, "port": port}}
    else:
        ready = f"/v1/models/{model}"
        # a v1 server has no liveness endpoint of its own: that it accepts connections
        liveness = {"tcpSocket": {"port": port}}
    # probed every second while it starts and for readiness: a probe's period is a
    # delay added to every rollout (Kubernetes' minimum, and cheap for these endpoints)
    period = 1
    return {
        "startupProbe": {
            **liveness,
            "periodSeconds": period,
            "failureThreshold": STARTUP_SECONDS // period,
            "timeoutSeconds": 1,
        },
        "readinessProbe": {
            "httpGet": {"path": ready, "port": port},
            "periodSeconds": period,
            "failureThreshold": 3,
            "timeoutSeconds": 1,
        },
        "livenessProbe": {
            **liveness,
            "periodSeconds": 10,
            "failureThreshold": 3,
            "timeoutSeconds": 5,
        },
    }


#: what the operator writes workloads as (kube.FIELD_MANAGER)
FIELD_MANAGER = "modelreg"


def hand_edited(workload: dict[str, Any]) -> bool:
    """Whether a Deployment's spec may hold more than modelreg applied: someone else (a
    person's kubectl, another controller) owns a field of it, or modelreg's own record of
    the fields it applied is gone (managedFields reset). The scale and status
    subresources do not count: apply resets replicas, and status is not spec."""
    entries = workload.get("metadata", {}).get("managedFields") or []
    ours = False
    for e in entries:
        if e.get("subresource"):
            continue
        if e.get("manager") == FIELD_MANAGER:
            ours = ours or e.get("operation") == "Apply"
        elif "f:spec" in (e.get("fieldsV1") or {}):
            return True
    return not ours


def service(name: str, namespace: str, model: str, spec: ModelDeploymentSpec) -> dict[str, Any]:
    """The Service in front of the model pods."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**_selector(name), **MANAGED_BY, "modelreg.dev/model": model},
        },
        "spec": {
            "selector": _selector(name),
            "ports": [{"name": "http", "port": spec.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
