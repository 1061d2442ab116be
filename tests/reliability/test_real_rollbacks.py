"""Rollback on real signals: on the real node, a good version serves (MLServer, a real
model) and a bad one is approved; it fails for a real reason the real kubelet reports,
and the operator rolls back to the good one. The invariant checker watches throughout:
nothing unapproved ever runs.

Each failure is the real thing: a server that exits (its model cannot be loaded), a
server that never becomes ready (its readiness probe fails), a storage-initializer that
cannot fetch the bytes that were approved (their S3 version deleted after approval), one
whose sha256 check fails (the object overwritten in a bucket without versioning), an
image that cannot be pulled (its manifest deleted from the registry), and a server over
its memory limit (OOMKilled).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from modelreg.builders import SHM_PATH
from modelreg.devenv import images, manifests
from modelreg.devenv import node as nodecfg
from tests.support.cluster import Cluster
from tests.support.invariants import InvariantChecker
from tests.support.modelreg import Artifacts, Registry, wait_for

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
MD, MV = "modeldeployments", "modelversions"


def _seed() -> Any:
    spec = importlib.util.spec_from_file_location("seed", REPO / "hack" / "seed-examples.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def real(cluster: Cluster, real_namespace: str, modelreg_crds: list[str]) -> Iterator[Registry]:
    """A namespace on the real node, with its model-store Secret, watched by the
    invariant checker."""
    checker = InvariantChecker(cluster.api(), real_namespace).start()
    yield Registry(cluster, real_namespace)
    violations = checker.stop()
    assert not violations, "\n".join(violations)


def _runtime(real_node: Any) -> str:
    ref = real_node.layout.load_images().get("mlserver")
    if not ref:
        pytest.fail("the environment pushed no MLServer image (hack/build-images.sh)")
    return str(ref)


def _deploy(registry: Registry, **spec: Any) -> None:
    registry.create(
        MD,
        "ModelDeployment",
        "serve",
        {
            "modelRef": {"name": "m"},
            "replicas": 1,
            "protocol": "v2",
            "env": [{"name": "MLSERVER_MODEL_NAME", "value": "m"}],
            "storage": {"secretRef": {"name": manifests.MODEL_STORE_SECRET}},
            "rollout": {"progressDeadlineSeconds": 90},
            **spec,
        },
        user="dana",
    )


def _serving(registry: Registry, name: str) -> bool:
    status = registry.get(MD, "serve").get("status") or {}
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions", []) if c["type"] == "Ready"), {}
    )
    return bool(
        (status.get("currentVersion") or {}).get("name") == name and ready.get("status") == "True"
    )


def _good(registry: Registry, artifacts: Artifacts, runtime: str, **deploy: Any) -> None:
    model = _seed().artifact("fraud-detector/1/model.tar.gz")
    art, _ = artifacts.upload("m/1/model.tar.gz", model)
    registry.model("m", approvalPolicy={"requiredApprovals": 1, "approvers": {"users": ["alice"]}})
    registry.version("v1", "m", art, runtime)
    registry.wait_condition(MV, "v1", "ArtifactVerified", "True")
    registry.approve("v1", "alice")
    _deploy(registry, **deploy)
    wait_for("v1 to serve on the real node", lambda: _serving(registry, "v1"), timeout=240)


def _bad_model(registry: Registry, artifacts: Artifacts, runtime: str, real_node: Any) -> None:
    art, _ = artifacts.upload("m/2/model.tar.gz", _seed().artifact("fraud-detector/3/model.tar.gz"))
    registry.version("v2", "m", art, runtime)


def _never_ready(registry: Registry, artifacts: Artifacts, runtime: str, real_node: Any) -> None:
    # a server that runs and answers HTTP, but not /v2/health/*: never ready
    web = images.Spec(
        "modelreg-test/never-ready",
        images.busybox().files,
        entrypoint=("/bin/httpd", "-f", "-p", "8080", "-h", "/bin"),
    )
    ref = images.ensure(real_node.tools["crane"], real_node.registry, web)
    art, _ = artifacts.upload("m/2/model.tar.gz", _seed().artifact("fraud-detector/1/model.tar.gz"))
    registry.version("v2", "m", art, ref)


def _bytes_gone(registry: Registry, artifacts: Artifacts, runtime: str, real_node: Any) -> None:
    model = _seed().artifact("fraud-detector/2/model.tar.gz")
    art, _ = artifacts.upload("m/2/model.tar.gz", model)
    registry.version("v2", "m", art, runtime)
    registry.wait_condition(MV, "v2", "ArtifactVerified", "True")
    pinned = registry.get(MV, "v2")["status"]["artifact"]["versionId"]
    # the verified object version is deleted (someone with write access to the bucket)
    artifacts.s3.delete_object(Bucket=artifacts.bucket, Key="m/2/model.tar.gz", VersionId=pinned)


def _tampered(registry: Registry, artifacts: Artifacts, runtime: str, real_node: Any) -> None:
    # a bucket without versioning: nothing to pin, the overwrite replaces the bytes that
    # were verified and approved, and only the storage-initializer's sha256 check is left
    artifacts.s3.put_bucket_versioning(
        Bucket=artifacts.bucket, VersioningConfiguration={"Status": "Suspended"}
    )
    key = "m/2/model.tar.gz"
    art, _ = artifacts.upload(key, _seed().artifact("fraud-detector/2/model.tar.gz"))
    registry.version("v2", "m", art, runtime)
    registry.wait_condition(MV, "v2", "ArtifactVerified", "True")
    assert not registry.get(MV, "v2")["status"]["artifact"].get("versionId")
    artifacts.upload(key, _seed().artifact("fraud-detector/3/model.tar.gz"))


def _image_gone(registry: Registry, artifacts: Artifacts, runtime: str, real_node: Any) -> None:
    unique = images.Spec(
        "modelreg-test/vanishing",
        (*images.busybox().files, images.File("/id", data=os.urandom(16))),
        entrypoint=("/bin/sleep", "3600"),
    )
    ref = images.ensure(real_node.tools["crane"], real_node.registry, unique)
    art, _ = artifacts.upload("m/2/model.tar.gz", _seed().artifact("fraud-detector/1/model.tar.gz"))
    registry.version("v2", "m", art, ref)
    registry.wait_condition(MV, "v2", "ImageResolved", "True")
    # the manifest is deleted from the registry after it was resolved: nothing to pull
    crane = real_node.tools["crane"]
    subprocess.run([crane, "delete", "--insecure", ref], check=True, capture_output=True)


def _oom(registry: Registry, artifacts: Artifacts, runtime: str, real_node: Any) -> None:
    hog = images.Spec(
        "modelreg-test/hog",
        images.busybox().files,
        entrypoint=("/bin/sh", "-c", "x=x; while true; do x=$x$x; done"),
    )
    ref = images.ensure(real_node.tools["crane"], real_node.registry, hog)
    art, _ = artifacts.upload("m/2/model.tar.gz", _seed().artifact("fraud-detector/1/model.tar.gz"))
    registry.version("v2", "m", art, ref)


Bad = Callable[[Registry, Artifacts, str, Any], None]
CASES: list[tuple[str, Bad, tuple[str, ...]]] = [
    ("server-exits", _bad_model, ("CrashLoopBackOff",)),
    ("never-ready", _never_ready, ("ProgressDeadlineExceeded",)),
    ("approved-bytes-gone", _bytes_gone, ("StorageInitializerFailed",)),
    ("bytes-tampered", _tampered, ("StorageInitializerFailed",)),
    ("image-gone", _image_gone, ("ErrImagePull", "ImagePullBackOff")),
    ("oom-killed", _oom, ("CrashLoopBackOff",)),
]


@pytest.mark.parametrize(("case", "bad", "reasons"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.timeout(600)
def test_a_version_failing_for_real_rolls_back_to_the_good_one(
    real: Registry,
    artifacts: Artifacts,
    real_node: Any,
    case: str,
    bad: Bad,
    reasons: tuple[str, ...],
) -> None:
    registry = real
    runtime = _runtime(real_node)
    _good(registry, artifacts, runtime)
    if case == "oom-killed":
        # MLServer with its model fits in 512 MiB; the hog does not
        registry.api("dana").patch_namespaced_custom_object(
            "modelreg.dev", "v1alpha1", registry.namespace, MD, "serve",
            {"spec": {"resources": {"limits": {"memory": "512Mi"}}}},
        )  # fmt: skip
        wait_for("v1 under the limit", lambda: _serving(registry, "v1"), timeout=240)
    bad(registry, artifacts, runtime, real_node)
    registry.approve("v2", "alice")
    rolled = registry.wait_condition(
        MD, "serve", "RolledBack", "True", "RolloutFailed", timeout=300
    )
    assert any(r in rolled["message"] for r in reasons), rolled["message"]
    wait_for("v1 to serve again", lambda: _serving(registry, "v1"), timeout=240)
    history = registry.get(MD, "serve")["status"]["history"]
    failed = next(h for h in history if h["name"] == "v2")
    assert failed["result"] == "Failed"
    assert failed["reason"] in reasons
    # and the Event says it, with the reason the kubelet gave
    core = kubernetes.client.CoreV1Api(registry.cluster.api())
    events = core.list_namespaced_event(
        registry.namespace, field_selector="involvedObject.kind=ModelDeployment"
    ).items
    rolled_events = [e for e in events if e.reason == "RolledBack"]
    assert rolled_events, [(e.reason, e.message) for e in events]
    assert any(r in e.message for e in rolled_events for r in reasons)
    # what the kubelet reported is what happened: the pods of v2 ran on the real node
    pods = core.list_namespaced_pod(registry.namespace).items
    assert pods
    assert all(p.spec.node_name == nodecfg.NODE_NAME for p in pods)


@pytest.mark.timeout(600)
def test_explicit_probes_are_what_the_real_kubelet_runs(
    real: Registry, artifacts: Artifacts, real_node: Any
) -> None:
    """spec.probes replaces the protocol's readiness probe with MLServer's model-level
    one (ready once this model is loaded); the kubelet runs it and the version serves."""
    registry = real
    ready = {"httpGet": {"path": "/v2/models/m/ready"}, "periodSeconds": 1}
    _good(
        registry,
        artifacts,
        _runtime(real_node),
        probes={"readiness": ready},
        # and the pod shape serving needs, as the real node runs it
        nodeSelector={"modelreg.dev/node": "real"},
        terminationGracePeriodSeconds=5,
        sharedMemory={"sizeLimit": "256Mi"},
        storageInitializer={
            "resources": {"requests": {"memory": "64Mi"}, "limits": {"memory": "256Mi"}}
        },
    )
    core = kubernetes.client.CoreV1Api(registry.cluster.api())
    (pod,) = [
        p
        for p in core.list_namespaced_pod(registry.namespace).items
        if p.metadata.deletion_timestamp is None
    ]
    model = next(c for c in pod.spec.containers if c.name == "model")
    assert model.readiness_probe.http_get.path == "/v2/models/m/ready"
    assert model.readiness_probe.period_seconds == 1
    # the others are still v2's
    assert model.liveness_probe.http_get.path == "/v2/health/live"
    status = next(c for c in pod.status.container_statuses if c.name == "model")
    assert status.ready
    assert pod.spec.node_selector == {"modelreg.dev/node": "real"}
    assert pod.spec.termination_grace_period_seconds == 5
    init = pod.spec.init_containers[0]
    assert init.resources.limits == {"memory": "256Mi"}
    # /dev/shm in the model container is the memory-backed volume, of its size
    mounts = registry.cluster.kubectl(
        "-n", registry.namespace, "exec", pod.metadata.name, "-c", "model", "--",
        "cat", "/proc/mounts",
    ).stdout  # fmt: skip
    (shm,) = [line for line in mounts.splitlines() if line.split()[1] == SHM_PATH]
    assert shm.split()[2] == "tmpfs", shm
    assert "size=262144k" in shm, shm
