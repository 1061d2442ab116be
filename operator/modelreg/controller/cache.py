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
annotations, spec and status. ModelVersions, thousands of them, are kept leaner still
(:func:`version_entry`): about 10 KB of Python objects each as parsed, half of the
operator's memory at 10,000 versions (docs/benchmarks.md). What needs a whole version
(its reconcile) reads it from the API server.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Any

from modelreg.api import annotations as ann

Obj = dict[str, Any]

_METADATA = ("name", "namespace", "uid", "generation", "resourceVersion", "creationTimestamp")


def slim(body: Mapping[str, Any]) -> Obj:
    """The parts of an object the reconciles read."""
    meta = body.get("metadata") or {}
    kept: Obj = {k: meta[k] for k in _METADATA if k in meta}
    for key in ("labels", "deletionTimestamp"):
        if key in meta:
            kept[key] = meta[key]
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if not ann.kopf_owned(k)
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


#: never read by a reconcile, and a whole copy of the object when kubectl apply wrote it
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: what the reconciles that read the version index use (deployments._candidate,
#: record.Verification.of, versions.summarize_model, lifecycle.apply_retention,
#: deployments.sync_version_stages, numbering): not lineage, descriptions, tags, condition
#: messages, decisions (their signed record is in the annotations)
_VERSION_SPEC = {"modelRef": None, "artifact": ("uri", "sha256"), "image": ("reference",)}
_VERSION_STATUS = {
    "number": None,
    "observedGeneration": None,
    "seal": None,
    "stage": None,
    "deployments": None,
    "registeredBy": None,
    "approval": ("state",),
    "artifact": ("sha256",),
    "image": ("digest", "resolved"),
}
_intern = sys.intern


def _project(src: Mapping[str, Any], fields: Mapping[str, tuple[str, ...] | None]) -> Obj:
    out: Obj = {}
    for key, keep in fields.items():
        if key not in src:
            continue
        value = src[key]
        if keep is not None and isinstance(value, Mapping):
            value = {_intern(k): value[k] for k in keep if k in value}
        out[_intern(key)] = value
    return out


def version_entry(body: Mapping[str, Any]) -> Obj:
    """The parts of a ModelVersion the reconciles read from the index (keys interned: the
    same few strings in every entry)."""
    entry = slim(body)
    meta = entry["metadata"]
    meta.pop("labels", None)
    if "annotations" in meta:
        meta["annotations"] = {
            _intern(k): v for k, v in meta["annotations"].items() if k != _LAST_APPLIED
        }
    spec, status = entry["spec"], entry["status"]
    entry["spec"] = _project(spec, _VERSION_SPEC)
    if spec.get("metrics"):
        entry["spec"]["metrics"] = spec["metrics"]
    entry["status"] = _project(status, _VERSION_STATUS)
    entry["status"]["conditions"] = [
        {
            "type": _intern(str(c.get("type", ""))),
            "status": _intern(str(c.get("status", ""))),
            "reason": _intern(str(c.get("reason", ""))),
        }
        for c in status.get("conditions") or []
    ]
    return entry


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


class OwnWrites:
    """The resourceVersion of the operator's latest status write of each object, until the
    watch has delivered it.

    kopf hands a handler the newest body its watch has delivered, which can predate a
    status the operator has just written (an approval arriving while the version's first
    reconcile still runs). With its diff base in an annotation, kopf's own PATCH after
    each handler made it wait for the watch to catch up; kept in memory
    (controller/diffbase.py), nothing does, so a handler asks :meth:`stale` and reads the
    object again if so. Entries go once the watch has caught up, so this holds only
    writes in flight.
    """

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._versions)

    def wrote(self, obj: Mapping[str, Any] | None) -> None:
        meta = (obj or {}).get("metadata") or {}
        uid, rv = meta.get("uid"), str(meta.get("resourceVersion", ""))
        if uid and rv.isdigit():
            with self._lock:
                self._versions[uid] = max(int(rv), self._versions.get(uid, 0))

    def stale(self, body: Mapping[str, Any]) -> bool:
        """Whether ``body`` predates the operator's latest write of it."""
        meta = body.get("metadata") or {}
        uid, rv = meta.get("uid"), str(meta.get("resourceVersion", ""))
        with self._lock:
            written = self._versions.get(uid or "")
            if written is None:
                return False
            if rv.isdigit() and int(rv) >= written:
                del self._versions[uid or ""]  # the watch has caught up
                return False
            return True

    def forget(self, uid: str | None) -> None:
        """The object is gone."""
        with self._lock:
            self._versions.pop(uid or "", None)
