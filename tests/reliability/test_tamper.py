"""What changes under an approved version: a new image pushed under its tag, or its
artifact overwritten in the store. Neither reaches production: the Deployment runs the
digest that was approved, and a tampered artifact fails the storage initializer, so the
rollout fails and rolls back. The invariant checker watches both."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from modelreg.devenv import manifests
from tests.controller.test_deployments import MD, MV, deployment, ready_version, served
from tests.support.cluster import Cluster, Registries
from tests.support.invariants import InvariantChecker
from tests.support.modelreg import Artifacts, Registry, stopped, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]


@pytest.fixture
def checked(cluster: Cluster, registry: Registry) -> Iterator[Registry]:
    checker = InvariantChecker(cluster.api(), registry.namespace).start()
    yield registry
    violations = checker.stop()
    assert not violations, "\n".join(violations)


def served_image(registry: Registry) -> str:
    apps = kubernetes.client.AppsV1Api(registry.cluster.api())
    dep = apps.read_namespaced_deployment("serve", registry.namespace)
    return str(dep.spec.template.spec.containers[0].image)


def test_an_image_pushed_under_the_approved_tag_never_reaches_the_deployment(
    checked: Registry, artifacts: Artifacts, registries: Registries, dev_env: Any
) -> None:
    registry = checked
    registry.model("m")
    approved = registries.push("serving/swap", "stable")
    art, _ = artifacts.upload("m/v1")
    registry.version("v1", "m", art, approved.reference)
    registry.approve("v1", "alice")
    registry.wait_condition(MV, "v1", "Ready", "True", "Deployable")
    deployment(registry)
    served(registry, "v1")
    assert served_image(registry) == approved.pinned

    swapped = registries.push("serving/swap", "stable")  # same tag, other content
    assert swapped.digest != approved.digest
    # everything that could make the operator look again: a restart (every object is
    # resumed), the Deployment deleted by hand, a new version under the same tag
    with stopped(dev_env, "operator"):
        pass
    apps = kubernetes.client.AppsV1Api(registry.cluster.api())
    apps.delete_namespaced_deployment("serve", registry.namespace)
    wait_for(
        "the Deployment to be restored",
        lambda: served_image(registry) if _exists(apps, registry.namespace) else None,
    )
    art2, _ = artifacts.upload("m/v2")
    registry.version("v2", "m", art2, swapped.reference)
    registry.wait_condition(MV, "v2", "ImageResolved", "True")
    time.sleep(3)
    assert served_image(registry) == approved.pinned
    assert registry.get(MV, "v1")["status"]["image"]["digest"] == approved.digest
    assert registry.get(MV, "v2")["status"]["image"]["digest"] == swapped.digest
    # the new image runs only once a version that resolved to it is approved
    registry.approve("v2", "alice")
    served(registry, "v2")
    assert served_image(registry) == swapped.pinned


def _exists(apps: kubernetes.client.AppsV1Api, namespace: str) -> bool:
    return any(d.metadata.name == "serve" for d in apps.list_namespaced_deployment(namespace).items)


def init_crashloop_stage(name: str, namespace: str, version: int) -> dict[str, Any]:
    """A KWOK stage: the storage initializer of this version's pods exits 1 and
    crash-loops, as a real kubelet reports it when ``fetch-artifact`` refuses."""
    status = """{{ $now := Now }}
phase: Pending
conditions:
- {type: PodScheduled, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Initialized, status: "False", reason: ContainersNotInitialized,
   lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: "False", reason: ContainersNotReady,
   lastTransitionTime: {{ $now | Quote }}}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 3
  lastState:
    terminated: {exitCode: 1, reason: Error, message: "sha256 mismatch",
                 startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}
  state:
    waiting: {reason: CrashLoopBackOff, message: "back-off restarting failed container"}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  state:
    waiting: {reason: PodInitializing}
{{ end }}
startTime: {{ $now | Quote }}
"""
    return manifests.pod_stage(
        name,
        [
            {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
            {"key": ".metadata.namespace", "operator": "In", "values": [namespace]},
            {
                "key": '.metadata.labels["modelreg.dev/version"]',
                "operator": "In",
                "values": [str(version)],
            },
            {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
        ],
        status,
        weight=10,
    )


def test_an_artifact_overwritten_after_approval_fails_the_initializer_and_rolls_back(
    checked: Registry, artifacts: Artifacts, registries: Registries, tmp_path: Path
) -> None:
    registry = checked
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry, version={"name": "v1"})
    served(registry, "v1")
    _, art2 = ready_version(registry, artifacts, registries, "v2", "m")
    # after the approval, someone with full rights on the bucket replaces the model: an
    # overwrite alone leaves the verified S3 version, which the pods fetch, so they delete
    # that version too
    key = art2["uri"].removeprefix(f"s3://{artifacts.bucket}/")
    verified = registry.get(MV, "v2")["status"]["artifact"]["versionId"]
    artifacts.upload(key, b"not the model that was approved")
    artifacts.s3.delete_object(Bucket=artifacts.bucket, Key=key, VersionId=verified)

    custom = kubernetes.client.CustomObjectsApi(registry.cluster.api())
    stage = init_crashloop_stage(f"tamper-{registry.namespace}", registry.namespace, 2)
    custom.create_cluster_custom_object("kwok.x-k8s.io", "v1alpha1", "stages", stage)
    try:
        registry.api().patch_namespaced_custom_object(
            "modelreg.dev", "v1alpha1", registry.namespace, MD, "serve",
            {"spec": {"version": {"name": "v2"}}},
        )  # fmt: skip

        def rolled_back() -> dict[str, Any] | None:
            status = registry.get(MD, "serve").get("status") or {}
            history = status.get("history") or []
            failed = [h for h in history if h["name"] == "v2" and h["result"] == "Failed"]
            current = (status.get("currentVersion") or {}).get("name")
            return failed[0] if failed and current == "v1" else None

        failure = wait_for("v2 to fail and v1 to be served again", rolled_back, timeout=90)
    finally:
        custom.delete_cluster_custom_object(
            "kwok.x-k8s.io", "v1alpha1", "stages", stage["metadata"]["name"]
        )
    assert failure["reason"] == "StorageInitializerFailed"
    rolled = registry.condition(MD, "serve", "RolledBack") or {}
    assert rolled.get("status") == "True", rolled
    assert rolled.get("reason") == "RolloutFailed", rolled

    # and the initializer really does refuse: run the exact command of v2's pod template
    # (its ReplicaSet keeps it) against the store
    apps = kubernetes.client.AppsV1Api(registry.cluster.api())
    (template,) = [
        rs.spec.template
        for rs in apps.list_namespaced_replica_set(registry.namespace).items
        if rs.spec.template.metadata.labels.get("modelreg.dev/version") == "2"
    ]
    (init,) = template.spec.init_containers or []
    args = list(init.args)
    args[args.index("--dest") + 1] = str(tmp_path / "models")
    run = subprocess.run(
        [sys.executable, "-m", "modelreg", *args],
        capture_output=True,
        text=True,
        env={**registry.cluster.env, "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    assert "the artifact changed since it was registered" in run.stderr


def test_a_version_that_skips_image_resolution_is_served_only_by_digest(
    checked: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """validation.skip [Image] makes a version Ready without resolving its image (the
    contract), but a Deployment never runs a tag: only a reference that is already a
    digest is served."""
    registry = checked
    registry.model("m")
    pushed = registries.push("serving/unresolved", "latest")
    skip = {"skip": ["Image"]}
    for name, ref in (("by-tag", pushed.reference), ("by-digest", pushed.pinned)):
        art, _ = artifacts.upload(f"m/{name}")
        registry.version(name, "m", art, ref, validation=skip)
        registry.approve(name, "alice")
        registry.wait_condition(MV, name, "Ready", "True", "Deployable")
    deployment(registry, version={"name": "by-tag"})
    c = registry.wait_condition(MD, "serve", "Ready", "False", "VersionInvalid")
    assert "by-tag is not deployable (ImageNotPinned)" in c["message"]
    apps = kubernetes.client.AppsV1Api(registry.cluster.api())
    assert not _exists(apps, registry.namespace)
    registry.api().patch_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, MD, "serve",
        {"spec": {"version": {"name": "by-digest"}}},
    )  # fmt: skip
    served(registry, "by-digest")
    assert served_image(registry) == pushed.pinned


def test_a_forged_digest_is_verified_again_not_sealed_by_the_next_reconcile(
    checked: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """Someone who may write status swaps a verified version's digest, then any change
    (here, its approval) makes the operator reconcile it: it must not seal the forged
    digest, but resolve the image again, and serve only what the tag resolves to."""
    registry = checked
    registry.model("m")
    img, _ = ready_version(registry, artifacts, registries, "v1", "m", approve=False)
    other = registries.push("serving/evil", "1.0")
    registry.api().patch_namespaced_custom_object_status(
        "modelreg.dev", "v1alpha1", registry.namespace, MV, "v1",
        {"status": {"image": {"resolved": other.pinned, "digest": other.digest}}},
    )  # fmt: skip
    registry.approve("v1", "alice")
    deployment(registry)
    served(registry, "v1")
    assert served_image(registry) == img.pinned
    status = registry.get(MV, "v1")["status"]
    assert status["image"]["resolved"] == img.pinned
    assert any(reason == "StatusNotSealed" for reason, _ in registry.events("v1"))
