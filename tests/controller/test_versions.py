"""ModelVersions against the real cluster, S3 server, registries and running operator."""

from __future__ import annotations

import base64
import functools
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from tests.support.cluster import Registries
from tests.support.modelreg import Artifacts, Registry, denied, image, stopped, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.local_env]
MV = "modelversions"
APPROVERS = {"approvers": {"groups": ["ml-approvers"]}}


def test_register_verify_approve(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("fraud", approvalPolicy=APPROVERS)
    art, sha = artifacts.upload("fraud/1/model.tar.gz")
    img = image(registries)
    registry.version("fraud-v1", "fraud", art, img.reference, user="dana", metrics={"auc": 0.93})

    registry.wait_condition(MV, "fraud-v1", "ArtifactVerified", "True", "Verified")
    registry.wait_condition(MV, "fraud-v1", "ImageResolved", "True", "Resolved")
    registry.wait_condition(MV, "fraud-v1", "Ready", "False", "NotApproved")
    status = registry.get(MV, "fraud-v1")["status"]
    assert status["number"] == 1
    assert status["registeredBy"] == "dana"
    assert status["artifact"]["sha256"] == sha
    assert status["artifact"]["versionId"]
    assert status["image"] == {"digest": img.digest, "resolved": img.pinned}
    assert status["approval"]["state"] == "PendingManualApproval"

    registry.approve("fraud-v1", "alice", "AUC up 2 points")
    registry.wait_condition(MV, "fraud-v1", "Ready", "True", "Deployable")
    obj = registry.get(MV, "fraud-v1")
    decision = obj["status"]["approval"]["decisions"][0]
    assert (decision["user"], decision["decision"], decision["comment"]) == (
        "alice",
        "Approved",
        "AUC up 2 points",
    )
    assert decision["time"].endswith("Z")
    # the request annotations were consumed into the record
    assert "modelreg.dev/approval" not in obj["metadata"]["annotations"]
    reasons = [
        r
        for r, _ in wait_for(
            "events",
            lambda: registry.events("fraud-v1") if len(registry.events("fraud-v1")) >= 4 else None,
        )
    ]
    assert {"VersionRegistered", "VersionVerified", "VersionApproved", "VersionReady"} <= set(
        reasons
    ), reasons
    approved = [m for r, m in registry.events("fraud-v1") if r == "VersionApproved"]
    assert approved == ["approved by alice"], approved
    rm = wait_for(
        "model summary",
        lambda: (
            (s := registry.get("registeredmodels", "fraud").get("status", {})).get(
                "latestApprovedVersion"
            )
            and s
        ),
    )
    assert rm["latestApprovedVersion"] == {"name": "fraud-v1", "number": 1}
    assert rm["versionCount"] == 1


def reasons_posted(registry: Registry, name: str, reason: str) -> list[tuple[str, str]]:
    return [e for e in registry.events(name) if e[0] == reason]


def test_missing_artifact_mismatch_and_missing_image(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("m")
    img = image(registries)
    art, _ = artifacts.upload("m/1")
    registry.version("missing", "m", {"uri": f"s3://{artifacts.bucket}/nope"}, img.reference)
    registry.version("mismatch", "m", {**art, "sha256": "0" * 64}, img.reference)
    registry.version("noimage", "m", art, f"{registries.public}/serving/none:1")

    c = registry.wait_condition(MV, "missing", "ArtifactVerified", "False", "ArtifactNotFound")
    assert "does not exist" in c["message"]
    c = registry.wait_condition(MV, "mismatch", "ArtifactVerified", "False", "ChecksumMismatch")
    assert "does not match spec.artifact.sha256 " + "0" * 64 in c["message"]
    assert art["sha256"] not in c["message"]  # what the object holds is not told
    registry.wait_condition(MV, "noimage", "ImageResolved", "False", "ImageNotFound")
    registry.wait_condition(MV, "noimage", "Ready", "False", "ImageNotResolved")
    # each verdict is also a Warning Event with the condition's reason
    for name, reason in (
        ("missing", "ArtifactNotFound"),
        ("mismatch", "ChecksumMismatch"),
        ("noimage", "ImageNotFound"),
    ):
        wait_for(f"a {reason} event", functools.partial(reasons_posted, registry, name, reason))


def create_pull_secret(registry: Registry, registries: Registries, name: str) -> None:
    """A dockerconfigjson Secret with the private registry's credentials."""
    kubernetes.client.CoreV1Api(registry.cluster.api()).create_namespaced_secret(
        registry.namespace,
        {
            "metadata": {"name": name},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {
                ".dockerconfigjson": base64.b64encode(
                    json.dumps(registries.dockerconfigjson()).encode()
                ).decode()
            },
        },
    )


def test_private_image_with_and_without_pull_secret(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("p")
    art, _ = artifacts.upload("p/1")
    img = image(registries, "secret/model", "3.0", private=True)
    registry.version("nosecret", "p", art, img.reference)
    c = registry.wait_condition(MV, "nosecret", "ImageResolved", "False", "Unauthorized")
    assert "pullSecrets" in c["message"]

    create_pull_secret(registry, registries, "regcred")
    spec = {
        "modelRef": {"name": "p"},
        "artifact": art,
        "image": {"reference": img.reference, "pullSecrets": [{"name": "regcred"}]},
    }
    # dana may name the Secret only once she may read it (docs/security.md)
    message = denied(lambda: registry.create(MV, "ModelVersion", "withsecret", spec, user="dana"))
    assert "spec.image.pullSecrets[0]: you may not get secrets 'regcred'" in message
    ns = registry.namespace
    registry.cluster.kubectl(
        "-n", ns, "create", "role", "regcred", "--verb=get", "--resource=secrets",
        "--resource-name=regcred",
    )  # fmt: skip
    registry.cluster.kubectl(
        "-n", ns, "create", "rolebinding", "regcred", "--role=regcred", "--user=dana"
    )
    registry.create(MV, "ModelVersion", "withsecret", spec, user="dana")
    registry.wait_condition(MV, "withsecret", "ImageResolved", "True", "Resolved")
    assert registry.get(MV, "withsecret")["status"]["image"]["digest"] == img.digest


def test_pull_secret_created_later_resolves_the_image(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """A pull Secret created after the version is a verdict still to come (Unknown,
    retried), not Unauthorized for good: the image resolves once the Secret is there."""
    registry.model("late-secret")
    art, _ = artifacts.upload("late-secret/1")
    img = image(registries, "secret/late", "1.0", private=True)
    spec = {
        "modelRef": {"name": "late-secret"},
        "artifact": art,
        "image": {"reference": img.reference, "pullSecrets": [{"name": "latecred"}]},
    }
    registry.create(MV, "ModelVersion", "v", spec)
    c = registry.wait_condition(MV, "v", "ImageResolved", "Unknown", "PullSecretNotFound")
    assert "latecred" in c["message"]
    registry.wait_condition(MV, "v", "Ready", "Unknown", "VerificationPending")

    create_pull_secret(registry, registries, "latecred")
    registry.wait_condition(MV, "v", "ImageResolved", "True", "Resolved", timeout=120)
    assert registry.get(MV, "v")["status"]["image"]["digest"] == img.digest
    registry.wait_condition(MV, "v", "Ready", "False", "NotApproved")


def test_version_waits_for_its_model(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    art, _ = artifacts.upload("late/1")
    registry.version("early", "late-model", art, image(registries).reference)
    c = registry.wait_condition(MV, "early", "Ready", "False", "ModelNotFound")
    assert "does not exist" in c["message"]
    registry.model("late-model")
    registry.wait_condition(MV, "early", "ArtifactVerified", "True")
    assert registry.number("early") == 1


def test_who_may_decide(registry: Registry, artifacts: Artifacts, registries: Registries) -> None:
    registry.model("gov", approvalPolicy=APPROVERS)
    art, _ = artifacts.upload("gov/1")
    img = image(registries).reference
    registry.version("by-dana", "gov", art, img, user="dana")
    registry.version("by-alice", "gov", art, img, user="alice")

    message = denied(lambda: registry.approve("by-dana", "eve"))
    assert "user 'eve' is not an approver of this model" in message
    message = denied(lambda: registry.approve("by-alice", "alice"))
    assert "registered this version and must not approve or reject it" in message
    message = denied(lambda: registry.annotate("by-dana", "bob", approval="Yes"))
    assert 'must be \\"Approved\\" or \\"Rejected\\"' in message or "must be" in message
    # forging the record, directly or through status, does not work
    forged = json.dumps([{"user": "alice", "decision": "Approved", "time": "2026-01-01T00:00:00Z"}])
    message = denied(lambda: registry.annotate("by-dana", "dana", decisions=forged))
    assert "written by modelreg only" in message
    message = denied(lambda: registry.annotate("by-dana", "admin", registered_by="someone"))
    assert "written by modelreg only" in message
    with pytest.raises(ApiException) as e:
        registry.api("alice").patch_namespaced_custom_object_status(
            "modelreg.dev",
            "v1alpha1",
            registry.namespace,
            MV,
            "by-dana",
            {"status": {"approval": {"state": "Approved"}}},
        )
    assert e.value.status == 403
    # bob approves dana's version; alice's own needs bob too
    registry.approve("by-dana", "bob")
    registry.wait_condition(MV, "by-dana", "Approved", "True")
    registry.approve("by-alice", "bob")
    registry.wait_condition(MV, "by-alice", "Approved", "True")


def test_self_approval_allowed_by_policy(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("selfok", approvalPolicy={**APPROVERS, "selfApproval": "Allowed"})
    art, _ = artifacts.upload("selfok/1")
    registry.version("v", "selfok", art, image(registries).reference, user="alice")
    registry.approve("v", "alice")
    registry.wait_condition(MV, "v", "Approved", "True")


def test_two_approvers_rejection_and_reopening(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("two", approvalPolicy={**APPROVERS, "requiredApprovals": 2})
    art, _ = artifacts.upload("two/1")
    registry.version("v", "two", art, image(registries).reference)
    registry.approve("v", "alice")
    c = registry.wait_condition(MV, "v", "Approved", "False", "PendingManualApproval")
    registry.approve("v", "alice")  # the same user twice is still one approver
    c = wait_for(
        "two decisions recorded",
        lambda: (
            len(registry.get(MV, "v")["status"]["approval"]["decisions"]) == 2
            and registry.condition(MV, "v", "Approved")
        ),
    )
    assert c["message"].startswith("1 of 2 required approvals")
    registry.approve("v", "bob")
    registry.wait_condition(MV, "v", "Approved", "True")
    registry.reject("v", "bob", "drift in October data")
    c = registry.wait_condition(MV, "v", "Approved", "False", "Rejected")
    assert registry.get(MV, "v")["status"]["approval"]["state"] == "Rejected"
    registry.wait_condition(MV, "v", "Ready", "False", "Rejected")
    rejected = wait_for(
        "a VersionRejected event",
        lambda: [m for r, m in registry.events("v") if r == "VersionRejected"],
    )
    assert rejected == ["rejected by bob"], rejected
    registry.approve("v", "alice")
    registry.wait_condition(MV, "v", "Approved", "False", "PendingManualApproval")
    decisions = registry.get(MV, "v")["status"]["approval"]["decisions"]
    assert [d["decision"] for d in decisions] == [
        "Approved",
        "Approved",
        "Approved",
        "Rejected",
        "Approved",
    ]


def test_metric_gate(registry: Registry, artifacts: Artifacts, registries: Registries) -> None:
    registry.model("gated", approvalPolicy={"metricGates": [{"metric": "auc", "min": 0.9}]})
    art, _ = artifacts.upload("gated/1")
    registry.version("weak", "gated", art, image(registries).reference, metrics={"auc": 0.8})
    registry.approve("weak", "alice")
    c = registry.wait_condition(MV, "weak", "Approved", "False", "MetricGateFailed")
    assert "below the minimum 0.9" in c["message"]


def test_fifty_concurrent_creates_get_distinct_numbers_in_creation_order(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("many")
    art, _ = artifacts.upload("many/1")
    img = image(registries).reference

    def create(i: int) -> None:
        registry.version(
            f"many-{i:02d}", "many", art, img, validation={"skip": ["Artifact", "Image"]}
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(create, range(50)))

    def numbers() -> dict[str, Any] | None:
        items = registry.api().list_namespaced_custom_object(
            "modelreg.dev", "v1alpha1", registry.namespace, MV
        )["items"]
        got = {i["metadata"]["name"]: (i.get("status") or {}).get("number") for i in items}
        return got if len(got) == 50 and all(got.values()) else None

    got = wait_for("50 numbered versions", numbers, 120)
    items = registry.api().list_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, MV
    )["items"]
    assert sorted(got.values()) == list(range(1, 51)), sorted(
        (
            i["status"].get("number"),
            i["metadata"]["annotations"].get("modelreg.dev/number"),
            i["metadata"]["name"],
        )
        for i in items
    )
    # creation order: ordered by the admission stamp
    items = registry.api().list_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, MV
    )["items"]
    by_stamp = sorted(
        items, key=lambda i: int(i["metadata"]["annotations"]["modelreg.dev/created-at"])
    )
    assert [i["status"]["number"] for i in by_stamp] == list(range(1, 51)), [
        (
            i["metadata"]["name"],
            i["metadata"]["annotations"].get("modelreg.dev/number"),
            i["status"]["number"],
        )
        for i in by_stamp
    ]

    # deleted numbers are never reused, not even the highest one
    (highest,) = [i["metadata"]["name"] for i in items if i["status"]["number"] == 50]
    registry.api().delete_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, MV, highest
    )
    create(99)
    wait_for("number 51", lambda: registry.number("many-99") == 51)


def test_numbers_continue_across_an_operator_restart(
    registry: Registry, artifacts: Artifacts, registries: Registries, dev_env: Any
) -> None:
    registry.model("restart")
    art, _ = artifacts.upload("restart/1")
    img = image(registries).reference
    registry.version("a", "restart", art, img)
    wait_for("a numbered", lambda: registry.number("a"))
    with stopped(dev_env, "operator"), pytest.raises(ApiException) as refused:
        # no operator means no admission webhook: creates fail closed rather than go unrecorded
        registry.version("b", "restart", art, img)
    assert 'failed calling webhook \\"approval-record.modelreg.dev\\"' in refused.value.body
    registry.version("b", "restart", art, img)
    wait_for("b numbered 2", lambda: registry.number("b") == 2)


def test_s3_down_is_unknown_and_recovers(
    registry: Registry, artifacts: Artifacts, registries: Registries, dev_env: Any
) -> None:
    registry.model("outage")
    art, _ = artifacts.upload("outage/1")
    img = image(registries).reference
    with stopped(dev_env, "minio"):
        registry.version("v", "outage", art, img)
        c = registry.wait_condition(MV, "v", "ArtifactVerified", "Unknown", "StoreUnreachable")
        assert "cannot reach" in c["message"]
        registry.wait_condition(MV, "v", "Ready", "Unknown", "VerificationPending")
    registry.wait_condition(MV, "v", "ArtifactVerified", "True", "Verified", timeout=90)


def test_record_written_without_the_webhook_does_not_count(
    registry: Registry, artifacts: Artifacts, registries: Registries, dev_env: Any
) -> None:
    """If both webhook configurations are removed, a forged record is detected and
    ignored."""
    registry.model("forge", approvalPolicy=APPROVERS)
    art, _ = artifacts.upload("forge/1")
    registry.version("v", "forge", art, image(registries).reference, user="dana")
    registry.wait_condition(MV, "v", "Ready", "False", "NotApproved")
    with stopped(dev_env, "operator"):  # restarting it re-registers the webhooks
        registry.cluster.kubectl(
            "delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", "modelreg.dev"
        )
        forged = json.dumps(
            [{"user": "alice", "decision": "Approved", "time": "2026-11-22T10:00:00Z"}]
        )
        registry.annotate("v", "dana", decisions=forged)  # nothing stops it now
    c = registry.wait_condition(MV, "v", "Approved", "False", "RecordTampered")
    assert "was not written by modelreg's admission webhook" in c["message"]
    registry.wait_condition(MV, "v", "Ready", "False", "RecordTampered")
    assert registry.get(MV, "v")["status"]["approval"]["decisions"] == []


def test_without_the_mutating_webhook_the_validating_one_refuses_a_forged_record(
    registry: Registry, artifacts: Artifacts, registries: Registries, dev_env: Any
) -> None:
    """The validating webhook checks the final object: with the mutating webhook gone (or
    undone by another one after it), a hand-written record or an unrecorded approval
    request is refused, and nothing is written."""
    registry.model("guarded", approvalPolicy=APPROVERS)
    art, _ = artifacts.upload("guarded/1")
    registry.version("v", "guarded", art, image(registries).reference, user="dana")
    registry.wait_condition(MV, "v", "Ready", "False", "NotApproved")
    before = registry.get(MV, "v")["metadata"]["annotations"]
    forged = json.dumps([{"user": "alice", "decision": "Approved", "time": "2026-11-22T10:00:00Z"}])
    try:
        # the operator runs and answers the validating webhook; the mutating one is gone
        registry.cluster.kubectl("delete", "mutatingwebhookconfiguration", "modelreg.dev")
        message = json.loads(denied(lambda: registry.annotate("v", "dana", decisions=forged)))
        assert message["message"].startswith(
            'admission webhook "version-guard.modelreg.dev" denied the request: the decision '
            "added to modelreg.dev/decisions is not 'dana''s own decision"
        ), message
        # alice is an approver, but with nothing to record it her request would stay on
        # the object as a decision nobody checked
        message = json.loads(denied(lambda: registry.approve("v", "alice")))
        assert "annotation modelreg.dev/approval is still set" in message["message"], message
    finally:
        with stopped(dev_env, "operator"):  # starting again re-registers the webhook
            pass
    assert registry.get(MV, "v")["metadata"]["annotations"] == before
    registry.approve("v", "alice")
    registry.wait_condition(MV, "v", "Approved", "True", "Approved")
