"""The retention policy (pure): which versions ``retention.maxVersions`` archives."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modelreg.api.model_version import ApprovalState


@dataclass(frozen=True)
class VersionState:
    """What retention needs to know about one version."""

    name: str
    number: int
    approval: ApprovalState
    archived: bool
    #: served, or about to be: a ModelDeployment's current or target version
    in_use: bool


def to_archive(versions: Iterable[VersionState], max_versions: int | None) -> list[str]:
    """The versions beyond the newest ``max_versions`` that the policy archives: never one
    in use by a deployment, pending approval, or the latest approved (oldest first)."""
    if max_versions is None:
        return []
    ordered = sorted(versions, key=lambda v: v.number, reverse=True)
    approved = [v.number for v in ordered if v.approval == ApprovalState.APPROVED]
    latest_approved = max(approved, default=None)
    out = [
        v.name
        for v in ordered[max_versions:]
        if not v.archived
        and not v.in_use
        and v.approval != ApprovalState.PENDING
        and v.number != latest_approved
    ]
    return list(reversed(out))
