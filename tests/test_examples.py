"""examples/ applies as the README says, verifies, and rolls out once approved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Cluster
from tests.support.modelreg import Registry

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]
REPO = Path(__file__).resolve().parent.parent


def test_examples_register_and_deploy_after_approval(
    cluster: Cluster, dev_env: Any, modelreg_crds: list[str]
) -> None:
    env = {
        **os.environ,
        **cluster.env,
        "PATH": f"{dev_env.tools.bin_path}{os.pathsep}{os.environ['PATH']}",
    }
    # start from nothing, also when the test environment is kept between runs
    cluster.kubectl(
        "delete",
        "-n",
        "ml-demo",
        "--ignore-not-found",
        "--wait",
        "modeldeployment/fraud-detector",
        "modelversion/fraud-detector-v1",
        "registeredmodel/fraud-detector",
    )
    for _ in range(2):  # hack/up.sh may run any number of times
        seeded = subprocess.run(
            [sys.executable, str(REPO / "hack" / "seed-examples.py")],
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
        assert seeded.returncode == 0, seeded.stderr
    registry = Registry(cluster, "ml-demo")
    mv = registry.wait_condition(
        "modelversions", "fraud-detector-v1", "Ready", "False", "NotApproved"
    )
    assert "0 of 1 required approvals" in mv["message"]
    status = registry.get("modelversions", "fraud-detector-v1")["status"]
    assert status["registeredBy"] == "dana"
    assert status["artifact"]["sha256"]
    registry.approve("fraud-detector-v1", "alice", "looks good")
    registry.wait_condition(
        "modeldeployments", "fraud-detector", "Ready", "True", "Serving", timeout=90
    )
