"""What the operator's watches have seen: ModelVersions by model, ModelDeployments by
namespace, kept by kopf's in-memory indices.

Reconciles used to list every ModelVersion of the namespace on every event, which made
registration O(n²) in bytes read (benchmarks/: 40% of the operator's CPU at 1,000
versions). The indices are fed by the watch streams kopf keeps anyway, and kopf starts
no handler before they are filled from the initial listing.

Reads from the index may trail the API server by the time an event takes to arrive.
That is safe because of how the operator uses them:
- a version's own status change reaches the deployments through its watch event (see
  ``handlers.version_changed``), so nothing waits on a write the index has not seen;
- before the Deployment is pointed at a version, that version is read again from the
  API server and checked (``deployments._Run.serve``).

Only what the reconciles read is kept: metadata without managedFields and kopf's own
annotations (its last-handled-configuration repeats the spec), spec and status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]

#: annotations kopf writes for its own bookkeeping (settings.persistence)
_KOPF_PREFIX = "kopf.modelreg.dev/"
_METADATA = ("name", "namespace", "uid", "generation", "resourceVersion", "creationTimestamp")


def slim(body: Mapping[str, Any]) -> Obj:
    """The parts of an object the reconciles read."""
    meta = body.get("metadata") or {}
    kept: Obj = {k: meta[k] for k in _METADATA if k in meta}
    for key in ("labels", "deletionTimestamp"):
        if key in meta:
            kept[key] = meta[key]
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(_KOPF_PREFIX)
    }
    if annotations:
        kept["annotations"] = annotations
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": kept,
        "spec": body.get("spec") or {},
        "status": body.get("status") or {},
    }


class Indices:
    """kopf's indices, once a handler has been given them (None before: ask the API)."""

    def __init__(self) -> None:
        self.versions: Mapping[Any, Any] | None = None
        self.deployments: Mapping[Any, Any] | None = None
        self.models: Mapping[Any, Any] | None = None

    def bind(self, kwargs: Mapping[str, Any]) -> None:
        """Take the indices from a handler's kwargs (the same objects for the life of an
        operator; a new run in the same process brings new ones)."""
        self.versions = kwargs.get("version_index", self.versions)
        self.deployments = kwargs.get("deployment_index", self.deployments)
        self.models = kwargs.get("model_index", self.models)

    def versions_of(self, namespace: str, model: str) -> list[Obj] | None:
        if self.versions is None:
            return None
        return list(self.versions.get((namespace, model), ()))

    def deployments_in(self, namespace: str) -> list[Obj] | None:
        if self.deployments is None:
            return None
        return list(self.deployments.get(namespace, ()))

    def model(self, namespace: str, name: str) -> Obj | None:
        """The RegisteredModel as last seen; None if not seen (yet): ask the API."""
        if self.models is None:
            return None
        return next(iter(self.models.get((namespace, name), ())), None)
