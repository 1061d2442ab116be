"""Retention: archive the versions a model's ``retention.maxVersions`` retires.

The operator archives through the API server like a person would (annotation
``modelreg.dev/archived``), so the admission webhook records who did it (the operator's
own account, in ``modelreg.dev/archived-by``) and refuses to archive a version that a
ModelDeployment serves, even one that started serving a moment ago. A deployment's
rollback target (the newest other version that rolled out there) is kept too.
"""

from __future__ import annotations

import logging
from typing import Any

from modelreg import retention
from modelreg.api import annotations as ann
from modelreg.api.model_deployment import RolloutResult
from modelreg.api.model_version import ApprovalState
from modelreg.api.registered_model import RegisteredModelSpec
from modelreg.kube import Kube

log = logging.getLogger(__name__)


def _in_use(deployments: list[dict[str, Any]], model: str) -> tuple[set[str], set[int]]:
    """Names and numbers of versions a ModelDeployment of ``model`` serves, targets, pins
    or would roll back to (the newest other version that rolled out there: retention
    never takes a deployment's way back)."""
    names: set[str] = set()
    numbers: set[int] = set()
    for md in deployments:
        spec, status = md.get("spec") or {}, md.get("status") or {}
        if (spec.get("modelRef") or {}).get("name") != model:
            continue
        refs = [status.get("currentVersion"), status.get("targetVersion"), spec.get("version")]
        current = (status.get("currentVersion") or {}).get("name")
        fallback = next(
            (
                h
                for h in status.get("history") or []  # newest first
                if h.get("result") == RolloutResult.SUCCEEDED and h.get("name") != current
            ),
            None,
        )
        for ref in (*refs, fallback):
            if ref and ref.get("name"):
                names.add(ref["name"])
            if ref and ref.get("number"):
                numbers.add(int(ref["number"]))
    return names, numbers


def apply_retention(kube: Kube, namespace: str, model: str, rm: dict[str, Any]) -> list[str]:
    """Archive what the model's retention policy retires; the names archived."""
    max_versions = RegisteredModelSpec.model_validate(rm.get("spec") or {}).retention.max_versions
    if max_versions is None:
        return []
    names, numbers = _in_use(kube.list_objects("modeldeployments", namespace), model)
    states = []
    for mv in kube.versions_of(namespace, model):
        status = mv.get("status") or {}
        number = status.get("number")
        if not number:
            continue  # not registered yet: counts as pending
        name = mv["metadata"]["name"]
        states.append(
            retention.VersionState(
                name=name,
                number=number,
                approval=ApprovalState(
                    (status.get("approval") or {}).get("state", ApprovalState.PENDING)
                ),
                archived=ann.retired(mv["metadata"].get("annotations")),
                in_use=name in names or number in numbers or bool(status.get("deployments")),
            )
        )
    archived = []
    for name in retention.to_archive(states, max_versions):
        refused = kube.annotate(
            "modelversions",
            namespace,
            name,
            {
                ann.ARCHIVED: "true",
                ann.ARCHIVE_COMMENT: f"retention policy: only the newest {max_versions} "
                "versions stay active",
            },
        )
        if refused:
            log.info(f"retention could not archive {namespace}/{name}: {refused}")
            continue
        archived.append(name)
    return archived
