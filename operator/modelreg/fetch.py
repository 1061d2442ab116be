"""The storage-initializer: download a model artifact, check its sha256, unpack it.

Runs as ``modelreg fetch-artifact`` in the init container of every model pod, so the
checksum recorded at registration is checked again where the model is served. An
archive (a directory the SDK packed) becomes that directory again (modelreg.unpack).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from botocore.exceptions import ClientError

from modelreg.unpack import is_archive, unpack
from modelreg.verify.artifacts import StoreConfig, parse_s3_uri

_CHUNK = 1024 * 1024


class ChecksumMismatch(Exception):
    """The downloaded bytes do not hash to the expected sha256."""


def fetch(
    uri: str,
    dest: Path,
    sha256: str | None,
    config: StoreConfig,
    version_id: str | None = None,
    *,
    unpack_archives: bool = True,
) -> Path:
    """Download ``uri`` (S3: of ``version_id``, when given) into ``dest`` (streaming, hashed
    on the way); returns the file, or ``dest`` when it was an archive and was unpacked
    there (``.tar.gz``, ``.tgz``, ``.tar``: what the SDK uploads for a directory)."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / (Path(urlparse(uri).path).name or "model")
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        if uri.startswith("s3://"):
            bucket, key = parse_s3_uri(uri)
            pin: dict[str, Any] = {"VersionId": version_id} if version_id else {}
            try:
                body = config.s3_client().get_object(Bucket=bucket, Key=key, **pin)["Body"]
            except ClientError as e:
                code = str(e.response.get("Error", {}).get("Code", ""))
                if version_id and code in ("NoSuchVersion", "NoSuchKey", "404"):
                    raise ChecksumMismatch(
                        f"{uri} no longer has version {version_id}, the one verified: "
                        "the artifact changed since it was registered"
                    ) from e
                raise
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        else:
            with httpx.stream("GET", uri, follow_redirects=True, timeout=60) as r:
                r.raise_for_status()
                for chunk in r.iter_bytes(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    if sha256 is not None and digest.hexdigest() != sha256:
        partial.unlink()
        raise ChecksumMismatch(
            f"{uri} has sha256 {digest.hexdigest()}, expected {sha256}: "
            "the artifact changed since it was registered"
        )
    os.replace(partial, target)
    if unpack_archives and is_archive(target):
        # only bytes whose sha256 was checked are unpacked (modelreg.unpack: safely)
        unpack(target, dest)
        return dest
    return target
