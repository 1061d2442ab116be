"""Notifications end to end: the operator in the local environment POSTs every transition of
the contract, signed, to a real HTTP receiver on 127.0.0.1, and catches up after the
receiver was down."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from modelreg.api.registered_model import NotificationEvent
from tests.controller.test_deployments import MD, MV, deployment, ready_version, served
from tests.support.cluster import Registries
from tests.support.modelreg import Artifacts, Registry, image, wait_for
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]
KEY = b"pipeline-hook-key"
ALL = [e.value for e in NotificationEvent]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(key=KEY)
    r.start()
    yield r
    r.stop()


def hook_secret(registry: Registry) -> None:
    core = kubernetes.client.CoreV1Api(registry.cluster.api())
    core.create_namespaced_secret(
        registry.namespace,
        {"metadata": {"name": "hook"}, "data": {"key": base64.b64encode(KEY).decode()}},
    )


def events(receiver: Receiver) -> dict[str, dict[str, Any]]:
    """The CloudEvents received, de-duplicated by id (what a receiver would keep)."""
    return {r.id: json.loads(r.body) for r in receiver.got() if r.answered == 200}


def types(receiver: Receiver) -> Counter[str]:
    return Counter(e["type"].removeprefix("dev.modelreg.") for e in events(receiver).values())


def test_every_transition_is_delivered_signed_with_its_data(
    registry: Registry, artifacts: Artifacts, registries: Registries, receiver: Receiver
) -> None:
    hook_secret(registry)
    registry.model(
        "m", notifications=[{"url": receiver.url, "events": ALL, "secretRef": {"name": "hook"}}]
    )
    img, _ = ready_version(registry, artifacts, registries, "v1", "m")
    deployment(registry)
    served(registry, "v1")
    ready_version(registry, artifacts, registries, "v2", "m", path="serving/model-crashloop")
    registry.wait_condition(MD, "serve", "RolledBack", "True", "RolloutFailed", timeout=90)
    art, _ = artifacts.upload("m/v3")
    bad = {**art, "sha256": "0" * 64}
    registry.version("v3", "m", bad, image(registries, "serving/sklearn", "v3").reference)
    registry.wait_condition(MV, "v3", "ArtifactVerified", "False", "ChecksumMismatch")
    registry.reject("v3", "bob", "wrong artifact")
    registry.annotate("v3", "dana", archived="true")

    wait_for("every event type", lambda: set(types(receiver)) >= set(ALL), timeout=60)
    assert all(r.signature_ok for r in receiver.got()), "a request was not signed with the key"
    got = list(events(receiver).values())

    def all_of(type_: str, subject: str) -> list[dict[str, Any]]:
        wanted = f"dev.modelreg.{type_}"
        return [e for e in got if e["type"] == wanted and e["subject"] == subject]

    def one(type_: str, subject: str) -> dict[str, Any]:
        matching = all_of(type_, subject)
        assert len(matching) == 1, (type_, subject, [e["type"] for e in got])
        return matching[0]

    approved = one("VersionApproved", "v1")
    assert approved["specversion"] == "1.0"
    assert approved["source"] == (
        f"/apis/modelreg.dev/v1alpha1/namespaces/{registry.namespace}/modelversions/v1"
    )
    assert approved["data"]["user"] == "alice"
    assert approved["data"]["model"] == "m"
    assert approved["data"]["versionNumber"] == 1
    assert approved["data"]["digest"] == img.digest
    assert approved["data"]["artifactUri"].endswith("/m/v1")
    assert one("VersionRegistered", "v1")["data"]["user"] == "dana"
    assert one("VersionVerified", "v1")["data"]["digest"] == img.digest
    failed = one("VersionVerificationFailed", "v3")
    assert failed["data"]["reason"] == "ChecksumMismatch"
    assert one("VersionRejected", "v3")["data"]["user"] == "bob"
    assert one("VersionArchived", "v3")["data"]["user"] == "dana"
    # v1 rolled out twice: first, and again after v2 failed
    deployed = all_of("DeploymentSucceeded", "serve")
    assert [e["data"]["version"] for e in deployed] == ["v1", "v1"]
    assert deployed[0]["source"].endswith("/modeldeployments/serve")
    assert deployed[0]["data"]["deployment"] == "serve"
    assert one("DeploymentFailed", "serve")["data"]["version"] == "v2"
    rolled_back = one("DeploymentRolledBack", "serve")
    assert rolled_back["data"]["version"] == "v1"
    assert "rolled back to v1" in rolled_back["data"]["message"]


def test_receiver_outage_loses_nothing_and_is_reported(
    registry: Registry, artifacts: Artifacts, registries: Registries, receiver: Receiver
) -> None:
    registry.model("m", notifications=[{"url": receiver.url, "events": ["VersionRegistered"]}])
    ready_version(registry, artifacts, registries, "v0", "m", approve=False)
    wait_for("the first event", lambda: types(receiver)["VersionRegistered"] == 1)
    receiver.stop()
    names = [f"v{i}" for i in range(1, 6)]
    for name in names:
        art, _ = artifacts.upload(f"m/{name}")
        registry.version(name, "m", art, image(registries, "serving/sklearn", name).reference)
    # the failure is visible on the RegisteredModel while the receiver is down
    wait_for(
        "a NotificationFailed Event",
        lambda: "NotificationFailed" in {reason for reason, _ in registry.events("m")},
        timeout=30,
    )
    time.sleep(2)
    receiver.start()  # back on the same port
    wait_for(
        "every event after the outage",
        lambda: types(receiver)["VersionRegistered"] == 6,
        timeout=90,
    )
    subjects = Counter(e["subject"] for e in events(receiver).values())
    assert subjects == Counter(["v0", *names])  # each exactly once after de-duplication
    duplicates = len(receiver.got()) - len(events(receiver))
    assert duplicates <= len(names), f"{duplicates} duplicate deliveries"
