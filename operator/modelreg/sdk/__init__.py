"""The modelreg Python SDK: ``from modelreg import Client``."""

from modelreg.sdk.client import Client
from modelreg.sdk.errors import (
    Conflict,
    Denied,
    Invalid,
    ModelregError,
    NotFound,
    Timeout,
    UploadFailed,
    VerificationFailed,
)
from modelreg.sdk.models import (
    Comparison,
    DatasetUse,
    Deployment,
    Difference,
    HistoryEvent,
    MetricDelta,
    Model,
    Placement,
    Version,
)

__all__ = [
    "Client",
    "Comparison",
    "Conflict",
    "DatasetUse",
    "Denied",
    "Deployment",
    "Difference",
    "HistoryEvent",
    "Invalid",
    "MetricDelta",
    "Model",
    "ModelregError",
    "NotFound",
    "Placement",
    "Timeout",
    "UploadFailed",
    "VerificationFailed",
    "Version",
]
