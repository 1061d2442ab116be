"""Verification against real HTTP servers on 127.0.0.1, scripted to answer what the real
S3 server and registries of the test environment cannot be made to answer."""

from __future__ import annotations

import hashlib
import json

import boto3
import httpx
import pytest
from botocore.config import Config

from modelreg.api.base import ConditionStatus
from modelreg.verify.artifacts import StoreConfig, verify_https, verify_s3
from modelreg.verify.images import credentials_for, resolve_image
from tests.support.http_server import Reply, Request, Script, serve

TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
CONFIG = StoreConfig(max_hash_bytes=1024 * 1024, timeout_seconds=5)


@pytest.mark.parametrize("code", [401, 403])
def test_https_artifact_refused_to_the_operator_is_unknown(code: int) -> None:
    """The operator sends no credentials: a refusal is about who asks, never a verdict."""
    with serve(lambda _: Reply(code)) as (host, _), httpx.Client(timeout=5) as client:
        v = verify_https(client, f"http://{host}/model.bin", None, CONFIG)
    assert (v.status, v.reason) == (UNKNOWN, "StoreAccessDenied")
    assert str(code) in v.message


# --- registries ---------------------------------------------------------------------------

MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def bearer_registry(token_reply: Reply) -> Script:
    """A registry that wants a bearer token, and a token service answering ``token_reply``."""

    def script(request: Request) -> Reply:
        if request.path.startswith("/token"):
            return token_reply
        if request.headers.get("Authorization") != "Bearer good":
            host = request.headers["Host"]
            return Reply(401, {"WWW-Authenticate": f'Bearer realm="http://{host}/token"'})
        return Reply(200, {"Docker-Content-Digest": MANIFEST_DIGEST})

    return script


@pytest.mark.parametrize(
    "token_reply",
    [
        Reply(200, {"Content-Type": "text/html"}, b"<html>maintenance</html>"),
        Reply(200, {"Content-Type": "application/json"}, b'["not", "an", "object"]'),
        Reply(200, {"Content-Type": "application/json"}, b'{"expires_in": 300}'),
        Reply(429, {"Retry-After": "5"}),
        Reply(503),
    ],
    ids=["html", "json-list", "no-token", "429", "503"],
)
def test_token_service_without_a_token_is_unknown(token_reply: Reply) -> None:
    with serve(bearer_registry(token_reply)) as (host, _):
        v = resolve_image(f"{host}/team/model:1", timeout=5)
    assert (v.status, v.reason) == (UNKNOWN, "RegistryUnavailable"), v
    assert "token service" in v.message


def test_token_flow_accepts_access_token() -> None:
    reply = Reply(200, {"Content-Type": "application/json"}, b'{"access_token": "good"}')
    with serve(bearer_registry(reply)) as (host, _):
        v = resolve_image(f"{host}/team/model:1", timeout=5)
    assert (v.status, v.details["digest"]) == (TRUE, MANIFEST_DIGEST)


@pytest.mark.parametrize("code", [429, 500, 502, 503])
def test_registry_throttling_or_failing_is_unknown(code: int) -> None:
    with serve(lambda _: Reply(code, {"Retry-After": "1"})) as (host, _):
        v = resolve_image(f"{host}/team/model:1", timeout=5)
    assert (v.status, v.reason) == (UNKNOWN, "RegistryUnavailable")
    assert str(code) in v.message


def test_manifest_digest_without_the_header_is_the_hash_of_the_manifest() -> None:
    def script(request: Request) -> Reply:
        if request.method == "HEAD":
            return Reply(200, {"Content-Type": "application/vnd.oci.image.index.v1+json"})
        return Reply(200, {"Content-Type": "application/vnd.oci.image.index.v1+json"}, MANIFEST)

    with serve(script) as (host, seen):
        v = resolve_image(f"{host}/team/model:1", timeout=5)
    assert (v.status, v.details["digest"]) == (TRUE, MANIFEST_DIGEST)
    accepted = seen[0].headers["Accept"]
    for media in (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ):
        assert media in accepted


def test_a_failing_get_is_not_hashed_into_a_digest() -> None:
    """HEAD without Docker-Content-Digest, then a GET that fails: no digest of an error page."""

    def script(request: Request) -> Reply:
        if request.method == "HEAD":
            return Reply(200)
        return Reply(503, {}, b"upstream unavailable")

    with serve(script) as (host, _):
        v = resolve_image(f"{host}/team/model:1", timeout=5)
    assert (v.status, v.reason) == (UNKNOWN, "RegistryUnavailable")


def test_malformed_auth_in_a_pull_secret_is_no_credentials() -> None:
    assert credentials_for("r.io", [{"auths": {"r.io": {"auth": "%%%not base64"}}}]) is None


# --- HTTPS artifacts: throttling --------------------------------------------------------


@pytest.mark.parametrize("code", [429, 500, 503])
def test_https_artifact_throttling_or_failing_is_unknown(code: int) -> None:
    with serve(lambda _: Reply(code)) as (host, _), httpx.Client(timeout=5) as client:
        v = verify_https(client, f"http://{host}/model.bin", None, CONFIG)
    assert (v.status, v.reason) == (UNKNOWN, "StoreUnavailable")


# --- S3: throttling ---------------------------------------------------------------------


def s3_error(code: str, status: int) -> Script:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{code}</Message><RequestId>1</RequestId></Error>"
    ).encode()
    return lambda _: Reply(status, {"Content-Type": "application/xml"}, body)


@pytest.mark.parametrize(
    ("code", "status"), [("SlowDown", 503), ("ServiceUnavailable", 503), ("InternalError", 500)]
)
def test_s3_throttling_or_failing_is_unknown(code: str, status: int) -> None:
    with serve(s3_error(code, status)) as (host, _):
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://{host}",
            aws_access_key_id="k",
            aws_secret_access_key="s",
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        v = verify_s3(s3, "s3://models/m/1", None, CONFIG)
    assert v.status == UNKNOWN, v
    assert v.reason in ("StoreUnavailable", "StoreUnreachable")


# --- HTTPS artifacts: servers without HEAD, bodies without a length ----------------------

DATA = bytes(range(256)) * 40  # 10,240 bytes
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize("code", [405, 501])
def test_https_server_without_head_is_asked_with_get(code: int) -> None:
    def script(request: Request) -> Reply:
        return Reply(code) if request.method == "HEAD" else Reply(200, {"ETag": '"e1"'}, DATA)

    with serve(script) as (host, _), httpx.Client(timeout=5) as client:
        ok = verify_https(client, f"http://{host}/m.bin", SHA, CONFIG)
        exists = verify_https(client, f"http://{host}/m.bin", None, CONFIG)
        bad = verify_https(client, f"http://{host}/m.bin", "0" * 64, CONFIG)
    assert (ok.status, ok.reason, ok.details["sizeBytes"]) == (TRUE, "Verified", len(DATA))
    assert ok.details["etag"] == "e1"
    assert (exists.status, exists.reason) == (TRUE, "Verified")
    assert exists.details["sha256"] == SHA  # registered without one: pinned to the hash
    assert (bad.status, bad.reason) == (FALSE, "ChecksumMismatch")


def test_https_get_not_found_after_405_is_not_found() -> None:
    script: Script = lambda r: Reply(405 if r.method == "HEAD" else 404)  # noqa: E731
    with serve(script) as (host, _), httpx.Client(timeout=5) as client:
        v = verify_https(client, f"http://{host}/m.bin", SHA, CONFIG)
    assert (v.status, v.reason) == (FALSE, "ArtifactNotFound")


def test_https_body_without_length_is_hashed_up_to_the_limit_only() -> None:
    """No Content-Length: the hash stops at max_hash_bytes, like a store object too large
    to hash, instead of reading whatever the server sends."""
    chunk = b"x" * 64 * 1024

    def script(request: Request) -> Reply:
        if request.method == "HEAD":
            return Reply(200, {"Content-Length": "0"})
        return Reply(200, {}, (chunk for _ in range(64)))  # 4 MiB, chunked

    small = StoreConfig(max_hash_bytes=256 * 1024, timeout_seconds=5)
    with serve(script) as (host, _), httpx.Client(timeout=5) as client:
        v = verify_https(client, f"http://{host}/big.bin", "0" * 64, small)
    assert (v.status, v.reason) == (TRUE, "VerifiedWithoutChecksum")
    assert "storage-initializer checks the sha256" in v.message


def test_https_body_without_length_under_the_limit_is_hashed() -> None:
    def script(request: Request) -> Reply:
        if request.method == "HEAD":
            return Reply(200, {"Content-Length": "0"})
        return Reply(200, {}, iter([DATA[:5000], DATA[5000:]]))

    with serve(script) as (host, _), httpx.Client(timeout=5) as client:
        ok = verify_https(client, f"http://{host}/m.bin", SHA, CONFIG)
        bad = verify_https(client, f"http://{host}/m.bin", "0" * 64, CONFIG)
    assert (ok.status, ok.details["sizeBytes"]) == (TRUE, len(DATA))
    assert (bad.status, bad.reason) == (FALSE, "ChecksumMismatch")
    assert SHA not in bad.message  # the real sha256 is not told (no oracle)
    assert "register a new version with the right artifact or checksum" in bad.message


def test_without_a_sha256_an_artifact_too_large_to_hash_is_not_deployable() -> None:
    """Nothing would hold the pods to the bytes that were verified: ChecksumRequired
    (False), whether the size is announced or only found by reading."""
    chunk = b"x" * 64 * 1024

    def script(request: Request) -> Reply:
        if request.method == "HEAD":
            return Reply(200, {"Content-Length": "0"})
        return Reply(200, {}, (chunk for _ in range(64)))

    def announced(request: Request) -> Reply:
        return Reply(200, {"Content-Length": str(4 * 1024 * 1024)}, b"")

    small = StoreConfig(max_hash_bytes=256 * 1024, timeout_seconds=5)
    for s in (script, announced):
        with serve(s) as (host, _), httpx.Client(timeout=5) as client:
            v = verify_https(client, f"http://{host}/big.bin", None, small)
        assert (v.status, v.reason) == (FALSE, "ChecksumRequired")
        assert "spec.artifact.sha256" in v.message


def test_an_s3_store_that_trickles_is_unknown_at_the_check_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A store that sends one byte every half second (boto3's timeouts are per read, so
    it never times out by itself) is cut off at the check's total deadline: Unknown, and
    the checks' own threads are freed then, also when more checks wait than the S3 pool
    has threads (issue 15, item 6, for S3)."""
    import concurrent.futures
    import time

    from modelreg.verify import artifacts
    from tests.support.http_server import trickling

    monkeypatch.setenv("MODELREG_CHECK_DEADLINE_SECONDS", "2")
    for k, v in (("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")):
        monkeypatch.setenv(k, v)
    with trickling(delay=0.5) as host:
        config = StoreConfig(s3_endpoint=f"http://{host}", region="us-east-1", timeout_seconds=5)
        started = time.monotonic()
        checks = 12  # more than the S3 pool's threads
        callers = concurrent.futures.ThreadPoolExecutor(checks)
        futures = [
            callers.submit(artifacts.verify_artifact, f"s3://b/m{i}.bin", "0" * 64, config)
            for i in range(checks)
        ]
        _, waiting = concurrent.futures.wait(futures, timeout=30)
        callers.shutdown(wait=False, cancel_futures=True)
        assert not waiting, f"{len(waiting)} checks still held by the store after 30 s"
        verdicts = [f.result() for f in futures]
        took = time.monotonic() - started
    assert {(v.status, v.reason) for v in verdicts} == {(UNKNOWN, "StoreUnavailable")}
    assert "deadline" in verdicts[0].message
    # each caller waited its own deadline at most (2 s), not the store (minutes)
    assert took < 2 * 2 + 1.5, took
