"""Typed results of the SDK: the API's spec/status models plus the object metadata the API
models leave out (name, namespace, number, creation time, annotations)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from modelreg.api import annotations as ann
from modelreg.api.base import ApiModel, Condition
from modelreg.api.model_deployment import ModelDeploymentSpec, ModelDeploymentStatus
from modelreg.api.model_version import ModelVersionSpec, ModelVersionStatus
from modelreg.api.registered_model import RegisteredModelSpec, RegisteredModelStatus


def _created(meta: dict[str, Any]) -> dt.datetime | None:
    raw = meta.get("creationTimestamp")
    return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None


class Resource(ApiModel):
    """Metadata shared by the SDK's objects."""

    name: str
    namespace: str
    created: dt.datetime | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    resource_version: str | None = None

    @staticmethod
    def _meta(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        return {
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "created": _created(meta),
            "annotations": dict(meta.get("annotations") or {}),
            "labels": dict(meta.get("labels") or {}),
            "generation": meta.get("generation"),
            "resource_version": meta.get("resourceVersion"),
        }

    def condition(self, type_: str) -> Condition | None:
        status = getattr(self, "status", None)
        conditions: list[Condition] = getattr(status, "conditions", None) or []
        return next((c for c in conditions if c.type == type_), None)


class Version(Resource):
    """A ModelVersion: metadata, ``spec`` and ``status``."""

    number: int | None = None
    """The version number (status.number, or the number reserved at admission)."""
    spec: ModelVersionSpec
    status: ModelVersionStatus = Field(default_factory=ModelVersionStatus)

    @classmethod
    def from_api(cls, obj: dict[str, Any]) -> Version:
        meta = cls._meta(obj)
        status = ModelVersionStatus.model_validate(obj.get("status") or {})
        number = status.number
        if number is None and (raw := meta["annotations"].get(ann.NUMBER)):
            try:
                number = int(raw)
            except ValueError:
                number = None
        return cls(
            **meta,
            number=number,
            spec=ModelVersionSpec.model_validate(obj["spec"]),
            status=status,
        )

    @property
    def model(self) -> str:
        return self.spec.model_ref.name

    @property
    def archived(self) -> bool:
        return ann.is_archived(self.annotations)

    @property
    def registered_by(self) -> str | None:
        return self.status.registered_by or self.annotations.get(ann.REGISTERED_BY)

    @property
    def registered_at(self) -> dt.datetime | None:
        """Admission time of the create (modelreg.dev/created-at), else creationTimestamp."""
        raw = self.annotations.get(ann.CREATED_AT)
        if raw and raw.isdigit():
            return dt.datetime.fromtimestamp(int(raw) / 1e9, dt.UTC)
        return self.created

    @property
    def ready(self) -> bool:
        c = self.condition("Ready")
        return c is not None and c.status == "True"


class Deployment(Resource):
    """A ModelDeployment: metadata, ``spec`` and ``status``."""

    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=ModelDeploymentStatus)

    @classmethod
    def from_api(cls, obj: dict[str, Any]) -> Deployment:
        return cls(
            **cls._meta(obj),
            spec=ModelDeploymentSpec.model_validate(obj["spec"]),
            status=ModelDeploymentStatus.model_validate(obj.get("status") or {}),
        )

    @property
    def model(self) -> str:
        return self.spec.model_ref.name

    @property
    def current(self) -> str | None:
        """Name of the version served now."""
        return self.status.current_version.name if self.status.current_version else None

    @property
    def rollback_to(self) -> str | None:
        return self.annotations.get(ann.ROLLBACK_TO)


class Model(Resource):
    """A RegisteredModel: metadata, ``spec`` and ``status``."""

    spec: RegisteredModelSpec
    status: RegisteredModelStatus = Field(default_factory=RegisteredModelStatus)

    @classmethod
    def from_api(cls, obj: dict[str, Any]) -> Model:
        return cls(
            **cls._meta(obj),
            spec=RegisteredModelSpec.model_validate(obj.get("spec") or {}),
            status=RegisteredModelStatus.model_validate(obj.get("status") or {}),
        )


class HistoryEvent(ApiModel):
    """One step of the audit trail."""

    time: dt.datetime | None
    """When it happened (None: the system recorded no time)."""
    event: str
    """Registered, Approved, Rejected, Archived, Deploying, Deployed, DeploymentFailed,
    RolledBack."""
    subject: str
    """The ModelVersion (or ModelDeployment) it happened to."""
    version: str | None = None
    """The ModelVersion involved."""
    number: int | None = None
    """Its number."""
    deployment: str | None = None
    """The ModelDeployment involved, for rollouts."""
    user: str | None = None
    """Who did it, as authenticated by the API server (where the system records it)."""
    detail: str = ""
    """Comment, reason or message."""


class MetricDelta(ApiModel):
    """One metric of two versions."""

    name: str
    a: float | None
    b: float | None
    delta: float | None
    """b - a, where both have the metric."""


class Difference(ApiModel):
    """A field whose value differs between two versions."""

    field: str
    a: str | None
    b: str | None


class Comparison(ApiModel):
    """Two versions side by side."""

    a: str
    b: str
    a_number: int | None = None
    b_number: int | None = None
    metrics: list[MetricDelta] = Field(default_factory=list)
    """Every metric either version has, sorted by name."""
    parameters: list[Difference] = Field(default_factory=list)
    """Hyperparameters that differ."""
    lineage: list[Difference] = Field(default_factory=list)
    """Lineage fields (code, datasets, training image, run, parent), artifact and image that
    differ."""


class Placement(ApiModel):
    """Where a version is used: one ModelDeployment."""

    deployment: str
    namespace: str
    stage: str
    serving: bool
    """The Deployment serves this version now (status.currentVersion)."""
    target: bool
    """The spec (or a rollback) asks for this version (status.targetVersion)."""
    replicas: int


class DatasetUse(ApiModel):
    """A version trained on a dataset, and where it runs now."""

    version: str
    number: int | None = None
    model: str
    dataset: str
    """The dataset entry's name."""
    dataset_version: str | None = None
    deployments: list[Placement] = Field(default_factory=list)
