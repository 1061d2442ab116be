"""ModelDeployment: serve an approved version; roll back when it fails."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from modelreg.api.base import (
    ApiModel,
    Condition,
    LocalObjectReference,
    ObjectName,
    ShortText,
    VersionRef,
    conditions_field,
    says,
)

#: Kubernetes quantities (cpu: 500m, memory: 1Gi), as the API server accepts them.
QUANTITY = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
Quantity = Annotated[
    str,
    StringConstraints(max_length=64, pattern=QUANTITY),
    says("must be a Kubernetes quantity such as 500m, 2 or 1Gi"),
]
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"


class DeploymentStage(StrEnum):
    STAGING = "Staging"
    PRODUCTION = "Production"


class AutomaticRollback(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"


class Protocol(StrEnum):
    """How the model server reports its health (builders.probes)."""

    #: the Open Inference Protocol (KServe v2, MLServer, Triton): /v2/health/live and
    #: /v2/health/ready (ready once every model it serves is loaded)
    V2 = "v2"
    #: KServe v1 / TF-Serving style: GET /v1/models/<model> answers once it is loaded
    V1 = "v1"
    #: no health endpoints known: the pod counts as ready once its container runs
    NONE = "none"


class HTTPScheme(StrEnum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"


Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[int, Field(ge=1, le=3600)]


class HTTPGetProbe(ApiModel):
    """GET a path of the model container (never another host: the kubelet would send
    it from the node's network position)."""

    path: Annotated[
        str,
        StringConstraints(min_length=1, max_length=1024, pattern=r"^/[^\s]*$"),
        says("must be an absolute path such as /v2/health/ready"),
    ]
    """The path to GET; 200-399 is healthy."""
    port: Port | None = None
    """The port (default: spec.port)."""
    scheme: HTTPScheme = HTTPScheme.HTTP
    """HTTP or HTTPS (HTTPS: the certificate is not checked, as the kubelet does)."""


class PortProbe(ApiModel):
    """A TCP connect, or a gRPC health check, to a port of the model container."""

    port: Port | None = None
    """The port (default: spec.port)."""


class GRPCProbe(PortProbe):
    """The gRPC Health Checking Protocol."""

    service: Annotated[str, StringConstraints(max_length=256)] | None = None
    """The service name to ask about (absent: the server as a whole)."""


class Probe(ApiModel):
    """One probe of the model container: exactly one of httpGet, tcpSocket or grpc. No
    exec: a command the kubelet runs in the container would change what an approved image
    does, under the deployment's ServiceAccount, for anyone who may edit the deployment."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.httpGet), has(self.tcpSocket), has(self.grpc)]"
                    ".filter(x, x).size() == 1",
                    "message": "a probe has exactly one of httpGet, tcpSocket or grpc",
                }
            ]
        }
    )

    http_get: HTTPGetProbe | None = None
    """GET a path."""
    tcp_socket: PortProbe | None = None
    """Connect to a port."""
    grpc: GRPCProbe | None = None
    """gRPC health check."""
    initial_delay_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None
    """Seconds after the container starts before the first probe."""
    period_seconds: Seconds | None = None
    """Seconds between probes."""
    timeout_seconds: Seconds | None = None
    """Seconds a probe may take."""
    failure_threshold: Annotated[int, Field(ge=1, le=10000)] | None = None
    """Failures in a row that count (startup: period x threshold is the time to load)."""


class Probes(ApiModel):
    """Probes that replace those spec.protocol gives, one kind at a time."""

    startup: Probe | None = None
    """Holds liveness off until it succeeds (a large model's loading time)."""
    readiness: Probe | None = None
    """Whether a pod serves, and so whether a rollout succeeds."""
    liveness: Probe | None = None
    """Restarts a server that stopped answering."""


class VersionSelector(ApiModel):
    """A pinned version: by ModelVersion name or by number (not both)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.name) != has(self.number)",
                    "message": "version must set exactly one of name or number",
                }
            ]
        }
    )

    name: ObjectName | None = None
    """Name of the ModelVersion."""
    number: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    """Version number within the model."""


#: resources Kubernetes lets requests and limits differ for; any other (an extended
#: resource such as nvidia.com/gpu) must be requested exactly as limited
_OVERCOMMITTABLE = "['cpu', 'memory', 'ephemeral-storage']"


class Resources(ApiModel):
    """Compute resources of a container."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.requests) || self.requests.all(k, k in "
                    + _OVERCOMMITTABLE
                    + " || k.startsWith('hugepages-') || (has(self.limits) && k in self.limits"
                    " && self.limits[k] == self.requests[k]))",
                    "message": "an extended resource (such as nvidia.com/gpu) must be "
                    "requested exactly as limited: set limits to the same value, or set "
                    "only limits",
                }
            ]
        }
    )

    requests: dict[str, Quantity] = Field(default_factory=dict, max_length=8)
    """Minimum resources (cpu, memory, ...)."""
    limits: dict[str, Quantity] = Field(default_factory=dict, max_length=8)
    """Maximum resources."""


#: the contract's variables, set by the operator from the version served
RESERVED_ENV = ("MODEL_NAME", "MODEL_VERSION", "MODEL_PATH")


class EnvVar(ApiModel):
    """An environment variable of the model container."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(self.name in " + str(list(RESERVED_ENV)) + ")",
                    "message": "env must not set MODEL_NAME, MODEL_VERSION or MODEL_PATH: "
                    "the operator sets them from the version it serves; remove the entry",
                }
            ]
        }
    )

    name: Annotated[
        str,
        StringConstraints(min_length=1, max_length=256, pattern=ENV_NAME),
        says("must be letters, digits, '_', '-' or '.', and must not start with a digit"),
    ]
    """Variable name."""
    value: Annotated[str, StringConstraints(max_length=32768)] = ""
    """Variable value."""


class Storage(ApiModel):
    """How the storage-initializer reaches the artifact."""

    secret_ref: LocalObjectReference | None = None
    """A Secret with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and optionally
    AWS_DEFAULT_REGION, MODELREG_S3_ENDPOINT) for the artifact download."""


class Rollout(ApiModel):
    """How a new version rolls out."""

    progress_deadline_seconds: Annotated[int, Field(ge=1, le=86400)] = 600
    """Seconds a rollout may take before it counts as failed."""
    automatic_rollback: AutomaticRollback = AutomaticRollback.ENABLED
    """Roll back to the previous good version when a rollout fails."""


#: a label key: an optional DNS-subdomain prefix and "/", then a name of 63 at most
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LabelKey = Annotated[
    str,
    StringConstraints(max_length=317, pattern=LABEL_KEY),
    says("must be a label key such as nvidia.com/gpu.product or zone"),
]
LabelValue = Annotated[
    str,
    StringConstraints(max_length=63, pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"),
    says("must be a label value: 63 characters at most, letters, digits, '-', '_', '.'"),
]


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(ApiModel):
    """A taint the serving pods tolerate (GPU and other dedicated nodes)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.operator != 'Exists' || !has(self.value)",
                    "message": "a toleration with operator Exists has no value",
                },
                {
                    "rule": "has(self.key) || self.operator == 'Exists'",
                    "message": "a toleration without a key must have operator Exists",
                },
                {
                    "rule": "!has(self.tolerationSeconds) || self.effect == 'NoExecute'",
                    "message": "tolerationSeconds is for effect NoExecute only",
                },
            ]
        }
    )

    key: LabelKey | None = None
    """The taint's key (absent, with Exists: every taint)."""
    operator: TolerationOperator = TolerationOperator.EQUAL
    """Equal (key and value) or Exists (key only)."""
    value: LabelValue | None = None
    """The taint's value, for Equal."""
    effect: TaintEffect | None = None
    """The effect tolerated (absent: all)."""
    toleration_seconds: Annotated[int, Field(ge=0, le=31_536_000)] | None = None
    """For NoExecute: how long a pod stays on a node once tainted."""


class SharedMemory(ApiModel):
    """A memory-backed /dev/shm (PyTorch data loaders, Triton, vLLM need more than the
    container runtime's 64 MiB)."""

    size_limit: Quantity
    """Its size; counted against the pod's memory."""


class StorageInitializer(ApiModel):
    """The init container that downloads and checks the artifact."""

    resources: Resources | None = None
    """Its resources (default: requests cpu 100m, memory 128Mi; limits memory 512Mi)."""


class ModelDeploymentSpec(ApiModel):
    """Which model and version to serve, and how."""

    model_ref: LocalObjectReference
    """The RegisteredModel (same namespace) to serve."""
    version: VersionSelector | None = None
    """A pinned version; absent: follow the latest Ready version."""
    stage: DeploymentStage = DeploymentStage.PRODUCTION
    """Staging or Production."""
    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Number of serving pods."""
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    """Container port the model server listens on."""
    protocol: Protocol = Protocol.NONE
    """The server's protocol, which gives the model container readiness, liveness and
    startup probes on ``port`` (v2: /v2/health/ready and /v2/health/live; v1:
    /v1/models/<model>); a version that never becomes ready within
    rollout.progressDeadlineSeconds rolls back. none: no probes."""
    probes: Probes = Field(default_factory=Probes)
    """Probes of the model container; each one given replaces the one of that kind that
    ``protocol`` gives (the others stay)."""
    resources: Resources = Field(default_factory=Resources)
    """Compute resources of the model container."""
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Extra environment variables of the model container."""
    service_account_name: ObjectName | None = None
    """ServiceAccount of the serving pods."""
    node_selector: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=32,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    # keys checked here: a CRD schema has no patterns for map keys
                    "rule": "self.all(k, size(k) <= 317 && k.matches(r'" + LABEL_KEY + "'))",
                    "message": "nodeSelector keys must be label keys such as "
                    "nvidia.com/gpu.product or zone",
                }
            ]
        },
    )
    """Labels the nodes of the serving pods must have (for example a GPU product)."""
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, json_schema_extra={"x-kubernetes-list-type": "atomic"}
    )
    """Taints the serving pods tolerate."""
    termination_grace_period_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None
    """Seconds a serving pod has to finish its requests when stopped (default 30)."""
    shared_memory: SharedMemory | None = None
    """A memory-backed /dev/shm of this size in the model container."""
    storage_initializer: StorageInitializer = Field(default_factory=StorageInitializer)
    """The artifact download's init container."""
    storage: Storage = Field(default_factory=Storage)
    """Credentials for the artifact download."""
    rollout: Rollout = Field(default_factory=Rollout)
    """Rollout deadline and automatic rollback."""


#: the most entries status.history can hold (rollout.trim_history keeps it below)
HISTORY_MAX = 200


class RolloutResult(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"
    IN_PROGRESS = "InProgress"


class ServedVersion(ApiModel):
    """The version the Deployment serves."""

    name: ObjectName
    """Name of the ModelVersion."""
    number: Annotated[int, Field(ge=1, le=2**31 - 1)]
    """Its number."""
    image: Annotated[str, StringConstraints(max_length=600)]
    """The image, pinned by digest."""
    artifact_uri: Annotated[str, StringConstraints(max_length=2048)]
    """The artifact downloaded by the storage-initializer."""


class HistoryEntry(ApiModel):
    """One rollout of a version here."""

    name: ObjectName
    """Name of the ModelVersion."""
    number: Annotated[int, Field(ge=1, le=2**31 - 1)]
    """Its number."""
    result: RolloutResult
    """Succeeded, Failed, RolledBack or InProgress."""
    reason: ShortText = ""
    """Why (ProgressDeadlineExceeded, ApprovalRevoked, Manual, ...)."""
    time: dt.datetime
    """When the result was recorded."""
    generation: Annotated[int, Field(ge=0)] | None = None
    """The ModelDeployment generation of this rollout (a failed version is not retried
    until the spec changes)."""


class ManualRollback(ApiModel):
    """A hold set by the annotation modelreg.dev/rollback-to, and the spec it was set
    under: a newer spec generation releases it."""

    version: ObjectName
    """The ModelVersion the annotation names."""
    generation: int | None = Field(default=None, ge=0)
    """The ModelDeployment generation when the hold started."""


class ModelDeploymentStatus(ApiModel):
    """What is deployed now and how it got there."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The metadata.generation the status was computed for."""
    target_version: VersionRef | None = None
    """The version the spec asks for now."""
    current_version: ServedVersion | None = None
    """The version the Deployment serves now."""
    deployment_name: ObjectName | None = None
    """The apps/v1 Deployment the operator owns."""
    service_name: ObjectName | None = None
    """The Service the operator owns."""
    manual_rollback: ManualRollback | None = None
    """The manual rollback (annotation modelreg.dev/rollback-to) seen, and the generation
    it started at: it holds only while the spec stays at that generation."""
    history: list[HistoryEntry] = Field(
        default_factory=list,
        max_length=HISTORY_MAX,
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    """Rollouts here, newest first: the 20 newest, plus older entries rollbacks depend on
    (each version's newest success, this generation's failures); at most 200."""
    conditions: list[Condition] = conditions_field()
    """Ready, Progressing, RolledBack."""


class ModelDeployment(ApiModel):
    """Serves an approved version as a Deployment and a Service."""

    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None
