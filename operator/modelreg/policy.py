"""The security policy of a RegisteredModel, applied to one version (pure).

Used twice: by the admission webhook, which refuses a version outside the policy, and
by the operator, which re-checks every version when the policy changes (a version
registered before a tightening stops being deployable) and checks the encryption the
store reports.
"""

from __future__ import annotations

from modelreg.api.model_version import ArtifactStatus
from modelreg.api.registered_model import ArtifactEncryption, SecurityPolicy
from modelreg.verify.images import parse_reference

#: what S3 reports in the ServerSideEncryption header, per requirement
_ACCEPTED = {
    ArtifactEncryption.SSE_S3: ("AES256",),
    ArtifactEncryption.SSE_KMS: ("aws:kms", "aws:kms:dsse"),
}
UNENCRYPTED = "none"


def matches(value: str, prefix: str) -> bool:
    """``value`` starts with ``prefix`` at a path-segment boundary."""
    if not value.startswith(prefix):
        return False
    return len(value) == len(prefix) or prefix.endswith("/") or value[len(prefix)] == "/"


def image_repository(reference: str) -> str:
    """``registry/repository`` of an image reference, normalized as Docker does."""
    ref = parse_reference(reference)
    return f"{ref.registry}/{ref.repository}"


def artifact_denial(policy: SecurityPolicy, model: str, uri: str) -> str | None:
    """Why ``uri`` is outside the policy (None: allowed)."""
    allowed = policy.allowed_artifact_prefixes
    if not allowed or any(matches(uri, p) for p in allowed):
        return None
    return (
        f"artifact {uri} is outside RegisteredModel {model}'s "
        f"securityPolicy.allowedArtifactPrefixes ({', '.join(allowed)}): store the "
        "artifact under one of them"
    )


def image_denial(policy: SecurityPolicy, model: str, reference: str) -> str | None:
    """Why ``reference`` is outside the policy (None: allowed)."""
    allowed = policy.allowed_image_prefixes
    if not allowed:
        return None
    try:
        repository = image_repository(reference)
    except ValueError as e:
        return f"image {reference} cannot be checked against the securityPolicy: {e}"
    if any(matches(repository, p) for p in allowed):
        return None
    return (
        f"image {reference} ({repository}) is outside RegisteredModel {model}'s "
        f"securityPolicy.allowedImagePrefixes ({', '.join(allowed)}): push the image "
        "to one of them"
    )


def encryption_problem(
    policy: SecurityPolicy, model: str, uri: str, artifact: ArtifactStatus | None
) -> str | None:
    """Why the verified artifact does not meet the encryption requirement (None: it does,
    or nothing is required). ``artifact.encryption`` None means it was not observed."""
    required = policy.required_artifact_encryption
    if required == ArtifactEncryption.NONE:
        return None
    observed = artifact.encryption if artifact else None
    rule = f"RegisteredModel {model}'s securityPolicy.requiredArtifactEncryption is {required}"
    if not uri.startswith("s3://"):
        return f"{rule}, but {uri} is not in an S3 store, which could show its encryption"
    if observed is None:
        return f"{rule}, but the encryption of {uri} was not observed"
    if observed == UNENCRYPTED:
        return f"{rule}, but {uri} is stored without server-side encryption: re-upload it encrypted"
    if required == ArtifactEncryption.ANY or observed in _ACCEPTED[required]:
        return None
    return f"{rule}, but {uri} is encrypted with {observed}: re-upload it with {required}"
