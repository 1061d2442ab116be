"""The modelreg API (modelreg.dev/v1alpha1): pydantic models, the source of the CRDs."""

from modelreg.api.base import API_VERSION, GROUP, VERSION, Condition, LocalObjectReference
from modelreg.api.model_deployment import (
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
)
from modelreg.api.model_version import ModelVersion, ModelVersionSpec, ModelVersionStatus
from modelreg.api.registered_model import (
    RegisteredModel,
    RegisteredModelSpec,
    RegisteredModelStatus,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "Condition",
    "LocalObjectReference",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelVersion",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "RegisteredModel",
    "RegisteredModelSpec",
    "RegisteredModelStatus",
]
