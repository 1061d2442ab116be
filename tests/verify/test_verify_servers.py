"""Artifact and image verification against the real S3 server and registries."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import httpx
import pytest

from modelreg.api.base import ConditionStatus
from modelreg.verify.artifacts import StoreConfig, verify_https, verify_s3
from modelreg.verify.images import resolve_image
from tests.support.cluster import Registries

pytestmark = pytest.mark.cluster
TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


@pytest.fixture
def config(cluster: Any) -> StoreConfig:
    return StoreConfig(
        s3_endpoint=cluster.env["MODELREG_S3_ENDPOINT"],
        region="us-east-1",
        max_hash_bytes=1024 * 1024,
    )


def test_s3_existence_and_checksum_sources(s3: Any, s3_bucket: str, config: StoreConfig) -> None:
    data = os.urandom(4096)
    sha = hashlib.sha256(data).hexdigest()
    s3.put_object(Bucket=s3_bucket, Key="with-checksum", Body=data, ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket=s3_bucket, Key="with-metadata", Body=data, Metadata={"sha256": sha})
    s3.put_object(Bucket=s3_bucket, Key="plain", Body=data)

    for key, source in (
        ("with-checksum", "the store's SHA-256 checksum"),
        ("with-metadata", "the sha256 metadata written at upload"),
        ("plain", "hashing the object"),
    ):
        v = verify_s3(s3, f"s3://{s3_bucket}/{key}", sha, config)
        assert v.status == TRUE, v
        assert source in v.message
        assert v.details["sha256"] == sha
        assert v.details["sizeBytes"] == 4096
        assert v.details["versionId"]
        assert v.details["etag"]

    wrong = verify_s3(s3, f"s3://{s3_bucket}/with-checksum", "0" * 64, config)
    assert (wrong.status, wrong.reason) == (FALSE, "ChecksumMismatch")
    assert sha not in wrong.message  # no oracle of what the object holds
    missing = verify_s3(s3, f"s3://{s3_bucket}/nope", None, config)
    assert (missing.status, missing.reason) == (FALSE, "ArtifactNotFound")
    no_bucket = verify_s3(s3, "s3://no-such-bucket-here/x", None, config)
    assert (no_bucket.status, no_bucket.reason) == (FALSE, "ArtifactNotFound")


def test_s3_large_object_without_checksum_is_verified_without_hashing(
    s3: Any, s3_bucket: str
) -> None:
    s3.put_object(Bucket=s3_bucket, Key="big", Body=b"x" * 2048)
    small_limit = StoreConfig(max_hash_bytes=1024)
    v = verify_s3(s3, f"s3://{s3_bucket}/big", "0" * 64, small_limit)
    assert (v.status, v.reason) == (TRUE, "VerifiedWithoutChecksum")
    assert "sha256" not in v.details
    # registered without a sha256, nothing would pin it: not deployable
    unpinned = verify_s3(s3, f"s3://{s3_bucket}/big", None, small_limit)
    assert (unpinned.status, unpinned.reason) == (FALSE, "ChecksumRequired")
    # small enough: hashed once, and pinned to that version of the object
    pinned = verify_s3(s3, f"s3://{s3_bucket}/big", None, StoreConfig())
    assert pinned.details["sha256"] == hashlib.sha256(b"x" * 2048).hexdigest()
    first = pinned.details["versionId"]
    s3.put_object(Bucket=s3_bucket, Key="big", Body=b"replaced")
    again = verify_s3(s3, f"s3://{s3_bucket}/big", pinned.details["sha256"], StoreConfig(), first)
    assert (again.status, again.details["versionId"]) == (TRUE, first)


def test_unreachable_store_is_unknown_never_false() -> None:
    dead = StoreConfig(s3_endpoint="http://127.0.0.1:9", region="us-east-1", timeout_seconds=1)
    v = verify_s3(dead.s3_client(), "s3://models/x", "0" * 64, dead)
    assert (v.status, v.reason) == (UNKNOWN, "StoreUnreachable")
    with httpx.Client(timeout=1) as client:
        h = verify_https(client, "https://127.0.0.1:9/model.bin", None, dead)
    assert h.status == UNKNOWN


def test_image_resolution_anonymous_and_private(registries: Registries) -> None:
    public = registries.push("serving/resolve", "1.0")
    v = resolve_image(public.reference)
    assert (v.status, v.details["digest"]) == (TRUE, public.digest)
    assert v.details["resolved"] == public.pinned
    assert resolve_image(public.pinned).status == TRUE

    oci = registries.push("serving/resolve-oci", "1.0", oci=True)
    assert resolve_image(oci.reference).details["digest"] == oci.digest

    missing = resolve_image(f"{registries.public}/serving/resolve:nope")
    assert (missing.status, missing.reason) == (FALSE, "ImageNotFound")

    private = registries.push("secret/resolve", "2.0", private=True)
    anonymous = resolve_image(private.reference)
    assert (anonymous.status, anonymous.reason) == (FALSE, "Unauthorized")
    assert "pullSecrets" in anonymous.message
    ok = resolve_image(private.reference, [registries.dockerconfigjson()])
    assert (ok.status, ok.details["digest"]) == (TRUE, private.digest)
    bad = {"auths": {registries.private: {"auth": base64.b64encode(b"modelreg:wrong").decode()}}}
    refused = resolve_image(private.reference, [bad])
    assert (refused.status, refused.reason) == (FALSE, "Unauthorized")


def test_unreachable_registry_is_unknown() -> None:
    v = resolve_image("127.0.0.1:9/serving/x:1", timeout=1)
    assert (v.status, v.reason) == (UNKNOWN, "RegistryUnreachable")


def test_https_style_artifact_head_get_and_hash(tmp_path: Any) -> None:
    """verify_https against a real HTTP server on 127.0.0.1 (the same code path as https)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    data = os.urandom(10_000)
    (tmp_path / "model.bin").write_bytes(data)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    config = StoreConfig(max_hash_bytes=1024 * 1024)
    try:
        with httpx.Client(timeout=5) as client:
            ok = verify_https(client, f"{base}/model.bin", hashlib.sha256(data).hexdigest(), config)
            assert (ok.status, ok.details["sizeBytes"]) == (TRUE, 10_000)
            bad = verify_https(client, f"{base}/model.bin", "0" * 64, config)
            assert (bad.status, bad.reason) == (FALSE, "ChecksumMismatch")
            gone = verify_https(client, f"{base}/nope.bin", None, config)
            assert (gone.status, gone.reason) == (FALSE, "ArtifactNotFound")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("no-such-key", "x" * 40),  # InvalidAccessKeyId
        (None, "wrong-secret-" * 3),  # SignatureDoesNotMatch
    ],
)
def test_operator_credentials_refused_are_unknown_never_false(
    cluster: Any, s3: Any, s3_bucket: str, config: StoreConfig, key: str | None, secret: str
) -> None:
    """The operator's own S3 credentials say nothing about a version: wrong ones give
    Unknown (retried), not a False verdict that would outlive the fix. (A HEAD answer
    has no body: the store's error code is only "403".)"""
    from modelreg.devenv.s3 import client as s3_client

    data = os.urandom(1024)
    s3.put_object(Bucket=s3_bucket, Key="model", Body=data)
    env = cluster.env
    wrong = s3_client(
        env["MODELREG_S3_ENDPOINT"], key or env["AWS_ACCESS_KEY_ID"], secret, "us-east-1"
    )
    for name, sha in (("model", hashlib.sha256(data).hexdigest()), ("model", None), ("nope", None)):
        v = verify_s3(wrong, f"s3://{s3_bucket}/{name}", sha, config)
        assert (v.status, v.reason) == (UNKNOWN, "StoreAccessDenied"), v
        assert "operator's credentials" in v.message


@pytest.mark.parametrize(
    ("private", "docker", "media"),
    [
        (False, False, "application/vnd.oci.image.index.v1+json"),
        (False, True, "application/vnd.docker.distribution.manifest.list.v2+json"),
        (True, False, "application/vnd.oci.image.index.v1+json"),
    ],
)
def test_image_index_and_manifest_list(
    registries: Registries, private: bool, docker: bool, media: str
) -> None:
    """A multi-platform tag (OCI image index, Docker manifest list) resolves to the digest
    of the index, which is what a pod pulls by."""
    a = registries.push("serving/multi-a", "1.0", private=private, oci=not docker)
    b = registries.push("serving/multi-b", "1.0", private=private, oci=not docker)
    host = registries.private if private else registries.public
    tag = f"{host}/serving/multi:{'docker' if docker else 'oci'}"
    extra = ["--docker-empty-base"] if docker else []
    registries.crane("index", "append", "-m", a.pinned, "-m", b.pinned, "-t", tag, *extra)
    assert json.loads(registries.crane("manifest", tag))["mediaType"] == media
    digest = registries.crane("digest", tag)
    v = resolve_image(tag, [registries.dockerconfigjson()] if private else [])
    assert (v.status, v.details["digest"]) == (TRUE, digest), v
    assert v.details["resolved"] == f"{host}/serving/multi@{digest}"
