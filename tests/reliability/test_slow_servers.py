"""No starvation (issue 15, item 6): a registry that trickles one byte at a time holds
neither revocations nor other models' verification. On main at 4483a96, 18 versions
using such a registry held all 16 executor threads, and for as long as it kept sending
no revocation took effect anywhere."""

from __future__ import annotations

import time

import pytest

from tests.controller.test_deployments import MD, MV, ready_version, served
from tests.support.cluster import Registries
from tests.support.http_server import trickling
from tests.support.modelreg import Artifacts, Registry, image, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]

SLOW_VERSIONS = 50


def timed_verification(
    registry: Registry, artifacts: Artifacts, registries: Registries, name: str
) -> float:
    art, _ = artifacts.upload(f"fast/{name}")
    start = time.monotonic()
    registry.version(name, "fast", art, image(registries, "serving/fast", name).reference)
    registry.wait_condition(MV, name, "ImageResolved", "True", timeout=60)
    registry.wait_condition(MV, name, "ArtifactVerified", "True", timeout=60)
    return time.monotonic() - start


def test_a_trickling_registry_holds_up_neither_revocations_nor_other_models(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("m")
    registry.model("fast")
    registry.model("slow")
    ready_version(registry, artifacts, registries, "v1", "m")
    ready_version(registry, artifacts, registries, "v2", "m")
    registry.create(MD, "ModelDeployment", "serve", {"modelRef": {"name": "m"}})
    served(registry, "v2")
    before = timed_verification(registry, artifacts, registries, "before")

    with trickling(delay=2.0) as host:
        art, _ = artifacts.upload("slow/any")
        for i in range(SLOW_VERSIONS):
            registry.version(f"s{i}", "slow", art, f"{host}/serving/slow:{i}")
        time.sleep(5)  # every slow check has started (or been told to wait) by now

        start = time.monotonic()
        registry.reject("v2", "bob", "revoked while a registry trickles")
        wait_for(
            "v2 no longer served",
            lambda: (
                (registry.get(MD, "serve")["status"].get("currentVersion") or {}).get("name")
                != "v2"
            ),
            timeout=60,
        )
        revoked = time.monotonic() - start
        served(registry, "v1")
        during = timed_verification(registry, artifacts, registries, "during")
        pending = [registry.condition(MV, f"s{i}", "ImageResolved") for i in range(SLOW_VERSIONS)]
    # none of the slow ones was resolved; each says why, and none is a verdict
    assert all(c is None or c["status"] == "Unknown" for c in pending), pending
    print(
        f"\nrevocation with {SLOW_VERSIONS} versions on a trickling registry: {revoked:.2f} s; "
        f"a new version elsewhere verified in {during:.2f} s (before: {before:.2f} s)"
    )
