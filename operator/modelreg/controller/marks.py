"""How far each model's version numbers went, kept where the model's users cannot reach.

A RegisteredModel's status goes with it: anyone who may delete the model (and its
versions) and create it again would have its numbers start again at 1, and a deployment
pinned by number would then run another object. So the high-water mark of each
(namespace, model) is kept in a ConfigMap of the operator's own namespace
(``MODELREG_NAMESPACE``), where the people of the watched namespaces have no rights, like
the approval-record key: one small ConfigMap per model, named after a hash of the
namespace and the model, so models never contend with each other and no object grows
with the number of models. It holds ``next``, the first number not reserved yet, and is
written with optimistic concurrency *before* a number is handed out
(controller/numbering.py). It outlives the model on purpose (a tombstone): the operator
never deletes it (its RBAC has no delete). It goes with the operator's namespace; a
cluster admin may delete those of a namespace gone for good (label
``modelreg.dev/numbers-of=<namespace>``), after which that namespace's models would
number from their remaining versions again.

Reading or writing it is given :data:`TIMEOUT` seconds; anything but an answer (an error,
a refusal, a timeout, a ConfigMap that is not what it should be) is :class:`Unavailable`:
no number is handed out, the create is refused with that message (fail closed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from modelreg.kube import Conflict, Kube

#: the names of the ConfigMaps (then 40 hex digits of sha256("<namespace>/<model>"))
PREFIX = "modelreg-numbers-"
#: label: the namespace whose model the ConfigMap counts for (for an admin's cleanup)
NAMESPACE_LABEL = "modelreg.dev/numbers-of"
#: seconds for each read or write (well within the webhook's timeout, 15 s by default)
TIMEOUT = 5.0


@dataclass(frozen=True)
class Mark:
    """Model ``namespace/model`` has handed out (or reserved) every number below ``next``."""

    namespace: str
    model: str
    next: int
    #: the stored ConfigMap's resourceVersion; None: none is stored yet
    version: str | None = None


class Unavailable(RuntimeError):
    """The mark could not be read or written: no number may be handed out."""


def name_of(namespace: str, model: str) -> str:
    """The ConfigMap of ``namespace/model`` (a namespace name never contains ``/``)."""
    return PREFIX + hashlib.sha256(f"{namespace}/{model}".encode()).hexdigest()[:40]


def to_configmap(mark: Mark, home: str) -> dict[str, Any]:
    """The ConfigMap, in the operator's namespace ``home``, that stores ``mark``."""
    metadata: dict[str, Any] = {
        "name": name_of(mark.namespace, mark.model),
        "namespace": home,
        "labels": {"app.kubernetes.io/managed-by": "modelreg", NAMESPACE_LABEL: mark.namespace},
    }
    if mark.version is not None:
        metadata["resourceVersion"] = mark.version
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {"namespace": mark.namespace, "model": mark.model, "next": str(mark.next)},
    }


def from_configmap(obj: dict[str, Any], namespace: str, model: str) -> Mark:
    """The mark a ConfigMap stores for ``namespace/model``; Unavailable if it stores
    anything else (never guessed: a wrong mark could hand a number out twice)."""
    data = obj.get("data") or {}
    meta = obj.get("metadata") or {}
    next_ = str(data.get("next", ""))
    if data.get("namespace") != namespace or data.get("model") != model or not next_.isdigit():
        raise Unavailable(
            f"version numbers of {namespace}/{model} are unavailable: ConfigMap "
            f"{meta.get('namespace')}/{meta.get('name')} does not hold them as the operator "
            "wrote them (namespace, model, next); a cluster admin must repair it"
        )
    return Mark(namespace, model, int(next_), meta.get("resourceVersion"))


def _reason(e: Exception) -> str:
    if isinstance(e, ApiException):
        return f"{e.status} {e.reason}".strip()
    return f"{type(e).__name__}: {e}"


@dataclass(frozen=True)
class Marks:
    """The marks, as ConfigMaps of namespace ``home`` (the operator's)."""

    home: str
    timeout: float = TIMEOUT

    def _unavailable(self, verb: str, namespace: str, model: str, e: Exception) -> Unavailable:
        return Unavailable(
            f"version numbers of {namespace}/{model} are unavailable: the operator could not "
            f"{verb} its record of them (ConfigMap {self.home}/{name_of(namespace, model)}): "
            f"{_reason(e)}. No number was handed out; try again"
        )

    def read(self, kube: Kube, namespace: str, model: str) -> Mark | None:
        """The stored mark, None if there is none yet."""
        try:
            obj = kube.get_configmap(self.home, name_of(namespace, model), self.timeout)
        except Exception as e:
            raise self._unavailable("read", namespace, model, e) from e
        return None if obj is None else from_configmap(obj, namespace, model)

    def write(self, kube: Kube, mark: Mark) -> Mark:
        """Store ``mark`` over the version it was read at (created, if none); Conflict if
        the stored one changed (or appeared, or went) since."""
        obj = to_configmap(mark, self.home)
        try:
            if mark.version is None:
                out = kube.create_configmap(obj, self.timeout)
            else:
                out = kube.replace_configmap(obj, self.timeout)
        except Conflict:
            raise
        except Exception as e:
            raise self._unavailable("write", mark.namespace, mark.model, e) from e
        return from_configmap(out, mark.namespace, mark.model)
