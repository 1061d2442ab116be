"""ModelVersion: one immutable, registered version of a model."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from modelreg.api.base import (
    IMAGE_DIGEST,
    ApiModel,
    Condition,
    LocalObjectReference,
    ObjectName,
    Sha256,
    ShortText,
    Text,
    UserName,
    conditions_field,
    map_field,
    says,
)

ARTIFACT_URI = r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s]+|https://[^\s/]+/[^\s]*)$"
#: registry[:port]/path[:tag][@sha256:digest] (a simplified distribution reference grammar)
IMAGE_REFERENCE = (
    r"^([a-zA-Z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._/-][a-z0-9]+)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
URI = Annotated[
    str,
    StringConstraints(max_length=2048, pattern=r"^[a-z][a-z0-9+.-]*://[^\s]+$"),
    says("must be a URI with a scheme and no spaces, such as s3://bucket/path"),
]
ArtifactUri = Annotated[
    str,
    StringConstraints(max_length=2048, pattern=ARTIFACT_URI),
    says("must be s3://<bucket>/<key> or https://<host>/<path>"),
]
ImageReference = Annotated[
    str,
    StringConstraints(min_length=1, max_length=512, pattern=IMAGE_REFERENCE),
    says(
        "must be an image reference such as registry.example.com/team/model:1.0 or "
        "registry.example.com/team/model@sha256:<64 hex digits>"
    ),
]
CommitHash = Annotated[
    str,
    StringConstraints(min_length=4, max_length=64, pattern=r"^[a-f0-9]{4,64}$"),
    says("must be a lowercase hexadecimal commit hash (4 to 64 digits)"),
]


class Artifact(ApiModel):
    """The model's files: one object or archive in S3 or at an HTTPS URL."""

    uri: ArtifactUri
    """Where the artifact is: s3://bucket/key or https://host/path."""
    sha256: Sha256 | None = None
    """Expected SHA-256 of the artifact's bytes, 64 lowercase hex digits."""
    format: ShortText | None = None
    """Model format (sklearn, onnx, pytorch, ...), free text."""


class Image(ApiModel):
    """The inference container image."""

    reference: ImageReference
    """Image reference: registry/repository:tag or registry/repository@sha256:digest."""
    pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list,
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """kubernetes.io/dockerconfigjson Secrets with credentials for a private registry."""


class Dataset(ApiModel):
    """A dataset the model was trained or evaluated on."""

    name: ShortText
    """Name of the dataset."""
    uri: URI
    """Where the dataset is."""
    version: ShortText | None = None
    """Version or snapshot of the dataset."""
    sha256: Sha256 | None = None
    """SHA-256 of the dataset (or of its manifest)."""


class Code(ApiModel):
    """The training code."""

    repository: Annotated[str, StringConstraints(max_length=2048)]
    """Repository URL."""
    commit: CommitHash | None = None
    """Commit hash (lowercase hex, abbreviated or full)."""
    path: Annotated[str, StringConstraints(max_length=1024)] | None = None
    """Entry point within the repository."""


class Run(ApiModel):
    """The training run in an experiment tracker."""

    system: ShortText
    """Tracker (mlflow, wandb, ...)."""
    id: ShortText
    """Run id in that tracker."""
    url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    """Link to the run."""


class Lineage(ApiModel):
    """Everything needed to rebuild the model."""

    datasets: list[Dataset] = Field(
        default_factory=list, max_length=32, json_schema_extra={"x-kubernetes-list-type": "atomic"}
    )
    """Datasets used for training and evaluation."""
    code: Code | None = None
    """Training code."""
    training_image: Annotated[str, StringConstraints(max_length=512)] | None = None
    """Image the training ran in (ideally pinned by digest)."""
    parameters: dict[str, Annotated[str, StringConstraints(max_length=1024)]] = map_field(128)
    """Hyperparameters, as strings."""
    run: Run | None = None
    """Training run in an experiment tracker."""
    parent_version: ObjectName | None = None
    """The ModelVersion this one was derived from (fine-tuned, retrained)."""


class ValidationStep(StrEnum):
    ARTIFACT = "Artifact"
    IMAGE = "Image"


class Validation(ApiModel):
    """Which verifications to skip (for artifacts or images the operator cannot reach)."""

    skip: list[ValidationStep] = Field(
        default_factory=list, max_length=2, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Verifications to skip: Artifact, Image."""


class ModelVersionSpec(ApiModel):
    """One registered version: immutable after creation."""

    model_ref: LocalObjectReference
    """The RegisteredModel (same namespace) this is a version of."""
    description: Text | None = None
    """What changed in this version."""
    artifact: Artifact
    """The model's files."""
    image: Image
    """The inference container."""
    lineage: Lineage = Field(default_factory=Lineage)
    """What the version was built from."""
    metrics: dict[str, float] = map_field(128)
    """Evaluation metrics, numbers."""
    tags: dict[str, ShortText] = map_field(64)
    """Free-form key/value tags."""
    validation: Validation = Field(default_factory=Validation)
    """Verifications to skip."""


class ApprovalState(StrEnum):
    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


class Decision(StrEnum):
    APPROVED = "Approved"
    REJECTED = "Rejected"


class ApprovalDecision(ApiModel):
    """One decision, recorded by the system from the admission request."""

    user: UserName
    """The user who decided, as authenticated by the API server."""
    decision: Decision
    """Approved or Rejected."""
    comment: Annotated[str, StringConstraints(max_length=1024)] = ""
    """The approver's comment (modelreg.dev/approval-comment)."""
    time: dt.datetime
    """When the decision was admitted."""
    image: Annotated[str, StringConstraints(max_length=600)] | None = None
    """The image (repository@sha256:...) verified when the decision was made: an approval
    counts only while the version still verifies as this."""
    artifact_sha256: Sha256 | None = None
    """The artifact sha256 verified when the decision was made (same rule)."""

    def content(self) -> tuple[str | None, str | None] | None:
        """What the decision was made on (None: made before the version was verified)."""
        if self.image is None and self.artifact_sha256 is None:
            return None
        return (self.image, self.artifact_sha256)


class ArchiveAction(StrEnum):
    ARCHIVED = "Archived"
    UNARCHIVED = "Unarchived"


class ArchiveDecision(ApiModel):
    """One archive or un-archive, recorded by the system from the admission request."""

    user: UserName
    """Who archived or un-archived, as authenticated by the API server."""
    action: ArchiveAction
    """Archived or Unarchived."""
    comment: Annotated[str, StringConstraints(max_length=1024)] = ""
    """Why (modelreg.dev/archive-comment at the time)."""
    time: dt.datetime
    """When it was admitted."""


class Approval(ApiModel):
    """The approval state and its record."""

    state: ApprovalState = ApprovalState.PENDING
    """PendingManualApproval, Approved or Rejected."""
    required: Annotated[int, Field(ge=1, le=10)] = 1
    """Distinct approvals the policy requires."""
    decisions: list[ApprovalDecision] = Field(
        default_factory=list, max_length=256, json_schema_extra={"x-kubernetes-list-type": "atomic"}
    )
    """Every decision, oldest first."""


class Stage(StrEnum):
    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


class ArtifactStatus(ApiModel):
    """What the store reported about the artifact."""

    size_bytes: Annotated[int, Field(ge=0)] | None = None
    """Size in bytes."""
    etag: ShortText | None = None
    """The store's ETag."""
    version_id: ShortText | None = None
    """The S3 version id, when the bucket is versioned."""
    sha256: Sha256 | None = None
    """SHA-256 confirmed by the store's checksum or by hashing."""
    encryption: ShortText | None = None
    """The object's server-side encryption as the store reports it (AES256, aws:kms, ...),
    or "none"."""


class ImageStatus(ApiModel):
    """The image, resolved."""

    digest: Annotated[str, StringConstraints(pattern=IMAGE_DIGEST, max_length=71)] | None = None
    """Manifest digest the reference resolved to."""
    resolved: Annotated[str, StringConstraints(max_length=600)] | None = None
    """repository@digest: what a Deployment runs."""


class DeploymentRef(ApiModel):
    """A ModelDeployment serving this version."""

    name: ObjectName
    """Name of the ModelDeployment."""
    stage: Stage
    """Its stage."""


class ModelVersionStatus(ApiModel):
    """What the system recorded and observed about the version."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The metadata.generation the status was computed for."""
    number: Annotated[int, Field(ge=1)] | None = None
    """Per-model version number, assigned once in creation order, never reused."""
    registered_by: UserName | None = None
    """The user who created the version (from the admission request)."""
    artifact: ArtifactStatus | None = None
    """The verified artifact."""
    image: ImageStatus | None = None
    """The resolved image."""
    approval: Approval = Field(default_factory=Approval)
    """Approval state and decisions."""
    stage: Stage = Stage.NONE
    """Where the version runs: None, Staging, Production, or Archived."""
    seal: ShortText | None = None
    """Written by the operator when the version is deployable: an HMAC over what it
    verified (image digest, artifact sha256). A ModelDeployment serves only a version whose
    seal matches, so a forged status (approval state, Ready, digest) is never deployed."""
    deployments: list[DeploymentRef] = Field(
        default_factory=list, max_length=64, json_schema_extra={"x-kubernetes-list-type": "atomic"}
    )
    """ModelDeployments serving this version now."""
    conditions: list[Condition] = conditions_field()
    """ArtifactVerified, ImageResolved, Approved, Ready."""


class ModelVersion(ApiModel):
    """One immutable, registered model version."""

    spec: ModelVersionSpec
    status: ModelVersionStatus | None = None
