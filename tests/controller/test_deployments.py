"""ModelDeployments against the real cluster: only approved versions run; failures roll back."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.support.cluster import Registries
from tests.support.modelreg import Artifacts, Registry, denied, image, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]
MD, MV = "modeldeployments", "modelversions"


def ready_version(
    registry: Registry,
    artifacts: Artifacts,
    registries: Registries,
    name: str,
    model: str,
    path: str = "serving/sklearn",
    approve: bool = True,
) -> Any:
    art, _ = artifacts.upload(f"{model}/{name}")
    img = image(registries, path, name)
    registry.version(name, model, art, img.reference)
    if approve:
        registry.approve(name, "alice")
        registry.wait_condition(MV, name, "Ready", "True", "Deployable")
    else:
        registry.wait_condition(MV, name, "ImageResolved", "True")
    return img, art


def deployment(registry: Registry, **spec: Any) -> Any:
    return registry.create(MD, "ModelDeployment", "serve", {"modelRef": {"name": "m"}, **spec})


def v1_then_v2_served(registry: Registry, artifacts: Artifacts, registries: Registries) -> None:
    """Model m with a deployment that served v1 and now serves v2 (both rolled out here)."""
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry)
    served(registry, "v1")
    ready_version(registry, artifacts, registries, "v2", "m")
    served(registry, "v2")


def rollback_to(registry: Registry, version: str | None, user: str = "admin") -> None:
    """Set (or with None, remove) the manual rollback annotation of the deployment."""
    registry.api(user).patch_namespaced_custom_object(
        "modelreg.dev",
        "v1alpha1",
        registry.namespace,
        MD,
        "serve",
        {"metadata": {"annotations": {"modelreg.dev/rollback-to": version}}},
    )


def apps(registry: Registry) -> kubernetes.client.AppsV1Api:
    return kubernetes.client.AppsV1Api(registry.cluster.api())


def served(registry: Registry, name: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = registry.get(MD, "serve").get("status") or {}
        ready: dict[str, Any] = next(
            (c for c in status.get("conditions", []) if c["type"] == "Ready"), {}
        )
        current = status.get("currentVersion") or {}
        return status if current.get("name") == name and ready.get("status") == "True" else None

    return wait_for(f"serving {name}", check, timeout)  # type: ignore[no-any-return]


def test_deploys_approved_version_pinned_by_digest(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("m")
    img, art = ready_version(registry, artifacts, registries, "v1", "m")
    deployment(
        registry,
        replicas=2,
        env=[{"name": "LOG_LEVEL", "value": "info"}],
        storage={"secretRef": {"name": "s3-credentials"}},
    )
    status = served(registry, "v1")
    assert status["currentVersion"]["image"] == img.pinned
    assert status["deploymentName"] == status["serviceName"] == "serve"

    dep = apps(registry).read_namespaced_deployment("serve", registry.namespace)
    owner = dep.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("ModelDeployment", "serve", True)
    pod = dep.spec.template
    model, init = pod.spec.containers[0], pod.spec.init_containers[0]
    assert model.image == img.pinned
    assert "@sha256:" in model.image
    assert init.name == "storage-initializer"
    assert init.args == [
        "fetch-artifact",
        "--uri",
        art["uri"],
        "--dest",
        "/mnt/models",
        "--sha256",
        art["sha256"],
        "--version-id",  # the S3 version that was verified (the test bucket is versioned)
        registry.get(MV, "v1")["status"]["artifact"]["versionId"],
    ]
    assert init.env_from[0].secret_ref.name == "s3-credentials"
    env = {e.name: e.value for e in model.env}
    assert env == {
        "MODEL_NAME": "m",
        "MODEL_VERSION": "1",
        "MODEL_PATH": "/mnt/models",
        "LOG_LEVEL": "info",
    }
    assert pod.metadata.labels["modelreg.dev/model"] == "m"
    assert pod.metadata.labels["modelreg.dev/version"] == "1"
    assert pod.metadata.labels["app.kubernetes.io/managed-by"] == "modelreg"
    for c in (model, init):
        assert c.security_context.allow_privilege_escalation is False
        assert c.security_context.capabilities.drop == ["ALL"]
        assert c.security_context.run_as_non_root is True
        assert c.security_context.seccomp_profile.type == "RuntimeDefault"
    svc = kubernetes.client.CoreV1Api(registry.cluster.api()).read_namespaced_service(
        "serve", registry.namespace
    )
    assert svc.spec.selector == {"modelreg.dev/deployment": "serve"}
    mv = wait_for(
        "stage", lambda: (s := registry.get(MV, "v1")["status"])["stage"] == "Production" and s
    )
    assert mv["deployments"] == [{"name": "serve", "stage": "Production"}]


def test_nothing_unapproved_is_deployed(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m", approve=False)
    deployment(registry, version={"name": "v1"})
    c = registry.wait_condition(MD, "serve", "Ready", "False", "VersionNotApproved")
    assert "v1 is not deployable" in c["message"]
    registry.api().delete_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, MD, "serve"
    )
    wait_for(
        "deleted",
        lambda: (
            not registry.api().list_namespaced_custom_object(
                "modelreg.dev", "v1alpha1", registry.namespace, MD
            )["items"]
        ),
    )
    registry.create(MD, "ModelDeployment", "serve", {"modelRef": {"name": "m"}})
    registry.wait_condition(MD, "serve", "Ready", "False", "NoApprovedVersion")
    assert apps(registry).list_namespaced_deployment(registry.namespace).items == []
    # approval makes it deployable, and it rolls out
    registry.approve("v1", "alice")
    served(registry, "v1")


def test_failed_rollout_rolls_back_and_is_not_retried(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry, rollout={"progressDeadlineSeconds": 3})
    served(registry, "v1")
    ready_version(registry, artifacts, registries, "v2", "m", path="serving/model-unready")

    c = registry.wait_condition(MD, "serve", "RolledBack", "True", "RolloutFailed", timeout=90)
    assert "v2 failed (ProgressDeadlineExceeded)" in c["message"]
    status = served(registry, "v1")
    failed = [h for h in status["history"] if h["name"] == "v2"]
    assert failed[0]["result"] == "Failed"
    assert failed[0]["reason"] == "ProgressDeadlineExceeded"
    dep = apps(registry).read_namespaced_deployment("serve", registry.namespace)
    assert dep.spec.template.metadata.labels["modelreg.dev/version"] == "1"
    # kopf posts Events in the background: they may trail the status a little
    wait_for(
        "RolloutFailed and RolledBack Events",
        lambda: {"RolloutFailed", "RolledBack"} <= {r for r, _ in registry.events("serve")},
        timeout=15,
    )
    # not retried in a loop: a while later v1 still serves and v2 failed once
    time.sleep(5)
    status = registry.get(MD, "serve")["status"]
    assert status["currentVersion"]["name"] == "v1"
    assert [h["result"] for h in status["history"] if h["name"] == "v2"] == ["Failed"]


def test_crashing_pods_roll_back(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry)  # default 600 s deadline: the crash itself must be noticed
    served(registry, "v1")
    ready_version(registry, artifacts, registries, "v2", "m", path="serving/model-crashloop")
    c = registry.wait_condition(MD, "serve", "RolledBack", "True", "RolloutFailed", timeout=60)
    assert "CrashLoopBackOff" in c["message"]
    served(registry, "v1")


def test_a_long_run_of_failed_releases_still_rolls_back_and_retries_none(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """More failures in a row than the history's 20 newest entries: the last good version
    stays the one to roll back to, and no failed version is tried again (found by the
    benchmark of 20 failures, which scaled the deployment to zero)."""
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry)
    served(registry, "v1")
    for n in range(2, 14):
        ready_version(registry, artifacts, registries, f"v{n}", "m", path="serving/model-crashloop")
        wait_for(
            f"v{n} to fail and v1 to be served again",
            lambda n=n: any(  # type: ignore[misc]
                h["name"] == f"v{n}" and h["result"] == "Failed"
                for h in registry.get(MD, "serve")["status"].get("history", [])
            ),
            timeout=60,
        )
        served(registry, "v1")
    history = registry.get(MD, "serve")["status"]["history"]
    assert len(history) > 20
    failed = [h["name"] for h in history if h["result"] == "Failed"]
    assert sorted(failed) == sorted(f"v{n}" for n in range(2, 14))  # each failed once
    reasons = [r for r, _ in registry.events("serve")]
    assert "ScaledToZero" not in reasons


def test_revocation_rolls_back_then_scales_to_zero(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    v1_then_v2_served(registry, artifacts, registries)

    registry.reject("v2", "bob", "bias found")
    c = registry.wait_condition(MD, "serve", "RolledBack", "True", "ApprovalRevoked")
    assert "v2 is no longer deployable" in c["message"]
    served(registry, "v1")
    registry.reject("v1", "bob")
    c = registry.wait_condition(MD, "serve", "Ready", "False", "NoDeployableVersion")
    assert "scaled to zero" in c["message"]
    dep = apps(registry).read_namespaced_deployment("serve", registry.namespace)
    assert dep.spec.replicas == 0
    # the record says nothing is served any more (the field is cleared, not left stale),
    # and later reconciles keep saying why
    assert "currentVersion" not in registry.get(MD, "serve")["status"]
    time.sleep(2)
    ready = registry.condition(MD, "serve", "Ready")
    assert ready is not None
    assert (ready["reason"], ready["message"]) == (
        "NoDeployableVersion",
        "no version of this model is deployable (verified and approved); "
        "the Deployment is scaled to zero",
    )
    progressing = registry.condition(MD, "serve", "Progressing")
    assert progressing is not None
    assert (progressing["status"], progressing["reason"]) == ("False", "ScaledToZero")
    # a newly approved version serves again, and the failed rollback is no longer reported
    ready_version(registry, artifacts, registries, "v3", "m")
    served(registry, "v3")
    assert registry.condition(MD, "serve", "RolledBack") is None


def operator_log_lines(dev_env: Any, namespace: str, reason: str) -> list[dict[str, Any]]:
    """The operator's structured JSON log lines about ``namespace`` with ``reason``."""
    lines = (Path(dev_env.layout.logs) / "operator.log").read_text().splitlines()
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("reason") == reason and (entry.get("object") or {}).get("namespace") == (
            namespace
        ):
            found.append(entry)
    return found


def test_manual_rollback_and_archiving(
    registry: Registry, artifacts: Artifacts, registries: Registries, dev_env: Any
) -> None:
    v1_then_v2_served(registry, artifacts, registries)

    rollback_to(registry, "v1", user="dana")
    registry.wait_condition(MD, "serve", "RolledBack", "True", "Manual")
    served(registry, "v1")
    # who asked for it: the webhook's log line names the user (the watch event cannot)
    (asked,) = operator_log_lines(dev_env, registry.namespace, "ManualRollbackRequested")
    assert (asked["user"], asked["object"]["name"]) == ("dana", "serve"), asked
    assert asked["message"] == "ModelDeployment serve: roll back to v1 by dana"
    # a deployed version cannot be archived
    message = denied(lambda: registry.annotate("v1", "dana", archived="true"))
    assert "must not be archived while ModelDeployment(s) serve serve it" in message
    registry.annotate("v2", "dana", archived="true")
    registry.wait_condition(MV, "v2", "Ready", "False", "Archived")
    # releasing the hold does not bring back the archived version
    rollback_to(registry, None, user="alice")
    served(registry, "v1")
    assert registry.get(MV, "v2")["status"]["stage"] == "Archived"
    (released,) = operator_log_lines(dev_env, registry.namespace, "ManualRollbackReleased")
    assert released["user"] == "alice", released


def swap_image_then_delete_and_see_it_repaired(registry: Registry, pinned: str) -> None:
    """Point the Deployment at an unapproved image, then delete it: each time modelreg
    puts back the Deployment serving ``pinned``."""
    api = apps(registry)
    api.patch_namespaced_deployment(
        "serve",
        registry.namespace,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "model", "image": "evil/unapproved:latest"}]}
                }
            }
        },
    )
    wait_for(
        "image restored",
        lambda: (
            api.read_namespaced_deployment("serve", registry.namespace)
            .spec.template.spec.containers[0]
            .image
            == pinned
        ),
    )
    api.delete_namespaced_deployment("serve", registry.namespace)
    wait_for(
        "deployment recreated",
        lambda: (
            api.list_namespaced_deployment(registry.namespace).items
            and api.read_namespaced_deployment("serve", registry.namespace)
            .spec.template.spec.containers[0]
            .image
            == pinned
        ),
    )


def test_hand_edits_and_deletions_are_repaired(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("m")
    img, _ = ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry)
    served(registry, "v1")
    swap_image_then_delete_and_see_it_repaired(registry, img.pinned)


def test_a_service_edited_or_deleted_is_restored(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """The Service is watched too: once the rollout is over, nothing else changes that
    would reconcile the deployment."""
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry)
    served(registry, "v1")
    time.sleep(3)  # the last pod and Deployment events are handled
    core = kubernetes.client.CoreV1Api(registry.cluster.api())
    core.patch_namespaced_service(
        "serve", registry.namespace, {"spec": {"selector": {"modelreg.dev/deployment": "other"}}}
    )
    wait_for(
        "service selector restored",
        lambda: (
            core.read_namespaced_service("serve", registry.namespace).spec.selector
            == {"modelreg.dev/deployment": "serve"}
        ),
    )
    core.delete_namespaced_service("serve", registry.namespace)
    wait_for(
        "service recreated",
        lambda: any(
            s.metadata.name == "serve"
            for s in core.list_namespaced_service(registry.namespace).items
        ),
    )


def test_revocation_during_a_rollout_rolls_back(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry)  # 600 s deadline: v2 stays mid-rollout until revoked
    served(registry, "v1")
    ready_version(registry, artifacts, registries, "v2", "m", path="serving/model-unready")
    wait_for(
        "v2 rolling out",
        lambda: (
            (registry.get(MD, "serve").get("status") or {}).get("currentVersion", {}).get("name")
            == "v2"
        ),
    )
    registry.reject("v2", "bob", "revoked mid-rollout")
    c = registry.wait_condition(MD, "serve", "RolledBack", "True", "ApprovalRevoked")
    assert "v2 is no longer deployable" in c["message"]
    served(registry, "v1")
    dep = apps(registry).read_namespaced_deployment("serve", registry.namespace)
    assert dep.spec.template.metadata.labels["modelreg.dev/version"] == "1"


def test_hand_additions_to_the_pod_template_are_removed(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """Server-side apply resets only the fields modelreg sets: a (privileged) sidecar, a
    volume or a command added by hand must go too."""
    registry.model("m")
    img, _ = ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry)
    served(registry, "v1")
    api = apps(registry)
    api.patch_namespaced_deployment(
        "serve",
        registry.namespace,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "model", "command": ["/bin/sh", "-c", "evil"]},
                            {
                                "name": "sidecar",
                                "image": "evil/miner:latest",
                                "securityContext": {"privileged": True},
                            },
                        ],
                        "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
                    }
                }
            }
        },
    )

    def restored() -> bool:
        pod = api.read_namespaced_deployment("serve", registry.namespace).spec.template.spec
        return (
            [c.name for c in pod.containers] == ["model"]
            and pod.containers[0].command is None
            and [v.name for v in pod.volumes] == ["model-store"]
            and pod.containers[0].image == img.pinned
        )

    wait_for("hand additions removed", restored)
    # and left alone after that: no write per reconcile
    generation = api.read_namespaced_deployment("serve", registry.namespace).metadata.generation
    time.sleep(3)
    after = api.read_namespaced_deployment("serve", registry.namespace).metadata.generation
    assert after == generation


def test_hand_edits_are_repaired_while_the_target_is_not_deployable(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """Pinned to a version that is not approved, the deployment keeps serving what it
    served, exactly as modelreg built it."""
    registry.model("m")
    img, _ = ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry)
    served(registry, "v1")
    ready_version(registry, artifacts, registries, "v2", "m", approve=False)
    registry.api().patch_namespaced_custom_object(
        "modelreg.dev",
        "v1alpha1",
        registry.namespace,
        MD,
        "serve",
        {"spec": {"version": {"name": "v2"}}},
    )
    registry.wait_condition(MD, "serve", "Ready", "False", "VersionNotApproved")
    swap_image_then_delete_and_see_it_repaired(registry, img.pinned)


def test_a_hand_scale_up_after_revocation_is_undone(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry)
    served(registry, "v1")
    registry.reject("v1", "bob")
    registry.wait_condition(MD, "serve", "Ready", "False", "NoDeployableVersion")
    api = apps(registry)
    api.patch_namespaced_deployment_scale("serve", registry.namespace, {"spec": {"replicas": 2}})
    wait_for(
        "scaled to zero again",
        lambda: api.read_namespaced_deployment("serve", registry.namespace).spec.replicas == 0,
    )


def test_a_spec_change_releases_a_manual_rollback(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """API.md: rollback-to holds "until the annotation is removed or the spec changes"."""
    v1_then_v2_served(registry, artifacts, registries)
    rollback_to(registry, "v1")
    registry.wait_condition(MD, "serve", "RolledBack", "True", "Manual")
    status = served(registry, "v1")
    assert status["manualRollback"]["version"] == "v1"
    registry.api().patch_namespaced_custom_object(
        "modelreg.dev",
        "v1alpha1",
        registry.namespace,
        MD,
        "serve",
        {"spec": {"version": {"number": 2}}},
    )
    served(registry, "v2")
    assert registry.get(MD, "serve")["metadata"]["annotations"]["modelreg.dev/rollback-to"] == "v1"


def test_a_failed_manual_rollback_is_not_retried(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m", path="serving/model-crashloop")
    ready_version(registry, artifacts, registries, "v2", "m")
    deployment(registry)
    served(registry, "v2")
    rollback_to(registry, "v1")
    registry.wait_condition(MD, "serve", "RolledBack", "True", "RolloutFailed", timeout=60)
    c = registry.wait_condition(MD, "serve", "Ready", "False", "RolloutFailed")
    assert "modelreg.dev/rollback-to names another version" in c["message"]
    time.sleep(5)
    status = registry.get(MD, "serve")["status"]
    assert status["currentVersion"]["name"] == "v2"
    assert [h["result"] for h in status["history"] if h["name"] == "v1"] == ["Failed"]
