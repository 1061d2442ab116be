"""Which versions retention.maxVersions archives (pure)."""

from __future__ import annotations

from modelreg.api.model_version import ApprovalState
from modelreg.retention import VersionState, to_archive

A, P, R = ApprovalState.APPROVED, ApprovalState.PENDING, ApprovalState.REJECTED


def v(
    n: int, approval: ApprovalState = R, archived: bool = False, in_use: bool = False
) -> VersionState:
    return VersionState(f"v{n}", n, approval, archived, in_use)


def test_only_versions_beyond_the_newest_n_oldest_first() -> None:
    assert to_archive([v(i) for i in range(1, 7)], 3) == ["v1", "v2", "v3"]
    assert to_archive([v(i) for i in range(1, 4)], 3) == []
    assert to_archive([v(i) for i in range(1, 7)], None) == []


def test_never_in_use_pending_latest_approved_or_already_archived() -> None:
    versions = [
        v(1, archived=True),
        v(2, in_use=True),
        v(3, P),
        v(4, A),  # the latest approved: kept even beyond the newest N
        v(5, A),
        v(6),
        v(7),
        v(8),
    ]
    versions[4] = v(5, R)
    assert to_archive(versions, 3) == ["v5"]
    # an older approved version is archived once a newer one is approved
    assert to_archive([v(1, A), v(2, A), v(3), v(4)], 2) == ["v1"]
