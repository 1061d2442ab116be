"""The security policy of a RegisteredModel, and the sources a cluster admin allows a
namespace, applied to one version (pure).

Used twice: by the admission webhook, which refuses a version outside the policy, and
by the operator, which re-checks every version when the policy changes (a version
registered before a tightening stops being deployable) and checks the encryption the
store reports.
"""

from __future__ import annotations

import functools
import json
import os
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from modelreg.api.model_version import ArtifactStatus
from modelreg.api.registered_model import ArtifactEncryption, SecurityPolicy
from modelreg.verify.images import parse_reference

#: what S3 reports in the ServerSideEncryption header, per requirement
_ACCEPTED = {
    ArtifactEncryption.SSE_S3: ("AES256",),
    ArtifactEncryption.SSE_KMS: ("aws:kms", "aws:kms:dsse"),
}
UNENCRYPTED = "none"


def dot_segments(uri: str) -> bool:
    """Whether a URI's path has ``.`` or ``..`` segments (plain or percent-encoded):
    clients resolve them, so the object read is not the one a prefix check saw."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(uri).path)
    return any(part in (".", "..") for part in path.split("/"))


def matches(value: str, prefix: str) -> bool:
    """``value`` starts with ``prefix`` at a path-segment boundary (and names no ``.``
    or ``..`` segment that would lead out of it)."""
    if dot_segments(value) or not value.startswith(prefix):
        return False
    return len(value) == len(prefix) or prefix.endswith("/") or value[len(prefix)] == "/"


def image_repository(reference: str) -> str:
    """``registry/repository`` of an image reference, normalized as Docker does."""
    ref = parse_reference(reference)
    return f"{ref.registry}/{ref.repository}"


def _repository_outside(
    reference: str, allowed: Iterable[str], against: str
) -> tuple[str | None, str | None]:
    """The image's repository if it is under none of ``allowed`` (None: it is under one,
    or it cannot be read, and then why)."""
    try:
        repository = image_repository(reference)
    except ValueError as e:
        return None, f"image {reference} cannot be checked against {against}: {e}"
    if any(matches(repository, p) for p in allowed):
        return None, None
    return repository, None


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
    repository, unreadable = _repository_outside(reference, allowed, "the securityPolicy")
    if repository is None:
        return unreadable
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


#: the sources a cluster admin allows, per namespace (JSON; the chart's sources.allowed)
SOURCES_ENV = "MODELREG_ALLOWED_SOURCES"


@dataclass(frozen=True)
class AdminSources:
    """The artifact URI and image repository prefixes a cluster admin allows each
    namespace (``"*"``: every namespace; a prefix ``"*"``: anything). Unlike a model's
    securityPolicy, which its owner writes, this is the cluster admin's: versions may
    make the operator read only what their namespace may use, so the operator's
    credentials and network position are no oracle for what lies elsewhere.
    ``rules`` None: not configured, everything allowed (the operator warns at start)."""

    rules: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] | None = None

    @classmethod
    def parse(cls, raw: str | None) -> AdminSources:
        if raw is None or not raw.strip():
            return cls(None)
        try:
            data = json.loads(raw)
            rules = {
                str(ns): (
                    tuple(str(p) for p in (entry or {}).get("artifacts") or []),
                    tuple(str(p) for p in (entry or {}).get("images") or []),
                )
                for ns, entry in data.items()
            }
        except (ValueError, AttributeError, TypeError) as e:
            raise ValueError(
                f'{SOURCES_ENV} must be a JSON object {{"<namespace or *>": {{"artifacts": '
                f'[...], "images": [...]}}}}: {e}'
            ) from e
        return cls(rules)

    def _allowed(self, namespace: str, which: int) -> tuple[str, ...] | None:
        if self.rules is None:
            return None
        return tuple(
            p for ns in (namespace, "*") if ns in self.rules for p in self.rules[ns][which]
        )

    def artifact_denial(self, namespace: str, uri: str) -> str | None:
        allowed = self._allowed(namespace, 0)
        if allowed is None or any(p == "*" or matches(uri, p) for p in allowed):
            return None
        return (
            f"artifact {uri} is not in a source a cluster admin allows namespace "
            f"{namespace} ({', '.join(allowed) or 'none'}; {SOURCES_ENV}, the chart's "
            "sources.allowed): the operator does not read it"
        )

    def image_denial(self, namespace: str, reference: str) -> str | None:
        allowed = self._allowed(namespace, 1)
        if allowed is None or "*" in allowed:
            return None
        repository, unreadable = _repository_outside(reference, allowed, "the allowed sources")
        if repository is None:
            return unreadable
        return (
            f"image {reference} ({repository}) is not in a registry a cluster admin allows "
            f"namespace {namespace} ({', '.join(allowed) or 'none'}; {SOURCES_ENV}, the "
            "chart's sources.allowed): the operator does not contact it"
        )


@functools.cache
def admin_sources() -> AdminSources:
    """The operator's (from its environment, read once)."""
    return AdminSources.parse(os.environ.get(SOURCES_ENV))
