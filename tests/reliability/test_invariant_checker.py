"""The invariant checker itself catches each kind of violation (fed events directly)."""

from __future__ import annotations

import json
from typing import Any

from tests.support.invariants import InvariantChecker

DIGEST = "r.io/s@sha256:" + "a" * 64


def version(
    name: str, rv: int, ready: bool, number: int = 1, decisions: Any = ()
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": str(rv),
            "annotations": {"modelreg.dev/number": str(number)},
        },
        "spec": {"modelRef": {"name": "m"}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "image": {"resolved": DIGEST},
            "approval": {"decisions": list(decisions)},
        },
    }


def deployment(rv: int, version: str, image: str = DIGEST, name: str = "serve") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"dep-{name}",
            "resourceVersion": str(rv),
            "labels": {"modelreg.dev/deployment": "serve"},
        },
        "spec": {
            "template": {
                "metadata": {"annotations": {"modelreg.dev/version-name": version}},
                "spec": {"containers": [{"name": "model", "image": image}]},
            }
        },
    }


def checker() -> InvariantChecker:
    return InvariantChecker(api=None, namespace="ns")


def test_a_revision_of_a_ready_version_is_fine_and_one_of_an_unready_version_is_not() -> None:
    c = checker()
    c._on_version("ADDED", version("v1", 10, ready=False))
    c._on_version("MODIFIED", version("v1", 20, ready=True))
    c._on_deployment("ADDED", deployment(30, "v1"))
    c._on_version("MODIFIED", version("v1", 40, ready=False))
    assert c.stop() == []
    c = checker()
    c._on_version("ADDED", version("v1", 10, ready=False))
    c._on_deployment("ADDED", deployment(15, "v1"))
    c._on_version("MODIFIED", version("v1", 20, ready=True))
    assert c.stop() == ["serve points at v1, not Ready as of rv 15"]


def test_tags_second_deployments_reused_numbers_and_rewritten_decisions() -> None:
    c = checker()
    approved = [{"user": "alice", "decision": "Approved"}]
    c._on_version("ADDED", version("v1", 10, ready=True, decisions=approved))
    c._on_version("ADDED", version("v2", 11, ready=True, number=1))
    c._on_version("MODIFIED", version("v1", 12, ready=True, decisions=[]))
    c._on_deployment("ADDED", deployment(13, "v1", image="r.io/s:latest"))
    c._on_deployment("ADDED", deployment(14, "v1", name="serve-2"))
    found = c.stop()
    assert "version number m/1 reused by v2" in found
    assert any("decisions of v1 changed or disappeared" in v for v in found)
    assert "serve runs r.io/s:latest, not pinned by digest" in found
    assert "a second Deployment serve-2 for serve" in found


def test_a_revision_must_run_what_the_approvals_were_recorded_over() -> None:
    approved = [
        {"user": "alice", "decision": "Approved", "image": DIGEST, "artifactSha256": "a" * 64}
    ]

    def bound(rv: int) -> dict[str, Any]:
        mv = version("v1", rv, ready=True)
        mv["metadata"]["annotations"]["modelreg.dev/decisions"] = json.dumps(approved)
        return mv

    def fetching(rv: int, sha: str) -> dict[str, Any]:
        dep = deployment(rv, "v1")
        dep["spec"]["template"]["spec"]["initContainers"] = [
            {"name": "storage-initializer", "args": ["fetch-artifact", "--sha256", sha]}
        ]
        return dep

    c = checker()
    c._on_version("ADDED", bound(10))
    c._on_deployment("ADDED", fetching(20, "a" * 64))
    assert c.stop() == []
    c = checker()
    c._on_version("ADDED", bound(10))
    c._on_deployment("ADDED", fetching(20, "b" * 64))
    (violation,) = c.stop()
    assert "the approvals of v1 were recorded over" in violation


def test_a_part_recorded_as_unverified_is_not_compared() -> None:
    """validation.skip [Image]: the decision records no image; the sha256 still binds."""
    approved = [{"user": "alice", "decision": "Approved", "artifactSha256": "a" * 64}]
    mv = version("v1", 10, ready=True)
    mv["metadata"]["annotations"]["modelreg.dev/decisions"] = json.dumps(approved)
    for sha, expected in (("a" * 64, 0), ("b" * 64, 1)):
        c = checker()
        c._on_version("ADDED", mv)
        dep = deployment(20, "v1")
        dep["spec"]["template"]["spec"]["initContainers"] = [
            {"name": "storage-initializer", "args": ["--sha256", sha]}
        ]
        c._on_deployment("ADDED", dep)
        assert len(c.stop()) == expected
