"""modelreg: a Kubernetes-native model registry, reconciled by a kopf operator."""

__version__ = "0.1.0"

__all__ = ["__version__"]
