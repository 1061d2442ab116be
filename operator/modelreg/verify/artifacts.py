"""Artifact verification: S3 (boto3, any S3-compatible endpoint) and HTTPS."""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import functools
import hashlib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from modelreg.verify import http
from modelreg.verify.egress import EgressPolicy
from modelreg.verify.verdict import Verdict

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchVersion"}
#: the store refused the operator itself: its credentials are wrong, expired or missing,
#: or a bucket/IAM policy does not let it read (S3 also answers 403 for a missing key to
#: a caller that may not list the bucket). None of it is about the version, and all of
#: it can be fixed without touching the version: Unknown and retried, never False
#: (docs/decisions.md, "Which verdicts are definitive").
_DENIED = {
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AllAccessDisabled",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AccountProblem",
}
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoreConfig:
    """How the operator reaches artifact stores (from its environment)."""

    s3_endpoint: str | None = None
    region: str | None = None
    #: objects up to this size are hashed when the store offers no usable checksum
    max_hash_bytes: int = 256 * 1024 * 1024
    timeout_seconds: float = 10.0

    @classmethod
    def from_env(cls) -> StoreConfig:
        return cls(
            s3_endpoint=os.environ.get("MODELREG_S3_ENDPOINT") or None,
            region=os.environ.get("AWS_DEFAULT_REGION") or None,
            max_hash_bytes=int(os.environ.get("MODELREG_MAX_HASH_BYTES", 256 * 1024 * 1024)),
        )

    def s3_client(self) -> S3Client:
        """A client for this configuration and the credentials in the environment, made
        once: boto3 clients are thread-safe, and making one (loading the service model)
        cost 4% of the operator's CPU when each check made its own."""
        credentials = tuple(os.environ.get(k) for k in _CREDENTIAL_ENV)
        return _s3_client(self, credentials)


_CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


@functools.lru_cache(maxsize=8)
def _s3_client(config: StoreConfig, _credentials: tuple[str | None, ...]) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=config.s3_endpoint,
        region_name=config.region,
        config=Config(
            s3={"addressing_style": "path"} if config.s3_endpoint else {},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=config.timeout_seconds,
            read_timeout=config.timeout_seconds,
        ),
    )


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ValueError(f"{uri!r} is not s3://<bucket>/<key>")
    return parsed.netloc, parsed.path.lstrip("/")


def _checksum_hex(b64: str | None) -> str | None:
    """The hex of a full-object S3 ChecksumSHA256 (None for composite multipart checksums)."""
    if not b64 or "-" in b64:
        return None
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def verify_s3(
    s3: S3Client,
    uri: str,
    expected_sha256: str | None,
    config: StoreConfig,
    version_id: str | None = None,
) -> Verdict:
    """Check that the S3 object exists and, where possible, that its sha256 matches. With
    ``version_id`` (recorded when it was first verified in a versioned bucket), that
    version of it: an object overwritten since keeps serving the bytes approved."""
    bucket, key = parse_s3_uri(uri)
    pin: dict[str, Any] = {"VersionId": version_id} if version_id else {}
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", **pin)
    except ClientError as e:
        return _client_error(e, uri)
    except BotoCoreError as e:
        return Verdict.unknown("StoreUnreachable", f"cannot reach the S3 store for {uri}: {e}")
    details: dict[str, Any] = {
        "sizeBytes": head.get("ContentLength"),
        "etag": str(head.get("ETag", "")).strip('"') or None,
        "versionId": head.get("VersionId") if head.get("VersionId") not in (None, "null") else None,
        "encryption": head.get("ServerSideEncryption") or "none",
    }
    store_sum = _checksum_hex(head.get("ChecksumSHA256"))
    if expected_sha256 is None:
        # nothing to hold the object to: pin what is there now, once (the version's
        # verification uses the recorded sha256 from then on), or it is not deployable
        if store_sum is not None:
            return _pinned(uri, store_sum, "the store's SHA-256 checksum", details)
        if (details["sizeBytes"] or 0) > config.max_hash_bytes:
            return _unpinnable(uri, config, details)
        hashed = _hash_s3(s3, uri, bucket, key, details["versionId"])
        if isinstance(hashed, Verdict):
            return hashed
        return _pinned(uri, hashed, "hashing the object", details)
    actual, source = store_sum, "the store's SHA-256 checksum"
    if actual is None and (meta := head.get("Metadata", {}).get("sha256")):
        actual, source = meta.lower(), "the sha256 metadata written at upload"
    if actual is None:
        size = details["sizeBytes"] or 0
        if size > config.max_hash_bytes:
            return Verdict.ok(
                "VerifiedWithoutChecksum",
                f"{uri} exists ({size} bytes) but the store has no SHA-256 for it and it is "
                f"larger than {config.max_hash_bytes} bytes to hash; the storage-initializer "
                "checks the sha256 when a pod starts",
                **details,
            )
        hashed = _hash_s3(s3, uri, bucket, key, details["versionId"])
        if isinstance(hashed, Verdict):
            return hashed
        actual, source = hashed, "hashing the object"
    if actual != expected_sha256:
        return Verdict.failed(
            "ChecksumMismatch",
            f"{uri} does not match spec.artifact.sha256 {expected_sha256} (from {source}): "
            "register a new version with the right artifact or checksum",
        )
    return Verdict.ok(
        "Verified", f"{uri} exists and its sha256 matches ({source})", sha256=actual, **details
    )


def _hash_s3(
    s3: S3Client, uri: str, bucket: str, key: str, version_id: str | None
) -> str | Verdict:
    """The sha256 of the object (of ``version_id`` when the bucket is versioned, so that
    what is hashed is what was looked at), or the verdict of why it could not be read."""
    pin: dict[str, Any] = {"VersionId": version_id} if version_id else {}
    # the check's total deadline (verify/egress.py) holds for the store's reads too
    deadline = time.monotonic() + EgressPolicy.from_env().deadline_seconds
    try:
        body = s3.get_object(Bucket=bucket, Key=key, **pin)["Body"]
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(_CHUNK), b""):
            digest.update(chunk)
            if time.monotonic() > deadline:
                body.close()
                return Verdict.unknown(
                    "StoreUnavailable", f"reading {uri} took longer than the check's deadline"
                )
    except ClientError as e:
        return _client_error(e, uri)
    except BotoCoreError as e:
        return Verdict.unknown("StoreUnreachable", f"cannot read {uri}: {e}")
    return digest.hexdigest()


def _pinned(uri: str, sha256: str, source: str, details: dict[str, Any]) -> Verdict:
    return Verdict.ok(
        "Verified",
        f"{uri} exists ({details['sizeBytes']} bytes); registered without sha256, it is "
        f"pinned to the sha256 from {source}, which pods check from now on",
        sha256=sha256,
        **details,
    )


def _unpinnable(uri: str, config: StoreConfig, details: dict[str, Any]) -> Verdict:
    return Verdict.failed(
        "ChecksumRequired",
        f"{uri} exists ({details['sizeBytes']} bytes) but nothing pins its content: "
        "spec.artifact.sha256 is not given, the store keeps no SHA-256 checksum of it, and "
        f"it is larger than the {config.max_hash_bytes} bytes the operator hashes; register "
        "the version with spec.artifact.sha256 (`modelreg register` computes it)",
    )


def _client_error(e: ClientError, uri: str) -> Verdict:
    error = e.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _NOT_FOUND or status == 404:
        return Verdict.failed("ArtifactNotFound", f"{uri} does not exist in the store")
    if code in _DENIED or status in (401, 403):
        return _store_access_denied(uri, code or str(status))
    return Verdict.unknown("StoreUnavailable", f"the store answered {code or status} for {uri}")


def _store_access_denied(uri: str, why: str) -> Verdict:
    return Verdict.unknown(
        "StoreAccessDenied",
        f"the store refused the operator access to {uri} ({why}): the operator's "
        "credentials or the bucket policy must let it read the artifact; it is verified "
        "again with backoff",
    )


def verify_https(
    client: httpx.Client, uri: str, expected_sha256: str | None, config: StoreConfig
) -> Verdict:
    """Check an https:// artifact with HEAD (and GET to hash it, when a sha256 is given).
    A server that does not do HEAD (405, 501) is asked with GET."""
    try:
        head = client.head(uri, follow_redirects=True)
        if head.status_code in (405, 501):
            return _verify_by_get(client, uri, expected_sha256, config)
        decided, _ = _decided_by_headers(uri, "HEAD", head, expected_sha256, config)
        return decided or _verify_by_get(client, uri, expected_sha256, config)
    except httpx.HTTPError as e:
        return Verdict.unknown("StoreUnreachable", f"cannot reach {uri}: {e}")


def _decided_by_headers(
    uri: str,
    method: str,
    response: httpx.Response,
    expected_sha256: str | None,
    config: StoreConfig,
) -> tuple[Verdict | None, dict[str, Any]]:
    """What a response's status and headers decide alone: a refusal, the object's
    existence when there is no sha256 to check, or too large to hash; otherwise None and
    the details the hash is recorded with."""
    if refused := _https_refusal(uri, method, response.status_code):
        return refused, {}
    details = _https_details(response.headers)
    if (details["sizeBytes"] or 0) > config.max_hash_bytes:
        if expected_sha256 is None:
            return _unpinnable(uri, config, details), details
        return _too_large_to_hash(uri, config, details), details
    return None, details


def _verify_by_get(
    client: httpx.Client, uri: str, expected_sha256: str | None, config: StoreConfig
) -> Verdict:
    """GET ``uri`` and hash the body, no more of it than ``max_hash_bytes``, whatever
    Content-Length says or does not say: to check the given sha256, or, without one, to
    pin the version to what is there now."""
    with client.stream("GET", uri, follow_redirects=True) as r:
        decided, details = _decided_by_headers(uri, "GET", r, expected_sha256, config)
        if decided is not None:
            return decided
        digest, read = hashlib.sha256(), 0
        for chunk in r.iter_bytes(_CHUNK):
            read += len(chunk)
            if read > config.max_hash_bytes:
                unknown_size = {**details, "sizeBytes": None}
                if expected_sha256 is None:
                    return _unpinnable(uri, config, unknown_size)
                return _too_large_to_hash(uri, config, unknown_size)
            digest.update(chunk)
    details["sizeBytes"] = details["sizeBytes"] or read
    if expected_sha256 is None:
        return _pinned(uri, digest.hexdigest(), "hashing the download", details)
    if digest.hexdigest() != expected_sha256:
        # the real sha256 is not told: it would tell the registrant something about an
        # object the operator reads for them (docs/security.md, no oracle)
        return Verdict.failed(
            "ChecksumMismatch",
            f"{uri} does not hash to spec.artifact.sha256 {expected_sha256} (from hashing "
            "the download): register a new version with the right artifact or checksum",
        )
    return Verdict.ok(
        "Verified", f"{uri} exists and its sha256 matches", sha256=expected_sha256, **details
    )


def _https_refusal(uri: str, method: str, status: int) -> Verdict | None:
    """The verdict of an error answer (None: not an error)."""
    if status in (404, 410):
        return Verdict.failed("ArtifactNotFound", f"{uri} answered {status}")
    if status in (401, 403):
        # the operator sends no credentials: a refusal is about who asks, not the artifact
        return Verdict.unknown(
            "StoreAccessDenied",
            f"{uri} answered {status} to the operator: it must be readable "
            "from the operator without credentials; it is verified again with backoff",
        )
    if status >= 400:
        return Verdict.unknown("StoreUnavailable", f"{method} {uri} answered {status}")
    return None


def _https_details(headers: httpx.Headers) -> dict[str, Any]:
    length = headers.get("Content-Length", "")
    return {
        "sizeBytes": int(length) if length.isdigit() and int(length) > 0 else None,
        "etag": headers.get("ETag", "").strip('"') or None,
    }


def _too_large_to_hash(uri: str, config: StoreConfig, details: dict[str, Any]) -> Verdict:
    return Verdict.ok(
        "VerifiedWithoutChecksum",
        f"{uri} is larger than {config.max_hash_bytes} bytes to hash; the "
        "storage-initializer checks the sha256 when a pod starts",
        **details,
    )


#: S3 checks run here; a slow store fills it at worst, and later checks wait in its
#: queue no longer than their deadline
_s3_checks = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="s3-checks")


def verify_artifact(
    uri: str, expected_sha256: str | None, config: StoreConfig, version_id: str | None = None
) -> Verdict:
    """Verify ``uri`` (of S3 version ``version_id``, once pinned) with a fresh client."""
    if uri.startswith("s3://"):
        # boto3's timeouts are per read: the check's total deadline is kept by waiting on
        # a pool of its own, so a store that trickles holds none of the caller's threads
        # past it (verify/egress.py holds HTTP checks to it on every read instead)
        deadline = EgressPolicy.from_env().deadline_seconds
        future = _s3_checks.submit(
            verify_s3, config.s3_client(), uri, expected_sha256, config, version_id
        )
        try:
            return future.result(timeout=deadline)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return Verdict.unknown(
                "StoreUnavailable",
                f"the S3 store did not answer about {uri} within the check's deadline "
                f"({deadline:g} s): verified again with backoff",
            )
    with http.client(config.timeout_seconds) as client:
        return verify_https(client, uri, expected_sha256, config)
