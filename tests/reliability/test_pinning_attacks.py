"""Every artifact is pinned (issue 15, item 4): a version registered without sha256 is
held to the bytes the operator verified, even when its S3 object is overwritten after
approval. On main at 4483a96 the pods fetched with no checksum and no S3 version, so they
loaded the replacement."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from modelreg.api import annotations as ann
from tests.controller.test_deployments import MD, MV, apps, served
from tests.support.cluster import Cluster, Registries
from tests.support.modelreg import Artifacts, Registry, image, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]


def test_an_artifact_registered_without_sha256_is_held_to_what_was_verified(
    registry: Registry,
    artifacts: Artifacts,
    registries: Registries,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    registry.model("m")
    approved = os.urandom(4096)
    art, sha = artifacts.upload("m/v1/model.bin", approved, checksum=False)
    registry.version("v1", "m", {"uri": art["uri"]}, image(registries, tag="v1").reference)
    registry.wait_condition(MV, "v1", "ArtifactVerified", "True")
    status = registry.get(MV, "v1")["status"]["artifact"]
    assert status["sha256"] == sha  # computed once by the operator
    registry.approve("v1", "alice")
    registry.wait_condition(MV, "v1", "Ready", "True", "Deployable")
    registry.create(MD, "ModelDeployment", "serve", {"modelRef": {"name": "m"}})
    served(registry, "v1")

    # dana overwrites the object after approval
    artifacts.upload("m/v1/model.bin", b"not what was approved", checksum=False)
    dep = apps(registry).read_namespaced_deployment("serve", registry.namespace)
    args = list(dep.spec.template.spec.init_containers[0].args or [])
    assert args[args.index("--sha256") + 1] == sha
    assert args[args.index("--version-id") + 1] == status["versionId"]

    # what a new pod's storage-initializer does with these args, against the real store
    env: dict[str, Any] = {**os.environ, **cluster.env}
    dest = tmp_path / "models"
    out = subprocess.run(
        [sys.executable, "-m", "modelreg", *args[:3], "--dest", str(dest), *args[5:]],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert hashlib.sha256((dest / "model.bin").read_bytes()).hexdigest() == sha


def test_an_approved_tag_pushed_again_never_rolls_out(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """Item 3: after alice approved v1 (its tag resolved to digest A), dana pushes a new
    image to the same tag (digest B). Neither the owner toggling the securityPolicy off
    and on (a re-check) nor a forged status (which makes the operator verify again) gets
    B deployed: the tag is never resolved again, and alice's approval, recorded over A,
    does not count for B."""
    registry.model("m")
    a = image(registries, "serving/sklearn", "prod")
    art, _ = artifacts.upload("m/v1")
    registry.version("v1", "m", art, a.reference)
    registry.wait_condition(MV, "v1", "ImageResolved", "True")
    registry.approve("v1", "alice")
    registry.wait_condition(MV, "v1", "Ready", "True", "Deployable")
    decision = json.loads(registry.get(MV, "v1")["metadata"]["annotations"][ann.DECISIONS])[-1]
    assert decision["image"] == a.pinned  # the record says what alice approved
    registry.create(MD, "ModelDeployment", "serve", {"modelRef": {"name": "m"}})
    served(registry, "v1")
    b = image(registries, "serving/sklearn", "prod")
    assert b.digest != a.digest

    def running() -> str:
        dep = apps(registry).read_namespaced_deployment("serve", registry.namespace)
        return str(dep.spec.template.spec.containers[0].image)

    # the owner toggles the policy: the image is checked again, against digest A
    outside = {"securityPolicy": {"allowedImagePrefixes": ["elsewhere.example/"]}}
    patch_model(registry, outside)
    registry.wait_condition(MV, "v1", "ImageResolved", "False", "SourceNotAllowed")
    patch_model(registry, {"securityPolicy": None})
    registry.wait_condition(MV, "v1", "Ready", "True", "Deployable")
    assert registry.get(MV, "v1")["status"]["image"]["resolved"] == a.pinned
    served(registry, "v1")
    assert running() == a.pinned

    # a status written by someone else: its results are discarded and verified again,
    # pinned by the digest in the signed record of alice's decision, not by the tag
    forged = registry.get(MV, "v1")["status"]
    forged["seal"] = "0" * 64
    registry.api().patch_namespaced_custom_object_status(
        "modelreg.dev", "v1alpha1", registry.namespace, MV, "v1", {"status": forged}
    )
    registry.api("dana").patch_namespaced_custom_object(
        "modelreg.dev",
        "v1alpha1",
        registry.namespace,
        MV,
        "v1",
        {"metadata": {"annotations": {"poke": "1"}}},
    )  # fmt: skip: any annotation change reconciles the version
    wait_for("verified again", lambda: "StatusNotSealed" in [r for r, _ in registry.events("v1")])
    registry.wait_condition(MV, "v1", "Ready", "True", "Deployable")
    assert registry.get(MV, "v1")["status"]["image"]["resolved"] == a.pinned
    time.sleep(2)
    assert running() == a.pinned


def patch_model(registry: Registry, spec: dict[str, Any]) -> None:
    registry.api("dana").patch_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, "registeredmodels", "m", {"spec": spec}
    )
