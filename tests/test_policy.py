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


def test_the_sources_a_cluster_admin_allows_per_namespace() -> None:
    from modelreg.policy import AdminSources

    sources = AdminSources.parse(
        '{"ml-prod": {"artifacts": ["s3://models-prod/"],'
        ' "images": ["registry.internal/serving/"]},'
        ' "*": {"artifacts": ["https://models.example.com/"]}}'
    )
    assert sources.artifact_denial("ml-prod", "s3://models-prod/fraud/1.tgz") is None
    assert sources.artifact_denial("ml-prod", "https://models.example.com/a") is None  # "*"
    denied = sources.artifact_denial("ml-dev", "s3://models-prod/fraud/1.tgz")
    assert denied is not None
    assert "namespace ml-dev (https://models.example.com/;" in denied
    assert sources.artifact_denial("ml-prod", "s3://models-prod-evil/x") is not None
    assert sources.image_denial("ml-prod", "registry.internal/serving/sk:1") is None
    assert sources.image_denial("ml-dev", "registry.internal/serving/sk:1") is not None
    assert "none" in str(sources.image_denial("ml-dev", "python:3.11"))
    # "*" allows anything; not configured at all: everything (the operator warns)
    anything = AdminSources.parse('{"*": {"artifacts": ["*"], "images": ["*"]}}')
    assert anything.artifact_denial("x", "s3://b/k") is None
    assert anything.image_denial("x", "python:3.11") is None
    assert AdminSources.parse(None).artifact_denial("x", "s3://b/k") is None
    # configured but empty: nothing
    assert AdminSources.parse("{}").artifact_denial("x", "s3://b/k") is not None
    with pytest.raises(ValueError, match="must be a JSON object"):
        AdminSources.parse('["s3://"]')


@pytest.mark.parametrize(
    "uri",
    [
        "https://files.corp/team-a/../team-b/secret.bin",
        "https://files.corp/team-a/%2e%2e/team-b/secret.bin",
        "s3://shared/team-a/./../../other-bucket/key",
    ],
)
def test_dot_segments_never_match_a_prefix(uri: str) -> None:
    """Clients resolve them: the object read would not be under the prefix checked
    (found by review)."""
    from modelreg.policy import AdminSources

    sources = AdminSources.parse(
        '{"*": {"artifacts": ["https://files.corp/team-a/", "s3://shared/team-a/"]}}'
    )
    assert sources.artifact_denial("ns", uri) is not None
