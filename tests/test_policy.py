"""The security policy applied to one version (pure)."""

from __future__ import annotations

import pytest

from modelreg import policy
from modelreg.api.model_version import ArtifactStatus
from modelreg.api.registered_model import ArtifactEncryption, SecurityPolicy


@pytest.mark.parametrize(
    ("value", "prefix", "expected"),
    [
        ("s3://models/a", "s3://models/", True),
        ("s3://models/a", "s3://models", True),
        ("s3://models-dev/a", "s3://models", False),
        ("s3://models", "s3://models", True),
        ("r.io/serving/sk", "r.io/serving", True),
        ("r.io/servingx/sk", "r.io/serving", False),
    ],
)
def test_prefixes_match_whole_path_segments(value: str, prefix: str, expected: bool) -> None:
    assert policy.matches(value, prefix) is expected


def test_image_references_are_normalized_before_matching() -> None:
    allowed = SecurityPolicy(allowed_image_prefixes=["docker.io/library/"])
    assert policy.image_denial(allowed, "m", "python:3.11") is None
    assert policy.image_denial(allowed, "m", "ghcr.io/x/python:3.11") is not None
    assert policy.image_denial(SecurityPolicy(), "m", "anything:1") is None


@pytest.mark.parametrize(
    ("required", "observed", "ok"),
    [
        (ArtifactEncryption.NONE, "none", True),
        (ArtifactEncryption.ANY, "none", False),
        (ArtifactEncryption.ANY, "AES256", True),
        (ArtifactEncryption.SSE_S3, "AES256", True),
        (ArtifactEncryption.SSE_S3, "aws:kms", False),
        (ArtifactEncryption.SSE_KMS, "aws:kms", True),
        (ArtifactEncryption.SSE_KMS, "AES256", False),
        (ArtifactEncryption.ANY, None, False),
    ],
)
def test_encryption_requirement(
    required: ArtifactEncryption, observed: str | None, ok: bool
) -> None:
    rule = SecurityPolicy(required_artifact_encryption=required)
    problem = policy.encryption_problem(rule, "m", "s3://b/k", ArtifactStatus(encryption=observed))
    assert (problem is None) is ok, problem


def test_https_artifacts_cannot_meet_an_encryption_requirement() -> None:
    rule = SecurityPolicy(required_artifact_encryption=ArtifactEncryption.ANY)
    problem = policy.encryption_problem(rule, "m", "https://h/a", ArtifactStatus())
    assert problem is not None
    assert "not in an S3 store" in problem
