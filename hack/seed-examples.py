"""Upload the artifacts and push the images that examples/ needs; apply nothing.

Run by hack/up.sh after `modelreg dev up`, with .dev/env.sh sourced; safe to run again.
Every artifact is byte-for-byte the same on every run, so the examples carry their
sha256 literally (tests/test_examples.py checks that they match). The manifests
themselves are applied by the person following README.md or examples/*/README.md.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

#: S3 key in $MODELREG_S3_BUCKET -> the one file its model.tar.gz holds
ARTIFACTS: dict[str, str] = {
    "fraud-detector/1/model.tar.gz": "modelreg example model: fraud-detector v1\n",
    "fraud-detector/2/model.tar.gz": "modelreg example model: fraud-detector v2\n",
    "fraud-detector/3/model.tar.gz": "modelreg example model: fraud-detector v3\n",
    "churn-predictor/1/model.tar.gz": "modelreg example model: churn-predictor v1\n",
    "credit-scoring/1/model.tar.gz": "modelreg example model: credit-scoring v1\n",
}

#: (the environment variable naming the registry's host:port, repository:tag)
IMAGES: list[tuple[str, str]] = [
    ("MODELREG_REGISTRY", "serving/sklearn:1.5"),
    ("MODELREG_REGISTRY", "serving/sklearn:1.6"),
    # KWOK makes pods of a repository ending in -crashloop crash: the quickstart's bad release
    ("MODELREG_REGISTRY", "serving/sklearn-crashloop:1.7"),
    ("MODELREG_PRIVATE_REGISTRY", "team-churn/xgboost-server:2.0"),
]


def artifact(payload: str) -> bytes:
    """A model.tar.gz holding model.txt, byte-for-byte the same for the same payload."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = payload.encode()
        info = tarfile.TarInfo("model.txt")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def artifact_sha256s() -> dict[str, str]:
    """S3 key -> sha256 of what is uploaded there."""
    return {key: hashlib.sha256(artifact(p)).hexdigest() for key, p in ARTIFACTS.items()}


def upload_artifacts(env: Mapping[str, str]) -> None:
    from modelreg.devenv.s3 import client

    s3 = client(
        env["MODELREG_S3_ENDPOINT"],
        env["AWS_ACCESS_KEY_ID"],
        env["AWS_SECRET_ACCESS_KEY"],
        env["AWS_DEFAULT_REGION"],
    )
    for key, payload in ARTIFACTS.items():
        s3.put_object(
            Bucket=env["MODELREG_S3_BUCKET"],
            Key=key,
            Body=artifact(payload),
            ChecksumAlgorithm="SHA256",
        )


def push_images(env: Mapping[str, str]) -> list[str]:
    """Push a small one-layer image per entry of IMAGES (with crane); return the references."""
    pushed = []
    with tempfile.TemporaryDirectory() as tmp:
        # credentials for the private registry only: the other one is anonymous
        auth = base64.b64encode(
            f"{env['MODELREG_PRIVATE_REGISTRY_USERNAME']}:"
            f"{env['MODELREG_PRIVATE_REGISTRY_PASSWORD']}".encode()
        ).decode()
        config = {"auths": {env["MODELREG_PRIVATE_REGISTRY"]: {"auth": auth}}}
        (Path(tmp) / "config.json").write_text(json.dumps(config))
        for registry_var, repository in IMAGES:
            reference = f"{env[registry_var]}/{repository}"
            layer = Path(tmp) / "layer.tar"
            data = f"modelreg example model server {repository}\n".encode()
            with tarfile.open(layer, "w") as tar:
                info = tarfile.TarInfo("srv/README")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            result = subprocess.run(
                ["crane", "append", "-f", str(layer), "-t", reference, "--insecure"],
                check=False,
                capture_output=True,
                text=True,
                env={**env, "DOCKER_CONFIG": tmp},
            )
            if result.returncode != 0:
                raise SystemExit(f"crane could not push {reference}: {result.stderr}")
            pushed.append(reference)
    return pushed


def main() -> None:
    env = dict(os.environ)
    upload_artifacts(env)
    images = push_images(env)
    bucket = env["MODELREG_S3_BUCKET"]
    for key, sha in artifact_sha256s().items():
        print(f"uploaded s3://{bucket}/{key} (sha256 {sha})", file=sys.stderr)
    for reference in images:
        print(f"pushed {reference}", file=sys.stderr)


if __name__ == "__main__":
    main()
