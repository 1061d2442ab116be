"""The storage-initializer downloads from the real S3 server and re-checks the sha256."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelreg.fetch import ChecksumMismatch, fetch
from modelreg.verify.artifacts import StoreConfig
from tests.support.cluster import environ
from tests.support.modelreg import Artifacts

pytestmark = pytest.mark.cluster


def test_fetch_verifies_and_refuses_a_changed_artifact(
    artifacts: Artifacts, cluster: Any, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024)
    art, sha = artifacts.upload("fetch/model.bin", data)
    with environ(cluster.env):  # credentials come from the environment, as in the pod
        config = StoreConfig.from_env()
        got = fetch(art["uri"], tmp_path / "ok", sha, config)
        assert got.read_bytes() == data
        with pytest.raises(ChecksumMismatch, match="the artifact changed since it was registered"):
            fetch(art["uri"], tmp_path / "bad", "0" * 64, config)
    assert list((tmp_path / "bad").iterdir()) == []  # nothing half-written is left

    env = {**os.environ, **cluster.env}
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelreg",
            "fetch-artifact",
            "--uri",
            art["uri"],
            "--sha256",
            "0" * 64,
            "--dest",
            str(tmp_path / "cli"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert cli.returncode == 1
    assert "expected 0000" in cli.stderr
