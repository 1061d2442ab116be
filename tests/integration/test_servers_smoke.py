"""The S3 server and the registries are real servers speaking their real protocols."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.support.cluster import Registries

pytestmark = pytest.mark.cluster

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def test_s3_object_round_trips_with_its_checksum(s3: Any, s3_bucket: str) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    sha = hashlib.sha256(data)
    put = s3.put_object(
        Bucket=s3_bucket,
        Key="fraud/7/model.tar.gz",
        Body=data,
        ChecksumAlgorithm="SHA256",
        Metadata={"sha256": sha.hexdigest()},
    )
    assert put["ChecksumSHA256"] == base64.b64encode(sha.digest()).decode()

    head = s3.head_object(Bucket=s3_bucket, Key="fraud/7/model.tar.gz", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(data)
    assert head["ChecksumSHA256"] == base64.b64encode(sha.digest()).decode()
    assert head["Metadata"]["sha256"] == sha.hexdigest()
    assert head["VersionId"] == put["VersionId"]
    assert head["VersionId"] not in ("", "null")
    assert head["ETag"] == put["ETag"]

    body = s3.get_object(Bucket=s3_bucket, Key="fraud/7/model.tar.gz")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha.hexdigest()

    # a wrong checksum is refused by the server, not stored
    with pytest.raises(ClientError) as err:
        s3.put_object(
            Bucket=s3_bucket,
            Key="bad",
            Body=b"abc",
            ChecksumSHA256=base64.b64encode(hashlib.sha256(b"xyz").digest()).decode(),
        )
    assert err.value.response["Error"]["Code"] in (
        "BadDigest",
        "XAmzContentChecksumMismatch",
        "InvalidRequest",
    )
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=s3_bucket, Key="bad")
    assert missing.value.response["Error"]["Code"] == "404"


def test_dev_bucket_exists_and_is_versioned(s3: Any) -> None:
    assert s3.get_bucket_versioning(Bucket="models")["Status"] == "Enabled"


def _head_manifest(
    registry: str, repo_path: str, tag: str, auth: tuple[str, str] | None = None
) -> httpx.Response:
    return httpx.head(
        f"http://{registry}/v2/{repo_path}/manifests/{tag}",
        headers={"Accept": MANIFEST_TYPES},
        auth=auth,
        timeout=10,
    )


@pytest.mark.parametrize("oci", [False, True], ids=["docker-v2", "oci"])
def test_public_image_resolves_to_digest(registries: Registries, oci: bool) -> None:
    image = registries.push("serving/sklearn", "1.5", oci=oci)
    expected = (
        "application/vnd.oci.image.manifest.v1+json"
        if oci
        else "application/vnd.docker.distribution.manifest.v2+json"
    )
    assert image.media_type == expected

    r = _head_manifest(registries.public, "serving/sklearn", "1.5")
    assert r.status_code == 200
    assert r.headers["Docker-Content-Digest"] == image.digest
    assert r.headers["Content-Type"] == expected
    # the digest is content: fetching by digest gives bytes that hash to it
    body = httpx.get(
        f"http://{registries.public}/v2/serving/sklearn/manifests/{image.digest}",
        headers={"Accept": MANIFEST_TYPES},
        timeout=10,
    ).content
    assert "sha256:" + hashlib.sha256(body).hexdigest() == image.digest
    assert _head_manifest(registries.public, "serving/sklearn", "no-such-tag").status_code == 404


def test_private_image_needs_credentials(registries: Registries) -> None:
    image = registries.push("secret/model", "2.0", private=True)

    anonymous = _head_manifest(registries.private, "secret/model", "2.0")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic realm=")
    wrong = _head_manifest(
        registries.private, "secret/model", "2.0", auth=(registries.username, "wrong")
    )
    assert wrong.status_code == 401
    ok = _head_manifest(
        registries.private, "secret/model", "2.0", auth=(registries.username, registries.password)
    )
    assert ok.status_code == 200
    assert ok.headers["Docker-Content-Digest"] == image.digest

    # and crane without credentials cannot read it either
    with pytest.raises(AssertionError, match=r"401|UNAUTHORIZED|unauthorized"):
        registries.crane("digest", image.reference, authenticated=False)
