"""Import from a real MLflow tracking server (SQLite backend, artifacts in the test S3)."""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from modelreg.cli.mlflow import import_mlflow
from modelreg.mlflow_import import import_registered_models
from tests.support.modelreg import image

pytestmark = [
    pytest.mark.cluster,
    # MLflow's own deprecation warnings (stages, pydantic, ...) are not ours to fix
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MlflowServer:
    uri: str
    log: Path


@pytest.fixture
def mlflow_server(
    dev_env: Any, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MlflowServer]:
    """A real MLflow tracking server (SQLite), its artifacts in ``s3://<bucket>/mlflow``;
    this process gets the S3 settings too, so that its clients upload to the same store."""
    v = dev_env.env_vars()
    s3_env = {
        "MLFLOW_S3_ENDPOINT_URL": v["MODELREG_S3_ENDPOINT"],
        "AWS_ACCESS_KEY_ID": v["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": v["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": v["AWS_DEFAULT_REGION"],
    }
    for k, value in s3_env.items():
        monkeypatch.setenv(k, value)
    port = free_port()
    log = tmp_path / "mlflow-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{tmp_path}/mlflow.db",
                "--default-artifact-root",
                f"s3://{s3_bucket}/mlflow",
                "--no-serve-artifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env={**os.environ, **s3_env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"mlflow server exited: {log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:  # noqa: S310 (http)
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"mlflow server did not answer: {log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield MlflowServer(uri, log)
    finally:
        os.killpg(proc.pid, 15)  # the server and its workers (its own session)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)


def log_runs(uri: str, tmp_path: Path) -> tuple[list[str], str]:
    """Two training runs with params, metrics and a single-file model; a registered model
    with three versions (runs:/ source, direct s3:// source, a directory); alias champion,
    tags and a legacy stage. Returns the run ids and the registered name."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("fraud")
    runs = []
    for i, (lr, auc) in enumerate([("0.1", 0.91), ("0.05", 0.94)]):
        run = client.create_run(experiment, tags={"mlflow.source.name": "train.py"})
        rid = run.info.run_id
        client.log_param(rid, "learning_rate", lr)
        client.log_param(rid, "max_depth", "8")
        client.log_metric(rid, "auc", auc - 0.1, step=0)
        client.log_metric(rid, "auc", auc, step=1)  # the latest value is what counts
        client.log_metric(rid, "latency_p95_ms", 30.0 + i)
        model = tmp_path / f"run{i}" / "model.pkl"
        model.parent.mkdir()
        model.write_bytes(pickle.dumps({"weights": [i, lr, auc]}))
        client.log_artifact(rid, str(model))
        (model.parent / "dir").mkdir()
        (model.parent / "dir" / "MLmodel").write_text("flavors: {}\n")
        (model.parent / "dir" / "model.pkl").write_bytes(b"x")
        client.log_artifacts(rid, str(model.parent / "dir"), "model")
        client.set_terminated(rid)
        runs.append(client.get_run(rid))

    name = "Fraud_Detector"
    client.create_registered_model(name, tags={"domain": "payments"}, description="Card fraud")
    client.create_model_version(
        name,
        f"runs:/{runs[0].info.run_id}/model.pkl",
        run_id=runs[0].info.run_id,
        tags={"team": "payments"},
        description="first",
    )
    client.create_model_version(
        name,
        f"{runs[1].info.artifact_uri}/model.pkl",
        run_id=runs[1].info.run_id,
        description="retrained",
    )
    client.create_model_version(
        name, f"runs:/{runs[1].info.run_id}/model", run_id=runs[1].info.run_id
    )
    client.set_registered_model_alias(name, "champion", "2")
    client.set_model_version_tag(name, "2", "validated", "yes")
    client.transition_model_version_stage(name, "1", "Staging")
    return [r.info.run_id for r in runs], name


def test_import_from_a_real_mlflow_server(
    mlflow_server: MlflowServer,
    registry: Any,
    registries: Any,
    s3_bucket: str,
    tmp_path: Path,
    cluster: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_ids, name = log_runs(mlflow_server.uri, tmp_path)
    img = image(registries)

    report = import_registered_models(
        mlflow_server.uri,
        namespace=registry.namespace,
        image=img.reference,
        kube_api=cluster.api("admin"),
    )
    summary = {(i.kind, i.name): (i.action, i.reason) for i in report.items}
    assert summary[("RegisteredModel", "fraud-detector")] == ("created", "")
    assert summary[("ModelVersion", "fraud-detector-mlflow-1")] == ("created", "")
    assert summary[("ModelVersion", "fraud-detector-mlflow-2")] == ("created", "")
    action, reason = summary[("ModelVersion", "fraud-detector-mlflow-3")]
    assert action == "skipped"
    assert "is a directory" in reason

    rm = registry.get("registeredmodels", "fraud-detector")["spec"]
    assert rm["description"] == "Card fraud"
    assert rm["tags"] == {"domain": "payments", "mlflow.name": name}

    v1 = registry.get("modelversions", "fraud-detector-mlflow-1")
    spec = v1["spec"]
    assert spec["modelRef"] == {"name": "fraud-detector"}
    assert spec["artifact"]["uri"] == f"s3://{s3_bucket}/mlflow/1/{run_ids[0]}/artifacts/model.pkl"
    assert spec["image"]["reference"] == img.reference
    assert spec["description"] == "first"
    assert spec["lineage"]["run"]["system"] == "mlflow"
    assert spec["lineage"]["run"]["id"] == run_ids[0]
    assert spec["lineage"]["run"]["url"].startswith(mlflow_server.uri)
    assert spec["lineage"]["parameters"] == {"learning_rate": "0.1", "max_depth": "8"}
    assert spec["metrics"] == {"auc": pytest.approx(0.91), "latency_p95_ms": 30.0}
    assert spec["tags"] == {
        "team": "payments",
        "mlflow.name": name,
        "mlflow.version": "1",
        "mlflow.stage": "Staging",
    }
    assert not any(k.startswith("mlflow") for k in v1["metadata"].get("annotations") or {})

    spec2 = registry.get("modelversions", "fraud-detector-mlflow-2")["spec"]
    assert spec2["artifact"]["uri"] == (
        f"s3://{s3_bucket}/mlflow/1/{run_ids[1]}/artifacts/model.pkl"
    )
    assert spec2["lineage"]["parameters"]["learning_rate"] == "0.05"
    assert spec2["metrics"]["auc"] == pytest.approx(0.94)
    assert spec2["tags"]["mlflow.alias/champion"] == "true"
    assert spec2["tags"]["validated"] == "yes"

    # the real operator verifies the artifacts in S3 and resolves the image
    for v in ("fraud-detector-mlflow-1", "fraud-detector-mlflow-2"):
        registry.wait_condition("modelversions", v, "ArtifactVerified", "True")
        registry.wait_condition("modelversions", v, "ImageResolved", "True")
    assert registry.number("fraud-detector-mlflow-1") == 1
    assert registry.number("fraud-detector-mlflow-2") == 2

    # again, through the CLI: nothing new, everything unchanged
    before = registry.api().list_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, "modelversions"
    )["items"]
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    args = ["--tracking-uri", mlflow_server.uri, "--image", img.reference]
    args += ["-n", registry.namespace, "--model", name]
    if cluster.kind == "local":
        args += ["--context", "admin"]
    result = CliRunner().invoke(import_mlflow, [*args, "-o", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["summary"] == {"created": 0, "unchanged": 3, "skipped": 1, "would-create": 0}
    assert [i["name"] for i in out["items"] if i["action"] == "skipped"] == [
        "fraud-detector-mlflow-3"
    ]
    after = registry.api().list_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", registry.namespace, "modelversions"
    )["items"]

    def identity(objs: list[Any]) -> list[tuple[str, str, str]]:
        return sorted(
            (o["metadata"]["name"], o["metadata"]["uid"], json.dumps(o["spec"], sort_keys=True))
            for o in objs
        )

    assert identity(after) == identity(before)

    # the table, as a dry run: the same result, nothing created
    table = CliRunner().invoke(import_mlflow, [*args, "--dry-run"])
    assert table.exit_code == 0, table.output
    assert "fraud-detector-mlflow-3" in table.output
    assert "3 unchanged, 1 skipped" in table.output
