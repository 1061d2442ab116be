"""RegisteredModel: a named model and its governance policy."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from modelreg.api.base import (
    ApiModel,
    Condition,
    LocalObjectReference,
    ShortText,
    Text,
    UserName,
    VersionRef,
    conditions_field,
    map_field,
    says,
)


class SelfApproval(StrEnum):
    FORBIDDEN = "Forbidden"
    ALLOWED = "Allowed"


class Approvers(ApiModel):
    """Who may approve or reject. Both lists empty: anyone RBAC lets annotate versions."""

    users: list[UserName] = Field(
        default_factory=list, max_length=64, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """User names (as the API server authenticates them) allowed to decide."""
    groups: list[UserName] = Field(
        default_factory=list, max_length=64, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Groups whose members are allowed to decide."""


class MetricGate(ApiModel):
    """A bound a version's metric must meet before it can become Approved."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.min) || has(self.max)",
                    "message": "a metric gate must set min, max or both",
                },
                {
                    "rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
                    "message": "min must not be greater than max",
                },
            ]
        }
    )

    metric: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    """Name of the metric in the version's spec.metrics."""
    min: float | None = None
    """The metric must be at least this (inclusive)."""
    max: float | None = None
    """The metric must be at most this (inclusive)."""


class ApprovalPolicy(ApiModel):
    """How versions of this model get approved."""

    required_approvals: Annotated[int, Field(ge=1, le=10)] = 1
    """Distinct approving users needed for Approved."""
    approvers: Approvers = Field(default_factory=Approvers)
    """Who may approve or reject."""
    self_approval: SelfApproval = SelfApproval.FORBIDDEN
    """Whether the user who registered a version may approve it."""
    metric_gates: list[MetricGate] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["metric"],
        },
    )
    """A version failing any gate cannot become Approved."""


class Retention(ApiModel):
    """How many versions stay active."""

    max_versions: Annotated[int, Field(ge=1, le=100000)] | None = None
    """Versions beyond the newest N are archived, never one that is deployed, pending
    approval or the latest approved."""


class NotificationEvent(StrEnum):
    VERSION_REGISTERED = "VersionRegistered"
    VERSION_VERIFIED = "VersionVerified"
    VERSION_VERIFICATION_FAILED = "VersionVerificationFailed"
    VERSION_APPROVED = "VersionApproved"
    VERSION_REJECTED = "VersionRejected"
    VERSION_ARCHIVED = "VersionArchived"
    DEPLOYMENT_SUCCEEDED = "DeploymentSucceeded"
    DEPLOYMENT_FAILED = "DeploymentFailed"
    DEPLOYMENT_ROLLED_BACK = "DeploymentRolledBack"


class Notification(ApiModel):
    """A receiver of CloudEvents (JSON) POSTed on transitions."""

    url: Annotated[
        str,
        StringConstraints(max_length=2048, pattern=r"^https?://[^\s]+$"),
        says("must be an http:// or https:// URL without spaces"),
    ]
    """The http(s) URL to POST to."""
    events: list[NotificationEvent] = Field(
        min_length=1, max_length=16, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """The transitions to send."""
    secret_ref: LocalObjectReference | None = None
    """A Secret whose key "key" signs each event (HMAC-SHA256 signature header)."""


class ArtifactEncryption(StrEnum):
    NONE = "None"
    ANY = "Any"
    SSE_S3 = "SSE-S3"
    SSE_KMS = "SSE-KMS"


Prefix = Annotated[
    str,
    StringConstraints(min_length=1, max_length=512, pattern=r"^[^\s]+$"),
    says("must be a non-empty prefix without spaces"),
]


class SecurityPolicy(ApiModel):
    """Where this model's artifacts and images may come from, and how artifacts must be
    stored. Checked at admission (a version outside it is refused) and again by the
    operator (a version registered before the policy changed stops being deployable)."""

    allowed_artifact_prefixes: list[Prefix] = Field(
        default_factory=list, max_length=32, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Artifact URI prefixes versions may use, e.g. "s3://models-prod/"; empty: any. A
    prefix matches whole path segments ("s3://models" does not match "s3://models-dev/")."""
    allowed_image_prefixes: list[Prefix] = Field(
        default_factory=list, max_length=32, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Image repository prefixes versions may use, e.g. "registry.internal/serving/";
    empty: any. Matched against the normalized reference ("python" is
    "docker.io/library/python"), whole path segments only."""
    required_artifact_encryption: ArtifactEncryption = ArtifactEncryption.NONE
    """Server-side encryption the artifact's object must have: None (not checked), Any,
    SSE-S3 (AES256) or SSE-KMS (aws:kms). Checked from the store's object headers;
    https:// artifacts cannot show it and fail a requirement."""


class RegisteredModelSpec(ApiModel):
    """A named model and the policy its versions are governed by."""

    description: Text | None = None
    """What the model does."""
    owners: list[ShortText] = Field(
        default_factory=list, max_length=32, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Teams or people responsible for the model (informational)."""
    tags: dict[str, ShortText] = map_field(64)
    """Free-form key/value tags."""
    approval_policy: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    """Who may approve versions, how many approvals, and metric gates."""
    retention: Retention = Field(default_factory=Retention)
    """How many versions stay active before older ones are archived."""
    notifications: list[Notification] = Field(
        default_factory=list, max_length=16, json_schema_extra={"x-kubernetes-list-type": "atomic"}
    )
    """CloudEvents receivers for this model's transitions."""
    security_policy: SecurityPolicy = Field(default_factory=SecurityPolicy)
    """Allowed artifact and image sources, and required artifact encryption."""


class RegisteredModelStatus(ApiModel):
    """What the operator observed about the model and its versions."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The metadata.generation the status was computed for."""
    latest_version: VersionRef | None = None
    """The version with the highest number."""
    latest_approved_version: VersionRef | None = None
    """The approved version with the highest number."""
    version_count: Annotated[int, Field(ge=0)] | None = None
    """How many ModelVersions of this model exist."""
    next_version_number: Annotated[int, Field(ge=1)] | None = None
    """The number the next registered version gets; numbers are never reused."""
    conditions: list[Condition] = conditions_field()
    """Ready summarises the model's state."""


class RegisteredModel(ApiModel):
    """A named model and its governance policy."""

    spec: RegisteredModelSpec = Field(default_factory=RegisteredModelSpec)
    """The model and its policy."""
    status: RegisteredModelStatus | None = None
    """Observed state, written by the operator."""
