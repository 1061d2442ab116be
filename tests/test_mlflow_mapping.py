"""MLflow -> modelreg mapping (modelreg.mlflow_import), without a server or a cluster."""

from __future__ import annotations

import re

import pytest

from modelreg.api.base import DNS_SUBDOMAIN
from modelreg.mlflow_import import (
    MAX_TAGS,
    MlflowDataset,
    MlflowModel,
    MlflowRun,
    MlflowVersion,
    SkipVersion,
    bounded_map,
    dns_name,
    manifest,
    map_key,
    model_version_spec,
    registered_model_spec,
    resolve_artifact_uri,
    version_name,
)

IMAGE = "registry.example.com/serving/sklearn:1.5"
RUN = MlflowRun(
    run_id="4f2e9a",
    artifact_uri="s3://mlflow/1/4f2e9a/artifacts",
    experiment_id="1",
    params={"learning_rate": "0.05", "max_depth": "8"},
    metrics={"auc": 0.93, "loss": float("nan")},
    tags={
        "mlflow.source.git.repoURL": "https://git.example.com/fraud.git",
        "mlflow.source.git.commit": "9B1C2D3E",
        "mlflow.source.name": "train.py",
    },
    datasets=(
        MlflowDataset("transactions", '{"uri": "s3://data/tx/2026-10/"}', "abc123"),
        MlflowDataset("in-memory", '{"tags": {}}', "d"),
    ),
)
MODEL = MlflowModel(
    name="Fraud_Detector",
    description="Card fraud",
    tags={"domain": "payments"},
    aliases={"champion": "2", "challenger": "3"},
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("fraud-detector", "fraud-detector"),
        ("Fraud_Detector", "fraud-detector"),
        ("  my model (v2)!", "my-model-v2"),
        ("a..b--c", "a.b-c"),
        ("___", ""),
    ],
)
def test_dns_name(name: str, expected: str) -> None:
    assert dns_name(name) == expected


def test_long_names_are_shortened_deterministically_and_stay_apart() -> None:
    a, b = dns_name("x" * 300 + "a"), dns_name("x" * 300 + "b")
    assert a != b
    assert len(a) == len(b) == 200
    assert a == dns_name("x" * 300 + "a")
    assert re.match(DNS_SUBDOMAIN, version_name(a, "123456"))
    assert len(version_name(a, "123456")) <= 253


def test_map_keys_are_made_label_like() -> None:
    assert map_key("mlflow.alias/champion") == "mlflow.alias/champion"
    assert map_key("acc@1") == "acc_1"
    assert map_key("_private_") == "private"
    assert map_key("@@") == ""
    assert len(map_key("k" * 300)) == 128


def test_bounded_map_is_deterministic_and_reports() -> None:
    notes: list[str] = []
    values = {f"k{i:03}": "v" * 300 for i in range(70)} | {"bad key": "x", "@": "y"}
    out = bounded_map("tags", values, MAX_TAGS, 256, notes)
    assert len(out) == MAX_TAGS
    assert list(out) == sorted(out)
    assert "bad_key" in out
    assert "@" not in out
    assert all(len(v) <= 256 for v in out.values())
    text = " ".join(notes)
    for word in ("rewritten", "dropped", "truncated", "kept"):
        assert word in text


def test_resolve_artifact_uri() -> None:
    assert resolve_artifact_uri("runs:/4f2e9a/model.pkl", RUN) == (
        "s3://mlflow/1/4f2e9a/artifacts/model.pkl"
    )
    assert resolve_artifact_uri("s3://bucket/m/model.pkl", None) == "s3://bucket/m/model.pkl"
    mapped = resolve_artifact_uri(
        "mlflow-artifacts:/1/abc/artifacts/model.pkl",
        None,
        {"mlflow-artifacts:/": "s3://mlflow/", "mlflow-artifacts:/1/": "s3://one/"},
    )
    assert mapped == "s3://one/abc/artifacts/model.pkl"  # the longest prefix wins
    with pytest.raises(SkipVersion, match="--map-artifacts"):
        resolve_artifact_uri("mlflow-artifacts:/1/abc/model.pkl", None)
    with pytest.raises(SkipVersion, match="not an s3:// or https://"):
        resolve_artifact_uri("file:///tmp/mlruns/1/abc/model.pkl", None)
    with pytest.raises(SkipVersion, match="run other not found"):
        resolve_artifact_uri("runs:/other/model.pkl", RUN)
    with pytest.raises(SkipVersion, match="logged model"):
        resolve_artifact_uri("models:/m-0123", RUN)


def test_registered_model_spec() -> None:
    notes: list[str] = []
    spec = registered_model_spec(MODEL, notes)
    assert spec["description"] == "Card fraud"
    assert spec["tags"] == {"domain": "payments", "mlflow.name": "Fraud_Detector"}
    body = manifest("RegisteredModel", dns_name(MODEL.name), "ns", spec)
    assert body["metadata"] == {"name": "fraud-detector", "namespace": "ns"}


def test_model_version_spec_maps_every_field() -> None:
    version = MlflowVersion(
        version="2",
        source="runs:/4f2e9a/model.pkl",
        run_id="4f2e9a",
        description="Retrained",
        tags={"team": "payments", "mlflow.version": "spoofed"},
        aliases=("champion",),
        stage="Production",
    )
    notes: list[str] = []
    spec = model_version_spec(
        MODEL,
        "fraud-detector",
        version,
        RUN,
        image=IMAGE,
        tracking_uri="http://mlflow.example.com:5000/",
        notes=notes,
    )
    assert spec["modelRef"] == {"name": "fraud-detector"}
    assert spec["artifact"] == {"uri": "s3://mlflow/1/4f2e9a/artifacts/model.pkl"}
    assert spec["image"] == {"reference": IMAGE}
    assert spec["description"] == "Retrained"
    assert spec["tags"] == {
        "team": "payments",
        "mlflow.name": "Fraud_Detector",
        "mlflow.version": "2",  # the importer's own tags win
        "mlflow.stage": "Production",
        "mlflow.alias/champion": "true",
    }
    lineage = spec["lineage"]
    assert lineage["run"] == {
        "system": "mlflow",
        "id": "4f2e9a",
        "url": "http://mlflow.example.com:5000/#/experiments/1/runs/4f2e9a",
    }
    assert lineage["parameters"] == {"learning_rate": "0.05", "max_depth": "8"}
    assert lineage["code"] == {
        "repository": "https://git.example.com/fraud.git",
        "commit": "9b1c2d3e",
        "path": "train.py",
    }
    assert lineage["datasets"] == [
        {"name": "transactions", "uri": "s3://data/tx/2026-10/", "version": "abc123"}
    ]
    assert spec["metrics"] == {"auc": 0.93}
    assert any("non-finite" in n for n in notes)
    assert any("in-memory" in n for n in notes)
    assert "annotations" not in manifest("ModelVersion", "x", "ns", spec)["metadata"]


def test_model_version_without_run() -> None:
    version = MlflowVersion(version="7", source="https://models.example.com/m/7/model.onnx")
    spec = model_version_spec(MODEL, "fraud-detector", version, None, image=IMAGE)
    assert spec["artifact"]["uri"] == "https://models.example.com/m/7/model.onnx"
    assert "lineage" not in spec or not spec["lineage"].get("run")
    assert spec["tags"] == {"mlflow.name": "Fraud_Detector", "mlflow.version": "7"}


def test_model_version_bounds() -> None:
    run = MlflowRun(
        run_id="r1",
        artifact_uri="s3://mlflow/0/r1/artifacts",
        params={f"p{i:03}": "x" * 2000 for i in range(200)},
        metrics={f"m{i:03}": float(i) for i in range(200)},
    )
    version = MlflowVersion(
        version="1",
        source="runs:/r1/model.pkl",
        run_id="r1",
        tags={f"t{i:03}": "v" for i in range(100)},
        aliases=("champion",),
    )
    notes: list[str] = []
    spec = model_version_spec(MODEL, "m", version, run, image=IMAGE, notes=notes)
    assert len(spec["lineage"]["parameters"]) == 128
    assert all(len(v) == 1024 for v in spec["lineage"]["parameters"].values())
    assert len(spec["metrics"]) == 128
    assert len(spec["tags"]) == 64
    assert spec["tags"]["mlflow.alias/champion"] == "true"  # never dropped for user tags
    assert spec["tags"]["mlflow.version"] == "1"
    assert len(notes) >= 4


@pytest.mark.parametrize(
    ("version", "image", "match"),
    [
        (
            MlflowVersion(version="1", source="s3://bucket/k", status="PENDING_REGISTRATION"),
            IMAGE,
            "READY",
        ),
        (MlflowVersion(version="1", source="s3://b/k"), IMAGE, "not an s3:// or https://"),
        (MlflowVersion(version="1", source="s3://bucket/k"), "Not An Image", "schema"),
    ],
)
def test_versions_that_are_skipped(version: MlflowVersion, image: str, match: str) -> None:
    with pytest.raises(SkipVersion, match=match):
        model_version_spec(MODEL, "m", version, None, image=image)


def test_cli_help_and_bad_mapping() -> None:
    from click.testing import CliRunner

    from modelreg.cli.mlflow import import_mlflow

    result = CliRunner().invoke(import_mlflow, ["--help"])
    assert result.exit_code == 0
    assert "--map-artifacts mlflow-artifacts:/=s3://mlflow/" in result.output
    bad = ["--tracking-uri", "http://x", "--image", IMAGE, "--map-artifacts", "nope"]
    result = CliRunner().invoke(import_mlflow, bad)
    assert result.exit_code == 2
    assert "FROM=TO" in result.output
