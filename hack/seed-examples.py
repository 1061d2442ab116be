"""Upload the examples' artifact, push their image, and apply examples/*.yaml as dana.

Run by hack/up.sh after `modelreg dev up`, with .dev/env.sh sourced.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import string
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from modelreg.devenv.s3 import client

root = Path(__file__).resolve().parent.parent
env = os.environ

# a small model archive, byte-for-byte the same every run (the version's spec is immutable)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
    payload = b"modelreg example model: fraud-detector v1\n"
    info = tarfile.TarInfo("model.txt")
    info.size, info.mtime = len(payload), 0
    tar.addfile(info, io.BytesIO(payload))
artifact = gzip.compress(buf.getvalue(), mtime=0)
sha = hashlib.sha256(artifact).hexdigest()
s3 = client(
    env["MODELREG_S3_ENDPOINT"],
    env["AWS_ACCESS_KEY_ID"],
    env["AWS_SECRET_ACCESS_KEY"],
    env["AWS_DEFAULT_REGION"],
)
s3.put_object(
    Bucket=env["MODELREG_S3_BUCKET"],
    Key="fraud-detector/1/model.tar.gz",
    Body=artifact,
    ChecksumAlgorithm="SHA256",
)

with tempfile.TemporaryDirectory() as tmp:
    layer = Path(tmp) / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        info = tarfile.TarInfo("srv/README")
        info.size = len(b"example model server\n")
        tar.addfile(info, io.BytesIO(b"example model server\n"))
    subprocess.run(
        [
            "crane",
            "append",
            "-f",
            str(layer),
            "-t",
            f"{env['MODELREG_REGISTRY']}/serving/sklearn:1.5",
            "--insecure",
        ],
        check=True,
        capture_output=True,
        env={**env, "DOCKER_CONFIG": tmp},
    )

for path in sorted((root / "examples").glob("*.yaml")):
    text = string.Template(path.read_text()).substitute(
        ARTIFACT_SHA256=sha, MODELREG_REGISTRY=env["MODELREG_REGISTRY"]
    )
    subprocess.run(
        ["kubectl", "--context=dana", "apply", "-n", "ml-demo", "-f", "-"],
        input=text,
        text=True,
        check=True,
    )
print(f"examples applied (artifact sha256 {sha})", file=sys.stderr)
