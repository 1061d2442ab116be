"""kill -9 of the operator at random moments during a workload of versions, approvals,
rejections, failing rollouts and rollbacks; the invariant checker watches throughout, and
afterwards everything converges without help."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from modelreg import devenv
from modelreg.devenv import process
from tests.support.cluster import Cluster, Registries
from tests.support.invariants import InvariantChecker
from tests.support.modelreg import Artifacts, Registry, image, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]
MODELS = 4
VERSIONS_PER_MODEL = int(os.environ.get("MODELREG_KILL_VERSIONS", "25"))
KILLS = int(os.environ.get("MODELREG_KILLS", "12"))


def retrying(what: str, call: Callable[[], Any], timeout: float = 90) -> Any:
    """Retry while the operator (and so its fail-closed webhook) is down."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ApiException as e:
            if e.status == 409 or time.monotonic() > deadline:
                if e.status == 409:
                    return None  # created by an earlier attempt whose answer was lost
                raise AssertionError(f"{what}: {e.status} {e.body}") from e
            if e.status not in (500, 503, 504) or "webhook" not in str(e.body):
                raise
            time.sleep(0.3)


def killer(dev_env: Any, stop: threading.Event, kills: list[float], rng: random.Random) -> None:
    pidfile = dev_env.layout.pidfile("operator")
    while not stop.is_set() and len(kills) < KILLS:
        if stop.wait(rng.uniform(0.5, 4.0)):
            return
        running = process.read_pidfile(pidfile)
        if running is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(running.pid, signal.SIGKILL)
        kills.append(time.monotonic())
        time.sleep(rng.uniform(0.0, 1.5))  # down for a moment, sometimes none
        devenv.up(dev_env.layout.root, log=lambda _: None)


def test_kill_9_during_a_workload_breaks_no_invariant_and_converges(
    cluster: Cluster,
    dev_env: Any,
    registry: Registry,
    artifacts: Artifacts,
    registries: Registries,
) -> None:
    rng = random.Random(int(os.environ.get("MODELREG_KILL_SEED", "7")))  # noqa: S311
    checker = InvariantChecker(cluster.api(), registry.namespace).start()
    good = image(registries, "serving/sklearn", "kill").reference
    crashing = image(registries, "serving/model-crashloop", "kill").reference
    stop, kills = threading.Event(), list[float]()
    chaos = threading.Thread(target=killer, args=(dev_env, stop, kills, rng), daemon=True)
    models = [f"m{i}" for i in range(MODELS)]
    expected: dict[str, str] = {}  # model -> the version its deployment must serve at the end
    try:
        for m in models:
            spec = {"modelRef": {"name": m}, "rollout": {"progressDeadlineSeconds": 20}}
            retrying(f"model {m}", lambda: registry.model(m))  # noqa: B023
            retrying(
                f"deployment {m}",
                lambda: registry.create("modeldeployments", "ModelDeployment", m, spec),  # noqa: B023
            )
        chaos.start()
        for n in range(1, VERSIONS_PER_MODEL + 1):
            for m in models:
                name = f"{m}-v{n}"
                art, _ = artifacts.upload(f"{m}/{n}")
                broken = rng.random() < 0.15
                retrying(
                    f"register {name}",
                    lambda: registry.version(name, m, art, crashing if broken else good),  # noqa: B023
                )
                roll = rng.random()
                if roll < 0.6:
                    retrying(f"approve {name}", lambda: registry.approve(name, "alice"))  # noqa: B023
                    if not broken:
                        expected[m] = name
                elif roll < 0.7:
                    retrying(f"reject {name}", lambda: registry.reject(name, "bob"))  # noqa: B023
        stop.set()
        chaos.join(timeout=60)
        devenv.up(dev_env.layout.root, log=lambda _: None)

        # converges without help: every version explained, every deployment on the newest
        # approved version that did not fail
        def converged() -> bool:
            for m in models:
                status = registry.get("modeldeployments", m).get("status") or {}
                current = (status.get("currentVersion") or {}).get("name")
                if m in expected and current != expected[m]:
                    return False
            return True

        wait_for("every deployment on its expected version", converged, timeout=240)
    finally:
        stop.set()
        violations = checker.stop()
    print(
        f"kill -9: {len(kills)} kills, {MODELS * VERSIONS_PER_MODEL} versions, "
        f"{checker.revisions} Deployment revisions and {checker.version_events} version "
        "changes checked"
    )
    assert len(kills) >= min(KILLS, 3), kills
    assert not violations, "\n".join(violations)
    assert checker.revisions > 0
