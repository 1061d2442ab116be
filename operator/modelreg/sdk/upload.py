"""Artifact upload: one pass over the file, constant memory, sha256 computed on the way.

Small files go up in one PUT with the store's ``ChecksumSHA256`` and the ``sha256``
metadata. Large files go up as a multipart upload, part by part, through a hashing reader;
a multipart object's checksum can only be composite, so when the upload completes the
full-object sha256 is written as the ``sha256`` metadata by a server-side copy of the object
onto itself (no bytes travel again), which is what the operator's verification reads.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from modelreg.sdk.errors import UploadFailed

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: progress callback: (bytes done, bytes total)
Progress = Callable[[int, int], None]

MULTIPART_THRESHOLD = 16 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024
MAX_PARTS = 10_000


@dataclass(frozen=True)
class S3Settings:
    """Where and how to upload (arguments, else MODELREG_S3_* / AWS_* environment)."""

    endpoint: str | None = None
    bucket: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None

    @classmethod
    def resolve(
        cls,
        endpoint: str | None = None,
        bucket: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> S3Settings:
        env = os.environ
        return cls(
            endpoint=endpoint
            or env.get("MODELREG_S3_ENDPOINT")
            or env.get("AWS_ENDPOINT_URL_S3")
            or env.get("AWS_ENDPOINT_URL")
            or None,
            bucket=bucket or env.get("MODELREG_S3_BUCKET") or None,
            region=region or env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None,
            access_key=access_key,
            secret_key=secret_key,
        )

    def client(self) -> S3Client:
        kwargs: dict[str, Any] = {}
        if self.access_key and self.secret_key:
            kwargs = {
                "aws_access_key_id": self.access_key,
                "aws_secret_access_key": self.secret_key,
            }
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"} if self.endpoint else {},
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=10,
                read_timeout=120,
            ),
            **kwargs,
        )


@dataclass(frozen=True)
class Uploaded:
    """An uploaded artifact."""

    uri: str
    bucket: str
    key: str
    sha256: str
    size: int
    version_id: str | None
    multipart: bool


class HashingReader:
    """A read-only, forward-only file wrapper that hashes (and counts) what is read."""

    def __init__(self, raw: IO[bytes], progress: Callable[[int], None] | None = None) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self._progress = progress
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self._hash.update(data)
            self.count += len(data)
            if self._progress is not None:
                self._progress(len(data))
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def digest(self) -> bytes:
        return self._hash.digest()


def _tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Reproducible members: no owners, no times, normalized modes."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o755 if info.isdir() or info.mode & 0o100 else 0o644
    return info


def pack_directory(directory: Path, dest: IO[bytes]) -> None:
    """Write ``directory`` as a reproducible tar.gz to ``dest`` (sorted members, zeroed
    owners and times; streamed, so memory stays constant)."""
    with (
        gzip.GzipFile(fileobj=dest, mode="wb", mtime=0, filename="") as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            here = Path(root)
            for name in [*sorted(dirs), *sorted(files)]:
                path = here / name
                arcname = str(path.relative_to(directory))
                if path.is_dir() and not path.is_symlink():
                    tar.add(path, arcname=arcname, recursive=False, filter=_tar_filter)
                else:
                    tar.add(path, arcname=arcname, filter=_tar_filter)


@contextmanager
def artifact_file(path: Path) -> Iterator[tuple[Path, str]]:
    """The file to upload for ``path`` and its file name: the file itself, or a directory
    packed to a temporary ``<dir>.tar.gz`` (removed afterwards)."""
    if path.is_file():
        yield path, path.name
        return
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither a file nor a directory")
    fd, tmp = tempfile.mkstemp(prefix="modelreg-", suffix=".tar.gz")
    try:
        with os.fdopen(fd, "wb") as f:
            pack_directory(path, f)
        yield Path(tmp), f"{path.resolve().name or 'model'}.tar.gz"
    finally:
        Path(tmp).unlink(missing_ok=True)


def default_key(model: str, filename: str) -> str:
    return f"{model}/{uuid.uuid4().hex}/{filename}"


def upload_file(
    s3: S3Client,
    path: Path,
    bucket: str,
    key: str,
    *,
    progress: Progress | None = None,
    content_type: str = "application/octet-stream",
    threshold: int = MULTIPART_THRESHOLD,
    part_size: int = PART_SIZE,
) -> Uploaded:
    """Upload ``path`` to ``s3://bucket/key`` in one pass, hashing as it goes."""
    size = path.stat().st_size
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], size)

    try:
        with path.open("rb") as f:
            reader = HashingReader(f, advance)
            if size <= threshold:
                return _single(s3, reader, bucket, key, content_type)
            part_size = max(part_size, -(-size // MAX_PARTS))
            return _multipart(s3, reader, bucket, key, content_type, part_size)
    except (ClientError, BotoCoreError) as e:
        raise UploadFailed(f"uploading {path} to s3://{bucket}/{key} failed: {e}") from e


def _single(
    s3: S3Client, reader: HashingReader, bucket: str, key: str, content_type: str
) -> Uploaded:
    data = reader.read()  # at most the multipart threshold
    out = s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ContentType=content_type,
        ChecksumSHA256=base64.b64encode(reader.digest()).decode(),
        Metadata={"sha256": reader.hexdigest()},
    )
    return Uploaded(
        f"s3://{bucket}/{key}",
        bucket,
        key,
        reader.hexdigest(),
        reader.count,
        out.get("VersionId"),
        multipart=False,
    )


def _multipart(
    s3: S3Client,
    reader: HashingReader,
    bucket: str,
    key: str,
    content_type: str,
    part_size: int,
) -> Uploaded:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)[
        "UploadId"
    ]
    try:
        parts: list[dict[str, Any]] = []
        number = 1
        while chunk := reader.read(part_size):
            etag = s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
            )["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
            number += 1
        done = s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
        )
    except BaseException:
        with suppress(ClientError, BotoCoreError):
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    sha = reader.hexdigest()
    first_version = done.get("VersionId")
    source: dict[str, str] = {"Bucket": bucket, "Key": key}
    if first_version:
        source["VersionId"] = first_version
    # the full-object sha256 as metadata, by a server-side copy onto itself
    s3.copy(
        source,  # type: ignore[arg-type]
        bucket,
        key,
        ExtraArgs={
            "Metadata": {"sha256": sha},
            "MetadataDirective": "REPLACE",
            "ContentType": content_type,
        },
        Config=TransferConfig(multipart_threshold=5 * 1024**3, multipart_chunksize=1024**3),
    )
    head = s3.head_object(Bucket=bucket, Key=key)
    version = head.get("VersionId")
    if first_version and version and version != first_version:
        # the copy is the object now; the version without metadata would only cost space
        s3.delete_object(Bucket=bucket, Key=key, VersionId=first_version)
    return Uploaded(
        f"s3://{bucket}/{key}",
        bucket,
        key,
        sha,
        reader.count,
        version if version not in (None, "null") else None,
        multipart=True,
    )
