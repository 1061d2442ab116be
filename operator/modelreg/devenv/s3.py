"""S3 access for the local environment (bucket bootstrap)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def client(endpoint: str, access_key: str, secret_key: str, region: str) -> S3Client:
    """A boto3 S3 client for a path-style S3-compatible endpoint such as MinIO."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def ensure_bucket(
    endpoint: str, access_key: str, secret_key: str, bucket: str, region: str
) -> None:
    """Create ``bucket`` unless it exists (versioning on, so objects have version ids)."""
    s3 = client(endpoint, access_key, secret_key, region)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
