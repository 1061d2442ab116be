"""The SDK against the real local cluster, S3 server and registries: register with lineage,
approve (and be denied), deploy, compare, roll back, and read the audit trail."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from modelreg.sdk import Client, Denied, NotFound, VerificationFailed
from modelreg.sdk.upload import pack_directory
from tests.sdk.conftest import git
from tests.support.cluster import Registries
from tests.support.modelreg import Artifacts, Registry, image

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]
APPROVERS = {"approvers": {"groups": ["ml-approvers"]}}
DATASET = "s3://data/tx/2026-10/"


def packed_sha(directory: Path) -> str:
    buf = io.BytesIO()
    pack_directory(directory, buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def test_register_approve_deploy_compare_rollback_and_history(
    registry: Registry,
    registries: Registries,
    clients: Callable[[str], Client],
    git_repo: Path,
) -> None:
    registry.model("fraud", approvalPolicy=APPROVERS)
    dana, alice, bob, eve = (clients(u) for u in ("dana", "alice", "bob", "eve"))
    head = git(git_repo, "rev-parse", "HEAD")

    started = time.monotonic()
    v1 = dana.register(
        "fraud",
        git_repo / "model",
        image=image(registries, "serving/sklearn", "sdk-v1").reference,
        datasets=[DATASET],
        parameters={"max_depth": 8, "learning_rate": 0.05},
        metrics={"auc": 0.91, "latency_p95_ms": 30},
        training_image="registry.example.com/train/fraud:1",
        description="first",
        wait=True,
        timeout=60,
    )
    print(f"register + verify: {time.monotonic() - started:.1f}s")
    assert v1.number == 1
    assert v1.name.startswith("fraud-")
    assert v1.registered_by == "dana"
    # the artifact: the directory as a reproducible tar.gz, its sha256 confirmed by the store
    assert v1.spec.artifact.uri.endswith("/model.tar.gz")
    assert v1.spec.artifact.sha256 == packed_sha(git_repo / "model")
    assert v1.status.artifact is not None
    assert v1.status.artifact.sha256 == v1.spec.artifact.sha256
    # lineage captured from git (credentials stripped from the remote), merged with arguments
    code = v1.spec.lineage.code
    assert code is not None
    assert code.repository == "https://git.example.com/ml/fraud.git"
    assert code.commit == head
    assert code.path == "model"
    assert v1.spec.tags["lineage.modelreg.dev/git-dirty"] == "false"
    assert v1.spec.tags["lineage.modelreg.dev/python"].count(".") == 2
    assert int(v1.spec.tags["lineage.modelreg.dev/packages-count"]) > 10
    assert v1.spec.lineage.parameters == {"max_depth": "8", "learning_rate": "0.05"}
    assert [d.uri for d in v1.spec.lineage.datasets] == [DATASET]
    assert v1.spec.lineage.training_image == "registry.example.com/train/fraud:1"

    # eve is no approver: denied with the webhook's reason; nothing recorded
    with pytest.raises(Denied, match="not an approver"):
        eve.approve(v1.name, "let me")
    # dana registered it: self-approval is forbidden
    with pytest.raises(Denied):
        dana.approve(v1.name)
    alice.approve(v1.name, "baseline looks good")
    registry.wait_condition("modelversions", v1.name, "Ready", "True", "Deployable")

    dep = dana.deploy("fraud", "serve", wait=True, timeout=60)
    assert dep.current == v1.name

    # a second version from a dirty working tree, with better metrics
    (git_repo / "model" / "config.json").write_text('{"max_depth": 10}\n')
    v2 = dana.register(
        "fraud",
        git_repo / "model",
        image=image(registries, "serving/sklearn", "sdk-v2").reference,
        datasets=[DATASET],
        parameters={"max_depth": 10, "learning_rate": 0.05},
        metrics={"auc": 0.93, "latency_p95_ms": 28},
        wait=True,
        timeout=60,
    )
    assert v2.number == 2
    assert v2.spec.tags["lineage.modelreg.dev/git-dirty"] == "true"
    bob.approve(v2.name, "AUC up 2 points")
    assert dana.wait_deployed("serve", version=v2.name, timeout=60).current == v2.name

    assert [v.number for v in dana.versions("fraud")] == [1, 2]
    assert dana.get("fraud:2").name == v2.name

    cmp = dana.compare(v1.name, v2.name)
    auc = next(m for m in cmp.metrics if m.name == "auc")
    assert auc.delta == pytest.approx(0.02)
    assert [(p.field, p.a, p.b) for p in cmp.parameters] == [("max_depth", "8", "10")]
    changed = {d.field for d in cmp.lineage}
    assert {"tags.lineage.modelreg.dev/git-dirty", "artifact.sha256", "image"} <= changed
    assert "code.commit" not in changed

    placed = dana.where(v2.name)
    assert [(p.deployment, p.serving) for p in placed] == [("serve", True)]

    # roll back to the previous good version (from status.history)
    rolled = dana.rollback("serve")
    assert rolled.rollback_to == v1.name
    assert dana.wait_deployed("serve", version=v1.name, timeout=60).current == v1.name
    assert dana.where(v2.name) == []

    uses = dana.lineage(DATASET.rstrip("/"))
    assert [(u.version, [p.deployment for p in u.deployments]) for u in uses] == [
        (v1.name, ["serve"]),
        (v2.name, []),
    ]

    # the audit trail: every step, in time order, with who did it
    events = dana.history("fraud")
    steps = [(e.event, e.version, e.user) for e in events]
    assert steps.index(("Registered", v1.name, "dana")) < steps.index(
        ("Approved", v1.name, "alice")
    )
    assert ("Approved", v2.name, "bob") in steps
    assert not any(e.user == "eve" for e in events)
    approvals = [e for e in events if e.event == "Approved"]
    assert [e.detail for e in approvals] == ["baseline looks good", "AUC up 2 points"]
    kinds = [e.event for e in events]
    assert kinds.index("Deployed") < kinds.index("RolledBack")
    seconds = [e.time.replace(microsecond=0) for e in events if e.time]
    assert seconds == sorted(seconds)
    # the deployment's own trail
    dep_events = dana.history("serve")
    assert {e.version for e in dep_events if e.deployment == "serve"} == {v1.name, v2.name}


def test_connection_from_context_and_clear_errors(
    registry: Registry,
    registries: Registries,
    artifacts: Artifacts,
    clients: Callable[[str], Client],
) -> None:
    registry.model("m")
    dana = clients("dana")
    with pytest.raises(NotFound):
        dana.get("no-such-version")
    with pytest.raises(NotFound):
        dana.history("no-such-model")
    art, _ = artifacts.upload("m/bad", b"model bytes")
    with pytest.raises(VerificationFailed, match="ChecksumMismatch"):
        dana.register(
            "m",
            uri=art["uri"],
            sha256="0" * 64,
            image=image(registries, "serving/sklearn", "bad").reference,
            capture_lineage=False,
            wait=True,
            timeout=60,
        )
    v = dana.register(
        "m",
        uri=art["uri"],
        sha256=art["sha256"],
        name="m-good",
        image=image(registries, "serving/sklearn", "good").reference,
        wait=True,
        timeout=60,
    )
    assert (v.name, v.number) == ("m-good", 2)
    with pytest.raises(Denied):
        dana.reject("m-good")  # self-decision
    rejected = clients("bob").reject("m-good", "leaks labels")
    assert rejected.name == "m-good"
    trail = dana.history("m")
    assert ("Rejected", "bob", "leaks labels") in [(e.event, e.user, e.detail) for e in trail]
