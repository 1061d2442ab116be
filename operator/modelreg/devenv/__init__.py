"""The local development and test environment: a real control plane, S3 and registries."""

from modelreg.devenv.cluster import (
    ComponentStatus,
    DevEnvError,
    Environment,
    down,
    open_existing,
    status,
    up,
)

__all__ = ["ComponentStatus", "DevEnvError", "Environment", "down", "open_existing", "status", "up"]
