"""Lifecycle and governance against the real cluster, S3 server and registry: retention
archives by policy (never a deployed, pending or latest approved version), and the
security policy refuses or flags what it should."""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any

import pytest

from tests.controller.test_deployments import MD, MV, deployment, served
from tests.support.cluster import Registries
from tests.support.modelreg import Artifacts, Registry, denied, image, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]


def register(
    registry: Registry, artifacts: Artifacts, registries: Registries, name: str, model: str = "m"
) -> None:
    art, _ = artifacts.upload(f"{model}/{name}")
    registry.version(name, model, art, image(registries, "serving/sklearn", name).reference)
    registry.wait_condition(MV, name, "ImageResolved", "True")


def archived(registry: Registry) -> set[str]:
    return {
        mv["metadata"]["name"]
        for mv in registry.api().list_namespaced_custom_object(
            "modelreg.dev", "v1alpha1", registry.namespace, MV
        )["items"]
        if (mv["metadata"].get("annotations") or {}).get("modelreg.dev/archived") == "true"
    }


def test_retention_archives_beyond_the_newest_n_but_never_deployed_pending_or_latest_approved(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("m", retention={"maxVersions": 2})
    for name in ("v1", "v2", "v3", "v4", "v5"):
        register(registry, artifacts, registries, name)
    registry.approve("v1", "alice")
    deployment(registry)
    served(registry, "v1")
    registry.approve("v2", "alice")  # the latest approved: the deployment moves to it
    served(registry, "v2")
    registry.reject("v3", "bob")
    registry.reject("v5", "bob")
    # newest 2: v5, v4. Beyond: v3 (rejected) goes; v2 is served and the latest approved;
    # v1 is the deployment's way back (it rolled out there before v2): kept
    wait_for("retention to archive v3", lambda: archived(registry) == {"v3"})
    v3 = registry.get(MV, "v3")
    notes = v3["metadata"]["annotations"]
    assert notes["modelreg.dev/archive-comment"].startswith("retention policy: only the newest 2")
    assert notes["modelreg.dev/archived-by"]  # the operator's own account, recorded
    assert notes["modelreg.dev/archived-by"] not in {"alice", "bob", "dana"}
    wait_for("v3's stage", lambda: registry.get(MV, "v3")["status"]["stage"] == "Archived")
    wait_for(
        "the VersionArchived event",
        lambda: "VersionArchived" in {reason for reason, _ in registry.events("v3")},
    )
    ready = registry.condition(MV, "v3", "Ready")
    assert ready is not None
    assert ready["reason"] == "Archived"
    # v4 (pending) is never archived, even once it falls beyond the newest 2
    register(registry, artifacts, registries, "v6")
    registry.reject("v6", "bob")
    register(registry, artifacts, registries, "v7")
    registry.reject("v7", "bob")
    wait_for("v5 archived", lambda: "v5" in archived(registry))
    assert "v4" not in archived(registry)
    assert "v2" not in archived(registry)
    assert "v1" not in archived(registry)
    # the record (who archived, numbers, decisions) is kept: the signature still verifies,
    # so the archived version's status still shows its decisions
    assert registry.get(MV, "v3")["status"]["approval"]["state"] == "Rejected"


def test_archived_versions_cannot_be_deployed_and_archiving_a_served_version_is_refused(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("m")
    register(registry, artifacts, registries, "v1")
    registry.approve("v1", "alice")
    deployment(registry)
    served(registry, "v1")
    message = denied(lambda: registry.annotate("v1", "dana", archived="true"))
    assert "must not be archived while ModelDeployment(s) serve serve it" in message
    register(registry, artifacts, registries, "v2")
    registry.approve("v2", "alice")
    served(registry, "v2")
    registry.annotate("v1", "dana", archived="true")
    assert registry.get(MV, "v1")["metadata"]["annotations"]["modelreg.dev/archived-by"] == "dana"
    registry.create(
        MD, "ModelDeployment", "pinned", {"modelRef": {"name": "m"}, "version": {"name": "v1"}}
    )
    c = registry.wait_condition(MD, "pinned", "Ready", "False", "VersionNotApproved")
    assert "Archived" in c["message"]


def test_security_policy_refuses_sources_at_admission_and_flags_versions_when_tightened(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    bucket = artifacts.bucket
    registry.model(
        "m",
        securityPolicy={
            "allowedArtifactPrefixes": [f"s3://{bucket}/approved/"],
            "allowedImagePrefixes": [f"{registries.public}/serving/"],
        },
    )
    art, _ = artifacts.upload("elsewhere/model")
    img = image(registries, "serving/sklearn", "p1").reference
    message = denied(lambda: registry.version("outside", "m", art, img))
    assert "outside RegisteredModel m's securityPolicy.allowedArtifactPrefixes" in message
    good, _ = artifacts.upload("approved/model")
    other = image(registries, "other-team/sklearn", "p1").reference
    message = denied(lambda: registry.version("outside-image", "m", good, other))
    assert "securityPolicy.allowedImagePrefixes" in message
    registry.version("inside", "m", good, img)
    registry.wait_condition(MV, "inside", "ArtifactVerified", "True")
    registry.wait_condition(MV, "inside", "ImageResolved", "True")

    # tightened later: the existing version stops being deployable, with the reason
    registry.api().patch_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, "registeredmodels", "m",
        {"spec": {"securityPolicy": {"allowedImagePrefixes": [f"{registries.public}/prod/"]}}},
    )  # fmt: skip
    c = registry.wait_condition(MV, "inside", "ImageResolved", "False", "SourceNotAllowed")
    assert f"{registries.public}/prod/" in c["message"]
    ready = registry.wait_condition(MV, "inside", "Ready", "False", "ImageNotResolved")
    assert "securityPolicy.allowedImagePrefixes" in ready["message"]
    # and relaxed again: resolved again
    registry.api().patch_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, "registeredmodels", "m",
        {"spec": {"securityPolicy": {"allowedImagePrefixes": None}}},
    )  # fmt: skip
    registry.wait_condition(MV, "inside", "ImageResolved", "True")


def test_required_encryption_is_checked_from_the_store(
    registry: Registry, artifacts: Artifacts, registries: Registries, s3: Any
) -> None:
    registry.model("m", securityPolicy={"requiredArtifactEncryption": "SSE-S3"})
    plain, _ = artifacts.upload("m/plain")
    data = os.urandom(1024)
    key = f"m/encrypted-{uuid.uuid4().hex[:6]}"
    s3.put_object(
        Bucket=artifacts.bucket,
        Key=key,
        Body=data,
        ChecksumAlgorithm="SHA256",
        ServerSideEncryption="AES256",
    )
    encrypted = {
        "uri": f"s3://{artifacts.bucket}/{key}",
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    img = image(registries, "serving/sklearn", "enc").reference
    registry.version("plain", "m", plain, img)
    registry.version("encrypted", "m", encrypted, img)
    c = registry.wait_condition(MV, "plain", "ArtifactVerified", "False", "EncryptionRequired")
    assert "securityPolicy.requiredArtifactEncryption is SSE-S3" in c["message"]
    assert "without server-side encryption" in c["message"]
    registry.wait_condition(MV, "encrypted", "ArtifactVerified", "True")
    assert registry.get(MV, "encrypted")["status"]["artifact"]["encryption"] == "AES256"
    # SSE-KMS is a different requirement
    registry.api().patch_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, "registeredmodels", "m",
        {"spec": {"securityPolicy": {"requiredArtifactEncryption": "SSE-KMS"}}},
    )  # fmt: skip
    c = registry.wait_condition(MV, "encrypted", "ArtifactVerified", "False", "EncryptionRequired")
    assert "encrypted with AES256: re-upload it with SSE-KMS" in c["message"]
