"""Upload the artifacts and push the images that examples/ needs; apply nothing.

Run by hack/up.sh after `modelreg dev up`, with .dev/env.sh sourced; safe to run again.
Every artifact is byte-for-byte the same on every run, so the examples carry their
sha256 literally (tests/test_examples.py checks that they match). The manifests
themselves are applied by the person following README.md or examples/*/README.md.

The Quick start's versions are real models: a scikit-learn decision tree trained here in
a second on generated card transactions (fixed seeds; a tree's thresholds are midpoints of
the data, so the bytes are the same on every machine with the pinned scikit-learn),
saved as ``model.joblib`` in a directory and packed as the SDK packs a directory. Its
serving image is MLServer (hack/build-images.sh), as ``serving/sklearn:1.5`` and ``:1.6``.
Version 3's ``model.joblib`` is not a model: the server cannot load it, and exits.
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
from typing import Any

#: the Quick start's models: S3 key -> (seed of its training data, its depth); None: a
#: model.joblib that is not a model (the broken version 3)
MODELS: dict[str, tuple[int, int] | None] = {
    "fraud-detector/1/model.tar.gz": (10, 4),  # "October's data"
    "fraud-detector/2/model.tar.gz": (11, 5),  # "November's", a deeper tree
    "fraud-detector/3/model.tar.gz": None,
}
#: the other examples' artifacts (never served): S3 key -> the one file its tar.gz holds
PLACEHOLDERS: dict[str, str] = {
    "churn-predictor/1/model.tar.gz": "modelreg example model: churn-predictor v1\n",
    "credit-scoring/1/model.tar.gz": "modelreg example model: credit-scoring v1\n",
}
ARTIFACTS = [*MODELS, *PLACEHOLDERS]
#: the features of a transaction, in the order the model takes them
FEATURES = ("amount", "hour", "merchant_risk", "distance_km")

#: (the environment variable naming the registry's host:port, repository:tag)
IMAGES: list[tuple[str, str]] = [
    ("MODELREG_REGISTRY", "serving/sklearn:1.5"),
    ("MODELREG_REGISTRY", "serving/sklearn:1.6"),
    ("MODELREG_PRIVATE_REGISTRY", "team-churn/xgboost-server:2.0"),
]
#: tags that are the real serving runtime (MLServer) when the environment has one
SERVING = {"serving/sklearn:1.5", "serving/sklearn:1.6"}


def transactions(seed: int, n: int = 2000) -> tuple[Any, Any]:
    """Generated card transactions and whether each was fraud (deterministic per seed)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 40.0, n).round(2)
    hour = rng.integers(0, 24, n)
    merchant_risk = rng.random(n).round(3)
    distance = rng.exponential(15.0, n).round(1)
    x = np.column_stack([amount, hour, merchant_risk, distance])
    score = (amount > 150) * 1.0 + (hour < 5) * 0.8 + merchant_risk * 1.5 + (distance > 60) * 0.9
    y = (score + rng.normal(0, 0.3, n) > 1.9).astype(int)
    return x, y


def model_directory(key: str, into: Path) -> Path:
    """The directory the SDK would upload for ``key``: model.joblib (and nothing else)."""
    d = into / key.split("/")[1]
    d.mkdir(parents=True)
    spec = MODELS[key]
    if spec is None:
        (d / "model.joblib").write_bytes(b"this is not a scikit-learn model\n")
        return d
    import joblib
    from sklearn.tree import DecisionTreeClassifier

    seed, depth = spec
    x, y = transactions(seed)
    tree = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x, y)
    joblib.dump(tree, d / "model.joblib")
    return d


def artifact(key: str) -> bytes:
    """The bytes uploaded at ``key``, the same on every run."""
    if key in MODELS:
        from modelreg.sdk.upload import pack_directory

        with tempfile.TemporaryDirectory() as tmp:
            buf = io.BytesIO()
            pack_directory(model_directory(key, Path(tmp)), buf)
            return buf.getvalue()
    return placeholder(PLACEHOLDERS[key])


def placeholder(payload: str) -> bytes:
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
    return {key: hashlib.sha256(artifact(key)).hexdigest() for key in ARTIFACTS}


def upload_artifacts(env: Mapping[str, str]) -> None:
    from modelreg.devenv.s3 import client

    s3 = client(
        env["MODELREG_S3_ENDPOINT"],
        env["AWS_ACCESS_KEY_ID"],
        env["AWS_SECRET_ACCESS_KEY"],
        env["AWS_DEFAULT_REGION"],
    )
    for key in ARTIFACTS:
        s3.put_object(
            Bucket=env["MODELREG_S3_BUCKET"],
            Key=key,
            Body=artifact(key),
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
            if repository in SERVING and (runtime := env.get("MODELREG_MLSERVER_IMAGE")):
                pushed.append(copy_runtime(runtime, reference, repository.split(":")[1], env))
                continue
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


def copy_runtime(runtime: str, reference: str, tag: str, env: Mapping[str, str]) -> str:
    """The real serving runtime under the examples' name; each tag its own digest (a
    label says which), as two releases of a runtime would be."""
    for argv in (
        ["crane", "copy", "--insecure", runtime, reference],
        ["crane", "mutate", "--insecure", f"--label=org.opencontainers.image.version={tag}",
         "-t", reference, reference],
    ):  # fmt: skip
        result = subprocess.run(argv, check=False, capture_output=True, text=True, env={**env})
        if result.returncode != 0:
            raise SystemExit(f"crane could not push {reference}: {result.stderr}")
    return reference


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
