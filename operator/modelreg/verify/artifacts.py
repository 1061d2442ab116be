"""Artifact verification: S3 (boto3, any S3-compatible endpoint) and HTTPS."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from modelreg.verify import http
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
) -> Verdict:
    """Check that the S3 object exists and, where possible, that its sha256 matches."""
    bucket, key = parse_s3_uri(uri)
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
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
    if expected_sha256 is None:
        return Verdict.ok("Verified", f"{uri} exists ({details['sizeBytes']} bytes)", **details)
    actual, source = _checksum_hex(head.get("ChecksumSHA256")), "the store's SHA-256 checksum"
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
        try:
            body = s3.get_object(
                Bucket=bucket,
                Key=key,
                **({"VersionId": details["versionId"]} if details["versionId"] else {}),
            )["Body"]
            digest = hashlib.sha256()
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                digest.update(chunk)
        except ClientError as e:
            return _client_error(e, uri)
        except BotoCoreError as e:
            return Verdict.unknown("StoreUnreachable", f"cannot read {uri}: {e}")
        actual, source = digest.hexdigest(), "hashing the object"
    if actual != expected_sha256:
        return Verdict.failed(
            "ChecksumMismatch",
            f"{uri} has sha256 {actual} (from {source}), but spec.artifact.sha256 is "
            f"{expected_sha256}: register a new version with the right artifact or checksum",
        )
    return Verdict.ok(
        "Verified", f"{uri} exists and its sha256 matches ({source})", sha256=actual, **details
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
    if expected_sha256 is None:
        return Verdict.ok("Verified", f"{uri} exists", **details), details
    if (details["sizeBytes"] or 0) > config.max_hash_bytes:
        return _too_large_to_hash(uri, config, details), details
    return None, details


def _verify_by_get(
    client: httpx.Client, uri: str, expected_sha256: str | None, config: StoreConfig
) -> Verdict:
    """GET ``uri``; read (and hash) the body only when there is a sha256 to check, and no
    more of it than ``max_hash_bytes``, whatever Content-Length says or does not say."""
    with client.stream("GET", uri, follow_redirects=True) as r:
        decided, details = _decided_by_headers(uri, "GET", r, expected_sha256, config)
        if decided is not None:
            return decided
        digest, read = hashlib.sha256(), 0
        for chunk in r.iter_bytes(_CHUNK):
            read += len(chunk)
            if read > config.max_hash_bytes:
                return _too_large_to_hash(uri, config, {**details, "sizeBytes": None})
            digest.update(chunk)
    details["sizeBytes"] = details["sizeBytes"] or read
    if digest.hexdigest() != expected_sha256:
        return Verdict.failed(
            "ChecksumMismatch",
            f"{uri} has sha256 {digest.hexdigest()} (from hashing the download), but "
            f"spec.artifact.sha256 is {expected_sha256}: register a new version with the "
            "right artifact or checksum",
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


def verify_artifact(uri: str, expected_sha256: str | None, config: StoreConfig) -> Verdict:
    """Verify ``uri`` with a fresh client for its scheme."""
    if uri.startswith("s3://"):
        return verify_s3(config.s3_client(), uri, expected_sha256, config)
    with http.client(config.timeout_seconds) as client:
        return verify_https(client, uri, expected_sha256, config)
