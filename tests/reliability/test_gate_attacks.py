"""Attacks on the approval gate, through the real API server, with the invariant checker
watching: nothing unapproved is ever deployed, and every attack is refused or ignored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from tests.controller.test_deployments import MD, MV, deployment, ready_version, served
from tests.support.cluster import Cluster, Registries
from tests.support.invariants import InvariantChecker
from tests.support.modelreg import Artifacts, Registry, denied, image

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]


@pytest.fixture
def gate(
    cluster: Cluster, registry: Registry, artifacts: Artifacts, registries: Registries
) -> Iterator[Registry]:
    """Model m served at v1 (approved by alice); v2 verified but not approved."""
    checker = InvariantChecker(cluster.api(), registry.namespace).start()
    registry.model("m", approvalPolicy={"approvers": {"groups": ["ml-approvers"]}})
    ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry)
    served(registry, "v1")
    ready_version(registry, artifacts, registries, "v2", "m", approve=False)
    yield registry
    # v2 was never served, whatever the attack
    time.sleep(3)
    current = registry.get(MD, "serve")["status"].get("currentVersion") or {}
    assert current.get("name") != "v2"
    violations = checker.stop()
    assert not violations, "\n".join(violations)


def forge_status(registry: Registry, name: str, status: dict[str, Any]) -> None:
    """As someone who may write status (here the cluster admin)."""
    registry.api().patch_namespaced_custom_object_status(
        "modelreg.dev", "v1alpha1", registry.namespace, MV, name, {"status": status}
    )


def test_outsiders_self_approval_and_written_records_are_refused(
    gate: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    assert "not an approver" in denied(lambda: gate.approve("v2", "eve"))
    assert "not an approver" in denied(lambda: gate.approve("v2", "dana"))
    art, _ = artifacts.upload("m/v3")
    gate.version("v3", "m", art, image(registries, "serving/sklearn", "v3").reference, user="alice")
    assert "selfApproval is Forbidden" in denied(lambda: gate.approve("v3", "alice"))
    for key in ("decisions", "record_signature", "number", "registered_by", "archived_by"):
        message = denied(lambda key=key: gate.annotate("v2", "dana", **{key: "[]"}))  # type: ignore[misc]
        assert "written by modelreg only" in message


def service_account_client(cluster: Cluster, namespace: str, name: str) -> Any:
    """An API client authenticated by a bound token of ServiceAccount ``name``."""
    core = kubernetes.client.CoreV1Api(cluster.api())
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    token = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    admin = cluster.api().configuration
    config = kubernetes.client.Configuration(host=admin.host)
    config.ssl_ca_cert = admin.ssl_ca_cert
    config.api_key = {"authorization": f"Bearer {token}"}
    return kubernetes.client.ApiClient(config)


def test_a_service_account_outside_the_policy_cannot_decide(
    gate: Registry, cluster: Cluster
) -> None:
    """A CI bot's ServiceAccount may edit ModelVersions (RBAC), but the policy names only
    the ml-approvers group: its approval is refused like any other outsider's."""
    ns = gate.namespace
    client = service_account_client(cluster, ns, "ci-bot")
    cluster.kubectl(
        "-n", ns, "create", "rolebinding", "ci-bot-edits", "--clusterrole=modelreg-dev-editor",
        f"--serviceaccount={ns}:ci-bot",
    )  # fmt: skip
    api = kubernetes.client.CustomObjectsApi(client)
    approve = {"metadata": {"annotations": {"modelreg.dev/approval": "Approved"}}}
    message = denied(
        lambda: api.patch_namespaced_custom_object(
            "modelreg.dev", "v1alpha1", ns, MV, "v2", approve
        )
    )
    assert f"'system:serviceaccount:{ns}:ci-bot' is not an approver" in message
    # RBAC let it through to the webhook: a harmless edit by the same identity is accepted
    api.patch_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", ns, MV, "v2",
        {"metadata": {"annotations": {"modelreg.dev/approval-comment": "from CI"}}},
    )  # fmt: skip


def test_replaying_another_versions_record_is_refused(gate: Registry) -> None:
    v1 = gate.get(MV, "v1")["metadata"]["annotations"]
    record = {k: v for k, v in v1.items() if k.startswith("modelreg.dev/")}
    message = denied(
        lambda: gate.api("alice").patch_namespaced_custom_object(
            "modelreg.dev", "v1alpha1", gate.namespace, MV, "v2",
            {"metadata": {"annotations": record}},
        )
    )  # fmt: skip
    assert "written by modelreg only" in message


def test_a_forged_status_is_never_deployed(gate: Registry) -> None:
    """Approval state, decisions and Ready written straight into status: the operator's
    seal and the signed record disagree, so the deployment does not move."""
    forged = gate.get(MV, "v2")["status"]
    forged["approval"] = {
        "state": "Approved",
        "required": 1,
        "decisions": [{"user": "alice", "decision": "Approved", "time": "2026-11-22T00:00:00Z"}],
    }
    for c in forged["conditions"]:
        if c["type"] in ("Approved", "Ready"):
            c.update(status="True", reason="Deployable", message="forged")
    forge_status(gate, "v2", forged)
    # a reconcile of the deployment happens (any change of it triggers one)
    gate.api().patch_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", gate.namespace, MD, "serve",
        {"metadata": {"annotations": {"poke": "1"}}},
    )  # fmt: skip
    time.sleep(3)
    assert gate.get(MD, "serve")["status"]["currentVersion"]["name"] == "v1"


def test_a_forged_digest_on_the_served_version_is_not_rolled_out(gate: Registry) -> None:
    evil = "127.0.0.1:1/evil/model@sha256:" + "e" * 64
    forge_status(gate, "v1", {"image": {"resolved": evil}})
    gate.api().patch_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", gate.namespace, MD, "serve",
        {"metadata": {"annotations": {"poke": "2"}}},
    )  # fmt: skip
    time.sleep(3)
    apps = kubernetes.client.AppsV1Api(gate.cluster.api())
    dep = apps.read_namespaced_deployment("serve", gate.namespace)
    assert dep.spec.template.spec.containers[0].image != evil
