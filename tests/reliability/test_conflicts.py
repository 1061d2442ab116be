"""Conflicts: concurrent approvals, deletes in the middle of a reconcile, and a
RegisteredModel deleted while its versions exist. Nothing is lost, nothing crash-loops,
and conditions say what is going on. The invariant checker watches each scenario."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from tests.controller.test_deployments import MD, MV, deployment, ready_version, served
from tests.support.cluster import Cluster, Registries
from tests.support.invariants import InvariantChecker
from tests.support.modelreg import Artifacts, Registry, image, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]


@pytest.fixture
def watched(cluster: Cluster, registry: Registry, dev_env: Any) -> Iterator[Registry]:
    """The invariant checker throughout, and no traceback in the operator log."""
    log = Path(dev_env.layout.logs) / "operator.log"
    start = log.stat().st_size if log.exists() else 0
    checker = InvariantChecker(cluster.api(), registry.namespace).start()
    registry.log = lambda: _read_from(log, start)  # type: ignore[attr-defined]
    yield registry
    violations = checker.stop()
    assert not violations, "\n".join(violations)
    tail = _read_from(log, start)
    assert "Traceback" not in tail, tail[tail.index("Traceback") - 2000 :][:6000]


def _read_from(log: Path, start: int) -> str:
    with log.open() as f:
        f.seek(start)
        return f.read()


def together(*calls: Callable[[], Any]) -> None:
    """Run the calls at the same moment, each in its own thread; re-raise any failure."""
    barrier, errors = threading.Barrier(len(calls)), list[BaseException]()

    def run(call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_concurrent_approvals_are_each_recorded(
    watched: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry = watched
    registry.model(
        "m", approvalPolicy={"approvers": {"groups": ["ml-approvers"]}, "requiredApprovals": 2}
    )
    ref = image(registries, "serving/sklearn", "conflicts").reference
    names = [f"v{i}" for i in range(8)]
    for name in names:
        art, _ = artifacts.upload(f"m/{name}")
        registry.version(name, "m", art, ref)
    for name in names:
        # the API server re-runs the webhook on its retry after a lost race, so both land
        together(
            lambda n=name: registry.approve(n, "alice", "from alice"),  # type: ignore[misc]
            lambda n=name: registry.approve(n, "bob", "from bob"),  # type: ignore[misc]
        )
    for name in names:
        registry.wait_condition(MV, name, "Ready", "True", "Deployable")
        decisions = registry.get(MV, name)["status"]["approval"]["decisions"]
        assert sorted((d["user"], d["comment"]) for d in decisions) == [
            ("alice", "from alice"),
            ("bob", "from bob"),
        ]


def test_deletes_in_the_middle_of_reconciles_lose_nothing(
    watched: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry = watched
    registry.model("m")
    ref = image(registries, "serving/sklearn", "deletes").reference
    rng = random.Random(3)  # noqa: S311
    deleted = []
    for i in range(12):
        art, _ = artifacts.upload(f"m/d{i}")
        registry.version(f"d{i}", "m", art, ref)
        time.sleep(rng.uniform(0, 0.4))  # before, during or after its verification
        if i % 3:
            deleted.append(registry.get(MV, f"d{i}"))
            registry.api().delete_namespaced_custom_object(
                "modelreg.dev", "v1alpha1", registry.namespace, MV, f"d{i}"
            )
    kept = [f"d{i}" for i in range(12) if not i % 3]
    for name in kept:
        registry.wait_condition(MV, name, "ImageResolved", "True")
    # a deployment deleted while it rolls out: its Deployment and Service go with it
    ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry)
    time.sleep(0.3)
    registry.api().delete_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, MD, "serve"
    )
    apps = kubernetes.client.AppsV1Api(registry.cluster.api())
    core = kubernetes.client.CoreV1Api(registry.cluster.api())
    wait_for(
        "the Deployment and Service to go with their ModelDeployment",
        lambda: (
            not apps.list_namespaced_deployment(registry.namespace).items
            and not core.list_namespaced_service(registry.namespace).items
        ),
    )
    # numbers of deleted versions are not given again
    taken = [int(mv["metadata"]["annotations"]["modelreg.dev/number"]) for mv in deleted]
    art, _ = artifacts.upload("m/after")
    registry.version("after", "m", art, ref)
    registry.wait_condition(MV, "after", "ImageResolved", "True")
    assert registry.number("after") == 14
    assert registry.number("after") not in taken
    # a deployment created again serves as if nothing happened
    deployment(registry)
    served(registry, "v1")


def test_a_registered_model_deleted_under_its_versions(
    watched: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry = watched
    registry.model("m")
    ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry)
    served(registry, "v1")
    apps = kubernetes.client.AppsV1Api(registry.cluster.api())
    image_before = (
        apps.read_namespaced_deployment("serve", registry.namespace)
        .spec.template.spec.containers[0]
        .image
    )
    before = len(registry.log())  # type: ignore[attr-defined]

    registry.api().delete_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, "registeredmodels", "m"
    )
    c = registry.wait_condition(MV, "v1", "Ready", "False", "ModelNotFound")
    assert "RegisteredModel 'm' does not exist" in c["message"]
    ready = registry.wait_condition(MD, "serve", "Ready", "False")
    print("deployment while the model is gone:", ready)
    time.sleep(10)
    # no hot loop: the operator waits for the model, it does not spin on it
    lines = registry.log()[before:].count("\n")  # type: ignore[attr-defined]
    assert lines < 200, registry.log()[before:][-4000:]  # type: ignore[attr-defined]
    dep = apps.read_namespaced_deployment("serve", registry.namespace)
    print("replicas:", dep.spec.replicas, "image:", dep.spec.template.spec.containers[0].image)

    registry.model("m")  # re-created: everything resumes
    registry.wait_condition(MV, "v1", "Ready", "True", "Deployable")
    served(registry, "v1")
    assert (
        apps.read_namespaced_deployment("serve", registry.namespace)
        .spec.template.spec.containers[0]
        .image
        == image_before
    )
    # registering continues after the highest number, not from 1
    art, _ = artifacts.upload("m/v2")
    registry.version("v2", "m", art, image(registries, "serving/sklearn", "v2").reference)
    registry.wait_condition(MV, "v2", "ImageResolved", "True")
    assert registry.number("v2") == 2
    with pytest.raises(ApiException):
        registry.get("registeredmodels", "gone")
