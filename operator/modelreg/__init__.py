"""modelreg: a Kubernetes-native model registry, reconciled by a kopf operator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Client", "__version__"]

if TYPE_CHECKING:
    from modelreg.sdk.client import Client


def __getattr__(name: str) -> Any:  # noqa: ANN401 (module attributes of any type)
    # the SDK imports the kubernetes client and boto3: load it only when asked for
    if name == "Client":
        from modelreg.sdk.client import Client

        return Client
    raise AttributeError(f"module 'modelreg' has no attribute {name!r}")
