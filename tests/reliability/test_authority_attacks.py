"""Attacks on what the operator may touch and who may decide, as the local environment's
ordinary users (dana: data scientist and model owner, eve: neither, both with edit rights
on modelreg objects only), through the real API server (issue 15, items 1, 5, 8 and 9).

Each of these got through on main at 4483a96 (see docs/security.md); each is refused or
ignored now."""

from __future__ import annotations

import json
import time
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from modelreg.api import annotations as ann
from modelreg.devenv import identities
from tests.controller.test_deployments import MD, MV, ready_version, served
from tests.support.cluster import Registries
from tests.support.modelreg import Artifacts, Registry, denied, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]

ADMIN_LABELS = {"app": "admin-api"}


def admin_service(registry: Registry) -> Any:
    core = kubernetes.client.CoreV1Api(registry.cluster.api())
    return core.create_namespaced_service(
        registry.namespace,
        {
            "metadata": {"name": "serve"},
            "spec": {
                "selector": ADMIN_LABELS,
                "ports": [{"name": "http", "port": 8080, "targetPort": 9000}],
            },
        },
    )


def admin_deployment(registry: Registry) -> Any:
    apps = kubernetes.client.AppsV1Api(registry.cluster.api())
    return apps.create_namespaced_deployment(
        registry.namespace,
        {
            "metadata": {"name": "serve"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": ADMIN_LABELS},
                "template": {
                    "metadata": {"labels": ADMIN_LABELS},
                    "spec": {"containers": [{"name": "api", "image": "registry.local/api:1"}]},
                },
            },
        },
    )


def read(registry: Registry, kind: str) -> Any:
    if kind == "Service":
        return kubernetes.client.CoreV1Api(registry.cluster.api()).read_namespaced_service(
            "serve", registry.namespace
        )
    return kubernetes.client.AppsV1Api(registry.cluster.api()).read_namespaced_deployment(
        "serve", registry.namespace
    )


@pytest.mark.parametrize("kind", ["Service", "Deployment"])
def test_a_deployment_named_like_a_foreign_object_changes_nothing(
    kind: str, registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """dana names her ModelDeployment like the admin's Service (or Deployment): the
    operator neither rewrites it nor adopts it, and deleting the ModelDeployment leaves
    it alone; the ModelDeployment says why, once."""
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m")
    foreign = (admin_service if kind == "Service" else admin_deployment)(registry)
    registry.create(MD, "ModelDeployment", "serve", {"modelRef": {"name": "m"}}, user="dana")
    ready = registry.wait_condition(MD, "serve", "Ready", "False", "NameConflict")
    assert f"a {kind} named serve exists" in ready["message"]
    time.sleep(3)  # any write would have happened by now
    live = read(registry, kind)
    assert not live.metadata.owner_references
    if kind == "Service":
        assert live.metadata.resource_version == foreign.metadata.resource_version
        assert live.spec.selector == ADMIN_LABELS
    else:  # its controller writes its status, never its spec
        assert live.metadata.generation == foreign.metadata.generation
        assert live.spec.template.spec.containers[0].image == "registry.local/api:1"
        assert live.spec.replicas == 1
    conflicts = [m for r, m in registry.events("serve") if r == "NameConflict"]
    assert len(conflicts) == 1, conflicts
    registry.api("dana").delete_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, MD, "serve"
    )
    time.sleep(3)  # the garbage collector would have deleted an adopted object by now
    assert read(registry, kind).metadata.uid == foreign.metadata.uid


def test_only_the_models_owners_archive_or_unarchive(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """dana (owner) retires v1 for a CVE; eve (no role) can neither bring it back nor
    retire v2; dana's un-archive keeps who retired it and why on the signed record."""
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m")
    ready_version(registry, artifacts, registries, "v2", "m")
    registry.annotate("v1", "dana", archived="true", archive_comment="CVE-2026-0001: do not deploy")
    registry.wait_condition(MV, "v1", "Ready", "False", "Archived")
    for user in ("eve", "alice"):  # alice approves, but does not own the model
        message = denied(lambda user=user: registry.annotate("v1", user, archived=None))  # type: ignore[misc]
        assert "may not un-archive ModelVersion v1" in message
        message = denied(lambda user=user: registry.annotate("v2", user, archived="true"))  # type: ignore[misc]
        assert "may not archive ModelVersion v2" in message
    # the comment can be edited by anyone with edit rights; the record keeps the original
    registry.annotate("v1", "eve", archive_comment="fine now")
    annotations = registry.get(MV, "v1")["metadata"]["annotations"]
    assert annotations[ann.ARCHIVED_BY] == "dana"
    assert registry.condition(MV, "v1", "Ready")["reason"] == "Archived"
    registry.annotate("v1", "dana", archived=None)
    registry.wait_condition(MV, "v1", "Ready", "True", "Deployable")
    trail = json.loads(registry.get(MV, "v1")["metadata"]["annotations"][ann.ARCHIVE_RECORD])
    assert [(e["user"], e["action"], e["comment"]) for e in trail] == [
        ("dana", "Archived", "CVE-2026-0001: do not deploy"),
        ("dana", "Unarchived", ""),  # eve's "fine now" is not recorded as dana's
    ]
    # the record is the webhook's: nobody writes it, not even the owner
    forged = json.dumps(trail[:1])
    assert "written by modelreg only" in denied(
        lambda: registry.annotate("v1", "dana", archive_decisions=forged)
    )


@pytest.mark.parametrize("plural", [MV, MD, "registeredmodels"])
def test_kopfs_bookkeeping_is_written_by_the_operator_only(
    plural: str, registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """A handler's progress written by hand would make kopf believe it ran, or must wait:
    dana may not add, change or remove kopf.modelreg.dev/* annotations on any kind; the
    version is approved and becomes Ready as usual."""
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m", approve=False)
    registry.create(MD, "ModelDeployment", "serve", {"modelRef": {"name": "m"}})
    name = {MV: "v1", MD: "serve", "registeredmodels": "m"}[plural]
    progress = json.dumps(
        {"started": "2026-01-01T00:00:00Z", "delayed": "2999-01-01T00:00:00Z", "retries": 9}
    )
    for key in ("version", "model_deployment", "registered_model", "anything"):
        patch = {"metadata": {"annotations": {f"kopf.modelreg.dev/{key}": progress}}}
        message = denied(
            lambda patch=patch: registry.api("dana").patch_namespaced_custom_object(  # type: ignore[misc]
                "modelreg.dev", "v1alpha1", registry.namespace, plural, name, patch
            )
        )
        assert "operator's own bookkeeping" in message
    registry.approve("v1", "alice")
    registry.wait_condition(MV, "v1", "Ready", "True", "Deployable")
    served(registry, "v1")


def test_repointing_an_admins_deployment_asks_for_its_service_account_again(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """dana may edit the admin's ModelDeployment but not use its ServiceAccount: she may
    scale it, but not point it at a model with a lax policy (whose versions she could
    approve herself), which would run her image under the admin's ServiceAccount."""
    core = kubernetes.client.CoreV1Api(registry.cluster.api())
    core.create_namespaced_service_account(registry.namespace, {"metadata": {"name": "prod"}})
    registry.model("m", approvalPolicy={"approvers": {"groups": ["ml-approvers"]}})
    registry.model(
        "lax", approvalPolicy={"approvers": {"users": ["dana"]}, "selfApproval": "Allowed"}
    )
    ready_version(registry, artifacts, registries, "v1", "m")
    registry.create(
        MD, "ModelDeployment", "serve", {"modelRef": {"name": "m"}, "serviceAccountName": "prod"}
    )
    served(registry, "v1")

    def patch(spec: dict[str, Any]) -> Any:
        return registry.api("dana").patch_namespaced_custom_object(
            "modelreg.dev", "v1alpha1", registry.namespace, MD, "serve", {"spec": spec}
        )

    patch({"replicas": 2})  # what she may do
    message = denied(lambda: patch({"modelRef": {"name": "lax"}}))
    assert "spec.serviceAccountName: you may not use serviceaccounts 'prod'" in message
    assert "used anew: for model lax" in message
    message = denied(lambda: patch({"version": {"name": "v1-other"}}))
    assert "used anew" in message
    assert registry.get(MD, "serve")["spec"]["modelRef"] == {"name": "m"}


def test_a_version_grown_after_approval_can_still_be_revoked(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """dana piles labels on her approved, served version (item 7): once its admission
    review outgrew the webhook server's limit, every update failed with 413, a rejection
    included, so the version could never be revoked. Growth past the bound is refused;
    the rejection and an archive go through, and the deployment scales to zero."""
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m")
    registry.create(MD, "ModelDeployment", "serve", {"modelRef": {"name": "m"}})
    served(registry, "v1")
    refused = ""
    for i in range(40):  # 40 x 200 labels of ~100 bytes: 800 KB, doubled in managedFields
        labels = {f"pad-{i}-{j:03}": "x" * 60 for j in range(200)}
        try:
            registry.api("dana").patch_namespaced_custom_object(
                "modelreg.dev", "v1alpha1", registry.namespace, MV, "v1",
                {"metadata": {"labels": labels}},
            )  # fmt: skip
        except kubernetes.client.ApiException as e:
            refused = str(e.body)
            break
    assert "so that its approval record always fits" in refused
    registry.reject("v1", "alice", "x" * 1024)
    registry.wait_condition(MD, "serve", "Ready", "False", "NoDeployableVersion")
    registry.annotate("v1", "dana", archived="true", archive_comment="y" * 1024)
    registry.wait_condition(MV, "v1", "Ready", "False", "Archived")


def test_numbers_go_on_after_the_model_is_deleted_and_created_again(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    """dana deletes her model and its versions and makes them again under the same names
    (item 9): the numbers started again at 1, so the deployment pinned to version 1 ran
    the new v1, another artifact nobody approved as version 1. Now they go on past the old
    ones (kept in the operator's namespace, where dana can neither write nor delete), and
    the pinned deployment finds no version 1."""
    dana = registry.api("dana")
    ns = registry.namespace
    registry.create("registeredmodels", "RegisteredModel", "m", {}, user="dana")
    ready_version(registry, artifacts, registries, "v1", "m")
    ready_version(registry, artifacts, registries, "v2", "m")
    assert [registry.number("v1"), registry.number("v2")] == [1, 2]
    registry.create(
        MD, "ModelDeployment", "serve", {"modelRef": {"name": "m"}, "version": {"number": 1}}
    )
    served(registry, "v1")
    for plural, name in ((MV, "v1"), (MV, "v2"), ("registeredmodels", "m")):
        dana.delete_namespaced_custom_object("modelreg.dev", "v1alpha1", ns, plural, name)

    def gone() -> bool:
        try:
            registry.get("registeredmodels", "m")
        except ApiException as e:
            return bool(e.status == 404)
        return False

    wait_for("model m deleted", gone)
    registry.create("registeredmodels", "RegisteredModel", "m", {}, user="dana")
    _, art = ready_version(registry, artifacts, registries, "v1", "m")  # another artifact
    ready_version(registry, artifacts, registries, "v2", "m")
    first, second = registry.number("v1"), registry.number("v2")
    assert first is not None
    assert second is not None
    assert first > 2, f"the re-created v1 was numbered {first} again"
    assert second > first
    time.sleep(3)  # a rollout of the new v1 would have started by now
    ready = registry.wait_condition(MD, "serve", "Ready", "False", "NoDeployableVersion")
    assert "version number 1 of this model does not exist" in ready["message"]
    current = (registry.get(MD, "serve").get("status") or {}).get("currentVersion") or {}
    assert current.get("number") != first
    deployment = kubernetes.client.AppsV1Api(registry.cluster.api()).read_namespaced_deployment(
        "serve", ns
    )
    args = [a for c in deployment.spec.template.spec.init_containers or [] for a in c.args or []]
    assert art["sha256"] not in args  # the new v1's artifact runs nowhere
    # the mark is the operator's, in its namespace: dana may not read, change or delete it
    home = identities.OPERATOR_NAMESPACE
    admin = kubernetes.client.CoreV1Api(registry.cluster.api())
    (mark,) = admin.list_namespaced_config_map(
        home, label_selector=f"modelreg.dev/numbers-of={ns}"
    ).items
    assert mark.data["model"] == "m"
    assert int(mark.data["next"]) > second
    core = kubernetes.client.CoreV1Api(registry.cluster.api("dana"))
    for call in (
        lambda: core.read_namespaced_config_map(mark.metadata.name, home),
        lambda: core.patch_namespaced_config_map(mark.metadata.name, home, {"data": {"next": "1"}}),
        lambda: core.delete_namespaced_config_map(mark.metadata.name, home),
    ):
        with pytest.raises(ApiException) as refused:
            call()
        assert refused.value.status == 403
