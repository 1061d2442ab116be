"""The registry commands against the real cluster: JSON output parses, denials exit 3 with
the webhook's reason, and ``kubectl modelreg`` runs the same commands."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from modelreg import devenv
from modelreg.cli import main
from tests.support.cluster import Cluster, Registries
from tests.support.modelreg import Artifacts, Registry, image

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]
VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


@pytest.fixture
def cli(cluster: Cluster, dev_env: devenv.Environment, registry: Registry, s3_bucket: str) -> Any:
    env = {**dev_env.env_vars(), "KUBECONFIG": str(cluster.kubeconfig)}
    env["MODELREG_S3_BUCKET"] = s3_bucket

    def run(user: str, *args: str, code: int = 0) -> Result:
        result = CliRunner(env=env).invoke(
            main, [*args, "-n", registry.namespace, "--context", user], catch_exceptions=False
        )
        assert result.exit_code == code, (result.output, result.stderr)
        return result

    return run


def test_cli_register_approve_deploy_rollback_history(
    cli: Any, registry: Registry, registries: Registries, artifacts: Artifacts, tmp_path: Path
) -> None:
    registry.model("m", approvalPolicy={"approvers": {"groups": ["ml-approvers"]}})
    model = tmp_path / "model.pkl"
    model.write_bytes(b"pickled model")
    names = []
    for n, auc in ((1, "0.90"), (2, "0.93")):
        out = cli(
            "dana",
            "register",
            "m",
            str(model),
            "--image",
            image(registries, "serving/sklearn", f"cli-{n}").reference,
            "--metric",
            f"auc={auc}",
            "--param",
            f"depth={n + 6}",
            "--dataset",
            "s3://data/cli/",
            "--wait",
            "-o",
            "json",
        )
        v = json.loads(out.stdout)
        assert v["number"] == n
        assert v["spec"]["artifact"]["sha256"]
        assert v["status"]["registeredBy"] == "dana"
        names.append(v["name"])
    v1, v2 = names

    denied = cli("eve", "approve", v1, "-m", "me too", code=3)
    assert "not an approver" in denied.stderr
    assert cli("dana", "show", "nope", code=4).stderr.startswith("Error: not found")
    cli("alice", "approve", v1, "-m", "ok")
    registry.wait_condition("modelversions", v1, "Ready", "True", "Deployable")
    dep = json.loads(cli("dana", "deploy", "m", "--name", "serve", "--wait", "-o", "json").stdout)
    assert dep["status"]["currentVersion"]["name"] == v1
    cli("bob", "approve", "m:2", "-m", "better")
    registry.wait_condition("modelversions", v2, "Ready", "True", "Deployable")

    listed = json.loads(cli("dana", "versions", "m", "-o", "json").stdout)
    assert [v["number"] for v in listed] == [1, 2]
    table = cli("dana", "versions", "m").stdout
    assert "auc=0.93" in table
    assert "Approved (1/1)" in table

    cmp = json.loads(cli("dana", "compare", v1, v2, "-o", "json").stdout)
    assert cmp["metrics"][0]["name"] == "auc"
    assert cmp["metrics"][0]["delta"] == pytest.approx(0.03)
    assert cmp["parameters"] == [{"field": "depth", "a": "7", "b": "8"}]
    assert "Metrics" in cli("dana", "compare", v1, v2).stdout

    # wait until v2 rolled out, then roll back to v1
    cli("dana", "deploy", "m", "--name", "serve", "--wait")
    rolled = json.loads(cli("dana", "rollback", "serve", "--wait", "-o", "json").stdout)
    assert rolled["status"]["currentVersion"]["name"] == v1
    where = json.loads(cli("dana", "where", v1, "-o", "json").stdout)
    assert where[0]["deployment"] == "serve"
    assert where[0]["serving"] is True
    used = json.loads(cli("dana", "lineage", "--dataset", "s3://data/cli/", "-o", "json").stdout)
    assert {u["version"] for u in used} == {v1, v2}

    events = json.loads(cli("dana", "history", "m", "-o", "json").stdout)
    users = [(e["event"], e.get("user")) for e in events]
    assert ("Registered", "dana") in users
    assert ("Approved", "alice") in users
    assert ("Approved", "bob") in users
    assert "RolledBack" in [e["event"] for e in events]
    assert "alice" in cli("dana", "history", "m").stdout
    assert cli("dana", "show", v1, "-o", "yaml").stdout.startswith("name: ")


def test_kubectl_plugin_lists_versions(
    cluster: Cluster, registry: Registry, registries: Registries, artifacts: Artifacts
) -> None:
    registry.model("m")
    art, _ = artifacts.upload("m/v1")
    registry.version(
        "plugin-v1", "m", art, image(registries, "serving/sklearn", "plugin").reference
    )
    env = {
        **os.environ,
        **cluster.env,
        "KUBECONFIG": str(cluster.kubeconfig),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    out = subprocess.run(
        [cluster.kubectl_bin, "modelreg", "versions", "m", "-n", registry.namespace, "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert [v["name"] for v in json.loads(out.stdout)] == ["plugin-v1"]
    missing = subprocess.run(
        [cluster.kubectl_bin, "modelreg", "show", "nope", "-n", registry.namespace],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 4, missing.stderr
