"""The local cluster is real: workloads roll out, failures fail, users differ, validation holds."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest
import yaml

from modelreg import devenv
from modelreg.devenv import cluster as cluster_module
from tests.support.cluster import Cluster

pytestmark = pytest.mark.cluster


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def deployment(name: str, image: str, progress_deadline: int = 600) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": progress_deadline,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "initContainers": [{"name": "storage-initializer", "image": "busybox:1"}],
                    "containers": [{"name": "model", "image": image}],
                },
            },
        },
    }


def condition(obj: Any, type_: str) -> Any:
    return next((c for c in (obj.status.conditions or []) if c.type == type_), None)


@pytest.mark.kwok
def test_deployment_becomes_available(cluster: Cluster, namespace: str) -> None:
    apps = kubernetes.client.AppsV1Api(cluster.api())
    apps.create_namespaced_deployment(namespace, deployment("ok", "127.0.0.1:1/serving/model:1"))

    def available() -> bool:
        d = apps.read_namespaced_deployment("ok", namespace)
        c = condition(d, "Available")
        return bool(c and c.status == "True" and d.status.ready_replicas == 2)

    wait_for("Deployment Available with 2 ready replicas", available, 60)
    pods = kubernetes.client.CoreV1Api(cluster.api()).list_namespaced_pod(namespace).items
    assert len(pods) == 2
    assert all(
        p.status.phase == "Running" and p.spec.node_name.startswith("kwok-node-") for p in pods
    )
    init = pods[0].status.init_container_statuses[0]
    assert init.state.terminated.reason == "Completed"


@pytest.mark.kwok
def test_garbage_collector_deletes_replicasets_and_pods_of_a_deleted_deployment(
    cluster: Cluster, namespace: str
) -> None:
    apps = kubernetes.client.AppsV1Api(cluster.api())
    core = kubernetes.client.CoreV1Api(cluster.api())
    apps.create_namespaced_deployment(namespace, deployment("gc", "127.0.0.1:1/serving/model:1"))
    selector = "app=gc"
    wait_for(
        "2 pods of the Deployment",
        lambda: len(core.list_namespaced_pod(namespace, label_selector=selector).items) == 2,
        60,
    )
    replica_sets = apps.list_namespaced_replica_set(namespace, label_selector=selector).items
    assert [rs.metadata.owner_references[0].name for rs in replica_sets] == ["gc"]

    # the API server only marks dependents orphaned-or-not; the controller-manager's
    # garbage collector deletes them (background propagation, the default for kubectl)
    apps.delete_namespaced_deployment("gc", namespace, propagation_policy="Background")
    wait_for(
        "the garbage collector to delete the ReplicaSet and its pods",
        lambda: (
            not apps.list_namespaced_replica_set(namespace, label_selector=selector).items
            and not core.list_namespaced_pod(namespace, label_selector=selector).items
        ),
        60,
    )


@pytest.mark.kwok
@pytest.mark.parametrize("repository", ["model-unready", "model-crashloop"])
def test_failure_image_drives_rollout_to_progress_deadline_exceeded(
    cluster: Cluster, namespace: str, repository: str
) -> None:
    apps = kubernetes.client.AppsV1Api(cluster.api())
    image = f"127.0.0.1:1/serving/{repository}@sha256:{'0' * 64}"
    apps.create_namespaced_deployment(namespace, deployment("bad", image, progress_deadline=3))

    def deadline_exceeded() -> Any:
        c = condition(apps.read_namespaced_deployment("bad", namespace), "Progressing")
        return c if c and c.reason == "ProgressDeadlineExceeded" else None

    c = wait_for("ProgressDeadlineExceeded", deadline_exceeded, 90)
    assert c.status == "False"
    pod = kubernetes.client.CoreV1Api(cluster.api()).list_namespaced_pod(namespace).items[0]
    model = pod.status.container_statuses[0]
    assert model.ready is False
    if repository == "model-crashloop":
        assert model.state.waiting.reason == "CrashLoopBackOff"
        assert model.restart_count > 0
    else:
        assert model.state.running is not None


def test_auth_can_i_differs_per_user(cluster: Cluster, namespace: str) -> None:
    def can(user: str, *args: str) -> bool:
        r = cluster.kubectl("auth", "can-i", *args, user=user, check=False)
        assert r.stdout.strip() in ("yes", "no"), r.stderr
        return r.stdout.strip() == "yes"

    def may(user: str, verb: str, resource: str, ns: str, subresource: str = "") -> bool:
        """A SelfSubjectAccessReview as ``user`` (needs no CRD for the resource to exist)."""
        review = kubernetes.client.AuthorizationV1Api(cluster.api(user))
        result = review.create_self_subject_access_review(
            {
                "spec": {
                    "resourceAttributes": {
                        "group": "modelreg.dev",
                        "resource": resource,
                        "verb": verb,
                        "namespace": ns,
                        "subresource": subresource,
                    }
                }
            }
        )
        return bool(result.status.allowed)

    for user in ("alice", "bob", "dana", "eve"):
        # modelreg objects: RBAC lets everyone in the namespace write them, approvers or not
        for verb in ("create", "update", "patch"):
            assert may(user, verb, "modelversions", namespace)
            assert may(user, verb, "modeldeployments", namespace)
        # the model's policy: its owners (dana) may write it, approvers and eve only read it
        assert may(user, "get", "registeredmodels", namespace)
        for verb in ("create", "update", "patch"):
            assert may(user, verb, "registeredmodels", namespace) == (user == "dana"), (user, verb)
        assert not may(user, "create", "modelversions", "default")
        assert not may(user, "patch", "modelversions", namespace, subresource="status")
        # everything else: read-only in their namespace, nothing elsewhere
        assert can(user, "get", "pods", "-n", namespace)
        assert not can(user, "create", "deployments.apps", "-n", namespace)
        assert not can(user, "get", "secrets", "-n", namespace)
        assert not can(user, "get", "pods", "-n", "kube-system")
    assert can("admin", "*", "*", "--all-namespaces")
    assert may("admin", "patch", "modelversions", namespace, subresource="status")


@pytest.mark.kwok  # kind has no static users: identities there are impersonated
def test_users_authenticate_with_their_groups(cluster: Cluster) -> None:
    groups = {}
    for user in cluster.people:
        out = cluster.kubectl("auth", "whoami", "-o", "json", user=user).stdout
        info = json.loads(out)["status"]["userInfo"]
        assert info["username"] == user
        groups[user] = set(info.get("groups", [])) - {"system:authenticated"}
    assert groups == {
        "admin": {"system:masters"},
        "alice": {"ml-approvers"},
        "bob": {"ml-approvers"},
        "dana": {"data-scientists"},
        "eve": set(),
    }
    bad = cluster.kubectl("get", "pods", "--token=not-a-token", "--user=", check=False)
    assert bad.returncode != 0
    assert "Unauthorized" in bad.stderr


def test_server_side_dry_run_rejects_invalid_objects(cluster: Cluster, namespace: str) -> None:
    bad = deployment("bad", "x:1")
    bad["spec"]["replicas"] = -1
    error = cluster.dry_run(namespace, bad)
    assert "spec.replicas" in error
    assert "greater than or equal to 0" in error
    # nothing was created
    assert cluster.kubectl("get", "deployments", "-n", namespace, "-o", "name").stdout == ""


def test_crd_schema_and_cel_rules_are_enforced(cluster: Cluster, namespace: str) -> None:
    group = f"t{uuid.uuid4().hex[:8]}.modelreg.dev"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "x-kubernetes-validations": [
                                        {"rule": "self == oldSelf", "message": "spec is immutable"}
                                    ],
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(crd))
    try:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}")

        def widget(size: int) -> str:
            return yaml.safe_dump(
                {
                    "apiVersion": f"{group}/v1",
                    "kind": "Widget",
                    "metadata": {"name": "w"},
                    "spec": {"size": size},
                }
            )

        error = cluster.dry_run(namespace, yaml.safe_load(widget(0)))
        assert "spec.size" in error
        assert "should be greater than or equal to 1" in error
        cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=widget(1))
        r = cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=widget(2), check=False)
        assert r.returncode != 0
        assert "spec is immutable" in r.stderr
    finally:
        cluster.kubectl("delete", f"crd/widgets.{group}", "--wait=false")


@pytest.mark.kwok
def test_stage_added_at_runtime_takes_over_matching_pods(cluster: Cluster, namespace: str) -> None:
    """Tests can add KWOK Stages while the cluster runs; weight > 0 wins over the defaults."""
    stage = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": f"test-evict-{namespace}"},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "weight": 1,
            "selector": {
                "matchExpressions": [
                    {
                        "key": '.metadata.labels["modelreg-tests/stage"]',
                        "operator": "In",
                        "values": [namespace],
                    },
                    {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
                ]
            },
            "next": {
                "statusTemplate": 'phase: Failed\nreason: Evicted\nmessage: "by a test stage"\n'
            },
        },
    }
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(stage))
    core = kubernetes.client.CoreV1Api(cluster.api())
    try:
        core.create_namespaced_pod(
            namespace,
            {
                "metadata": {"name": "victim", "labels": {"modelreg-tests/stage": namespace}},
                "spec": {"containers": [{"name": "c", "image": "x:1"}]},
            },
        )
        pod = wait_for(
            "the test stage to fail the pod",
            lambda: (
                p
                if (p := core.read_namespaced_pod("victim", namespace)).status.phase == "Failed"
                else None
            ),
            60,
        )
        assert pod.status.reason == "Evicted"
    finally:
        cluster.kubectl("delete", "stage", stage["metadata"]["name"])


@pytest.mark.kwok
def test_fake_nodes_renew_their_leases(cluster: Cluster) -> None:
    """Without lease renewals the node lifecycle controller marks every pod NotReady."""
    coordination = kubernetes.client.CoordinationV1Api(cluster.api())

    def renewals() -> dict[str, Any]:
        leases = coordination.list_namespaced_lease("kube-node-lease").items
        return {str(lease.metadata.name): lease.spec.renew_time for lease in leases}

    first = wait_for("node leases", lambda: r if len(r := renewals()) >= 2 else None, 30)
    assert {"kwok-node-0", "kwok-node-1"} <= set(first)
    wait_for("a lease renewal", lambda: renewals()["kwok-node-0"] != first["kwok-node-0"], 60)


@pytest.mark.local_env  # the local environment's operator registers it
def test_webhook_wait_needs_this_runs_webhook_port(dev_env: devenv.Environment) -> None:
    """`dev up` waits for the operator's webhook configuration with its current port: one
    left in etcd by an earlier run (another port) does not count."""
    assert cluster_module.webhooks_registered(dev_env)
    stale = dataclasses.replace(
        dev_env, ports=dataclasses.replace(dev_env.ports, webhook=dev_env.ports.webhook + 1)
    )
    assert not cluster_module.webhooks_registered(stale)
