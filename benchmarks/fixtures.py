"""What the benchmarks register: namespaces, artifacts in the S3 server, images in the
registry, RegisteredModels and ModelVersions (shaped as docs/api.md says)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.api import Api, Obj, mr
from modelreg.devenv import Environment, manifests
from modelreg.devenv.s3 import client as s3_client


def create_namespace(env: Environment, name: str) -> None:
    """A namespace where every person may work with modelreg objects (as ml-demo)."""
    env.kubectl(
        "apply",
        "--server-side",
        "--field-manager=modelreg-bench",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(manifests.demo_namespace_objects(name)),
    )
    # the controller-manager creates the default service account; pods need it
    deadline = time.monotonic() + 60
    while "serviceaccount/default" not in env.kubectl(
        "get", "serviceaccount", "-n", name, "-o", "name", check=False
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no default service account in {name}")
        time.sleep(0.2)


def delete_namespace(api: Api, name: str, wait: float = 0) -> None:
    api.delete(f"/api/v1/namespaces/{name}")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not api.get(f"/api/v1/namespaces/{name}", ok404=True):
            return
        time.sleep(0.5)


@dataclass(frozen=True)
class Artifact:
    uri: str
    sha256: str


def upload_artifacts(env: Environment, prefix: str, count: int) -> list[Artifact]:
    """``count`` small artifacts (2 KiB) in the environment's bucket, with their sha256."""
    v = env.env_vars()
    s3: Any = s3_client(
        v["MODELREG_S3_ENDPOINT"],
        v["AWS_ACCESS_KEY_ID"],
        v["AWS_SECRET_ACCESS_KEY"],
        v["AWS_DEFAULT_REGION"],
    )
    bucket = v["MODELREG_S3_BUCKET"]
    out = []
    for i in range(count):
        data = hashlib.sha256(f"{prefix}-{i}".encode()).digest() * 64
        key = f"bench/{prefix}/{i}/model.bin"
        s3.put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256")
        out.append(Artifact(f"s3://{bucket}/{key}", hashlib.sha256(data).hexdigest()))
    return out


def push_image(env: Environment, repository: str, tag: str) -> str:
    """Push a one-layer image to the anonymous registry; its tag reference."""
    reference = f"{env.registry}/{repository}:{tag}"
    with tempfile.TemporaryDirectory() as tmp:
        layer = Path(tmp) / "layer.tar"
        data = f"modelreg benchmark {repository}:{tag}\n".encode()
        with tarfile.open(layer, "w") as tar:
            info = tarfile.TarInfo("srv/README")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        (Path(tmp) / "config.json").write_text(json.dumps({"auths": {}}))
        result = subprocess.run(
            [env.tools["crane"], "append", "-f", str(layer), "-t", reference, "--insecure"],
            capture_output=True,
            text=True,
            env={"DOCKER_CONFIG": tmp, "HOME": tmp},
            check=False,
            timeout=120,
        )
    if result.returncode != 0:
        raise RuntimeError(f"crane could not push {reference}: {result.stderr}")
    return reference


def model_body(name: str) -> Obj:
    # the default approval policy: one approval by anyone RBAC allows, no self-approval
    return {
        "apiVersion": "modelreg.dev/v1alpha1",
        "kind": "RegisteredModel",
        "metadata": {"name": name},
        "spec": {"description": "benchmark model", "owners": ["bench"]},
    }


def version_body(name: str, model: str, artifact: Artifact, image: str) -> Obj:
    return {
        "apiVersion": "modelreg.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "modelRef": {"name": model},
            "artifact": {"uri": artifact.uri, "sha256": artifact.sha256, "format": "sklearn"},
            "image": {"reference": image},
            "metrics": {"auc": 0.93},
        },
    }


def deployment_body(name: str, model: str) -> Obj:
    """A ModelDeployment that follows the latest Ready version of ``model``."""
    return {
        "apiVersion": "modelreg.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"modelRef": {"name": model}, "replicas": 1},
    }


def create_models(api: Api, namespace: str, names: list[str]) -> None:
    for name in names:
        api.post(mr(namespace, "registeredmodels"), model_body(name))


def conditions(obj: Obj) -> dict[str, str]:
    return {
        c["type"]: c["status"]
        for c in (obj.get("status") or {}).get("conditions", [])
        if "type" in c
    }


def verified(obj: Obj) -> bool:
    """ArtifactVerified and ImageResolved are True (docs/api.md)."""
    c = conditions(obj)
    return c.get("ArtifactVerified") == "True" and c.get("ImageResolved") == "True"


def approve(api: Api, namespace: str, version: str, comment: str = "benchmark") -> None:
    """An approval decision, as ``api``'s user (an approver: alice)."""
    api.merge_patch(
        mr(namespace, "modelversions", version),
        {
            "metadata": {
                "annotations": {
                    "modelreg.dev/approval": "Approved",
                    "modelreg.dev/approval-comment": comment,
                }
            }
        },
    )
