"""The Argo CD health checks on live objects: what Argo CD would show while a version
waits for approval, is approved, and rolls out (the operator running in the cluster)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gitops import argocd
from tests.gitops.argocd import Health
from tests.support.cluster import Registries
from tests.support.modelreg import Artifacts, Registry, image, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]
RM, MV, MD = "registeredmodels", "modelversions", "modeldeployments"
KIND = {RM: "RegisteredModel", MV: "ModelVersion", MD: "ModelDeployment"}


def health(registry: Registry, plural: str, name: str) -> Health:
    return argocd.run(argocd.script(KIND[plural]).read_text(), registry.get(plural, name))


def wait_health(
    registry: Registry, plural: str, name: str, status: str, seen: list[Health] | None = None
) -> Health:
    """Poll the health of a live object until it has ``status``; every verdict on the way
    is appended to ``seen``."""

    def check() -> Health | None:
        h = health(registry, plural, name)
        if seen is not None and (not seen or seen[-1] != h):
            seen.append(h)
        return h if h.status == status else None

    return wait_for(f"{KIND[plural]} {name} to be {status}", check, timeout=90)  # type: ignore[no-any-return]


def test_pending_then_approved_version_and_its_deployment(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    policy: dict[str, Any] = {
        "requiredApprovals": 1,
        "approvers": {"groups": ["ml-approvers"]},
        "selfApproval": "Forbidden",
    }
    registry.model("churn", approvalPolicy=policy)
    wait_health(registry, RM, "churn", "Healthy")
    art, _ = artifacts.upload("churn/1/model.tar.gz")
    img = image(registries, "serving/churn", "1.0")
    registry.version("churn-v1", "churn", art, img.reference, user="dana")

    # registered and verified, waiting for an approver: Suspended, not Progressing
    assert wait_health(registry, MV, "churn-v1", "Suspended") == Health(
        "Suspended", "waiting for approval: 0 of 1 required approvals"
    )
    registry.create(MD, "ModelDeployment", "churn", {"modelRef": {"name": "churn"}, "replicas": 2})
    assert wait_health(registry, MD, "churn", "Suspended") == Health(
        "Suspended", "no version of this model is deployable (verified and approved)"
    )

    registry.approve("churn-v1", "alice", "looks good")
    assert wait_health(registry, MV, "churn-v1", "Healthy") == Health(
        "Healthy", "verified and approved"
    )
    seen: list[Health] = []
    assert wait_health(registry, MD, "churn", "Healthy", seen) == Health(
        "Healthy", "serving churn-v1 (following the latest deployable version, churn-v1)"
    )
    # on the way: nothing but waiting, rolling out and serving (never Degraded)
    assert {h.status for h in seen} <= {"Suspended", "Progressing", "Healthy"}, seen
    assert health(registry, RM, "churn") == Health("Healthy", "1 version(s)")


def test_rejected_version_is_degraded(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("fraud", approvalPolicy={"approvers": {"groups": ["ml-approvers"]}})
    art, _ = artifacts.upload("fraud/1/model.tar.gz")
    img = image(registries, "serving/fraud", "1.0")
    registry.version("fraud-v1", "fraud", art, img.reference, user="dana")
    wait_health(registry, MV, "fraud-v1", "Suspended")
    registry.reject("fraud-v1", "bob", "bias found")
    assert wait_health(registry, MV, "fraud-v1", "Degraded") == Health(
        "Degraded", "rejected by bob"
    )
