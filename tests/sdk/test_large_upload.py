"""A large artifact streams through the SDK: one pass, bounded memory, and the operator
verifies it from the sha256 metadata written after the multipart upload."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from modelreg import devenv
from tests.support.cluster import Cluster, Registries
from tests.support.modelreg import Registry, image

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]
SIZE = 300 * 1024 * 1024

SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from modelreg import Client

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    ns, kubeconfig, bucket, path, ref = sys.argv[1:]
    c = Client(ns, context="dana", kubeconfig=kubeconfig, s3_bucket=bucket)
    c.versions("big")  # imports and connections warmed up before measuring
    before = peak_mb()
    v = c.register("big", path, image=ref, capture_lineage=False, wait=True, timeout=120)
    after = peak_mb()
    print(json.dumps({"before": before, "after": after, "name": v.name,
                      "number": v.number, "sha256": v.spec.artifact.sha256,
                      "uri": v.spec.artifact.uri,
                      "verified": (v.status.artifact.sha256 if v.status.artifact else None)}))
    """
)


def test_large_file_upload_streams_with_bounded_memory(
    cluster: Cluster,
    dev_env: devenv.Environment,
    registry: Registry,
    registries: Registries,
    s3: Any,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    registry.model("big")
    big = tmp_path / "big.bin"
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    with big.open("wb") as f:
        for _ in range(SIZE // len(block)):
            f.write(block)
            digest.update(block)
    env = {**os.environ, **dev_env.env_vars()}
    started = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            registry.namespace,
            str(cluster.kubeconfig),
            s3_bucket,
            str(big),
            image(registries, "serving/sklearn", "big").reference,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    growth = result["after"] - result["before"]
    print(f"300 MB registered in {elapsed:.1f}s; peak RSS growth {growth:.0f} MB")
    assert growth < 100, result  # a 16 MB part (plus buffers), never the file
    assert result["sha256"] == digest.hexdigest()
    assert result["verified"] == digest.hexdigest()  # from the metadata: > 256 MB to hash
    bucket, key = result["uri"].removeprefix("s3://").split("/", 1)
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == SIZE
    assert head["Metadata"]["sha256"] == digest.hexdigest()
    # only one version of the object is kept (the copy with the metadata)
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    assert len(versions) == 1
