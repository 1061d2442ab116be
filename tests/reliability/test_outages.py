"""Server outages against the real local environment: S3, the registry, the API server,
etcd and the operator's webhook go down and come back. Conditions go Unknown, never a
false False; the operator recovers by itself; nothing slips through the webhook. The
recovery times are printed (docs/reliability.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.support.cluster import Cluster, Registries
from tests.support.invariants import InvariantChecker
from tests.support.modelreg import Artifacts, Registry, image, stopped, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]
MV = "modelversions"


@pytest.fixture
def checked(cluster: Cluster, registry: Registry) -> Iterator[Registry]:
    checker = InvariantChecker(cluster.api(), registry.namespace).start()
    yield registry
    violations = checker.stop()
    assert not violations, "\n".join(violations)


def never_false(registry: Registry, name: str, type_: str, seconds: float) -> dict[str, Any]:
    """Watch the condition for a while: it must never be False; its last value."""
    deadline, last = time.monotonic() + seconds, {}
    while time.monotonic() < deadline:
        last = registry.condition(MV, name, type_) or {}
        assert last.get("status") != "False", f"{type_} went False during the outage: {last}"
        time.sleep(0.2)
    return last


def recovered(registry: Registry, name: str, type_: str) -> float:
    start = time.monotonic()
    registry.wait_condition(MV, name, type_, "True", timeout=400)
    return time.monotonic() - start


@pytest.mark.parametrize(
    ("component", "condition"), [("minio", "ArtifactVerified"), ("registry", "ImageResolved")]
)
def test_store_or_registry_outage_is_unknown_then_recovers(
    checked: Registry,
    dev_env: Any,
    artifacts: Artifacts,
    registries: Registries,
    component: str,
    condition: str,
) -> None:
    checked.model("m")
    art, _ = artifacts.upload("m/v1")
    img = image(registries, "serving/sklearn", f"{component}-outage").reference
    with stopped(dev_env, component):
        checked.version("v1", "m", art, img)
        c = never_false(checked, "v1", condition, 8)
        assert c.get("status") == "Unknown", c
        assert "cannot reach" in c["message"], c
    took = recovered(checked, "v1", condition)
    print(f"{component} back: {condition} True {took:.1f} s later")


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_control_plane_restart_is_survived(
    checked: Registry,
    dev_env: Any,
    artifacts: Artifacts,
    registries: Registries,
    component: str,
) -> None:
    checked.model("m")
    img = image(registries, "serving/sklearn", f"{component}-restart").reference
    art, _ = artifacts.upload("m/before")
    checked.version("before", "m", art, img)
    checked.wait_condition(MV, "before", "ImageResolved", "True")
    with stopped(dev_env, component):
        time.sleep(3)
    # the operator's watches reconnect on their own: a version registered afterwards is
    # verified, and one approved afterwards becomes Ready
    start = time.monotonic()
    after, _ = artifacts.upload("m/after")
    wait_for("the API server", lambda: _registered(checked, after, img), timeout=60)
    checked.wait_condition(MV, "after", "ImageResolved", "True", timeout=120)
    checked.approve("before", "alice")
    checked.wait_condition(MV, "before", "Ready", "True", timeout=120)
    print(f"{component} restarted: a new version verified {time.monotonic() - start:.1f} s later")


def _registered(registry: Registry, artifact: dict[str, Any], img: str) -> bool:
    try:
        registry.version("after", "m", artifact, img)
    except Exception:
        return False
    return True


def test_webhook_unreachable_fails_closed(
    checked: Registry, dev_env: Any, artifacts: Artifacts, registries: Registries
) -> None:
    checked.model("m")
    art, _ = artifacts.upload("m/v1")
    img = image(registries, "serving/sklearn", "webhook-down").reference
    checked.version("v1", "m", art, img)
    checked.wait_condition(MV, "v1", "ImageResolved", "True")
    with stopped(dev_env, "operator"):
        # approvals and registrations are refused while the webhook cannot record them
        for attempt in (
            lambda: checked.approve("v1", "alice"),
            lambda: checked.version("v2", "m", art, img),
        ):
            with pytest.raises(ApiException) as refused:
                attempt()
            assert refused.value.status == 500, refused.value.body
            assert "approval-record.modelreg.dev" in str(refused.value.body)
        annotations = checked.get(MV, "v1")["metadata"].get("annotations") or {}
        assert "modelreg.dev/approval" not in annotations
        assert "modelreg.dev/decisions" not in annotations
    # and nothing slipped through: v1 is still pending
    c = checked.wait_condition(MV, "v1", "Ready", "False", "NotApproved")
    assert "0 of 1" in c["message"]
