"""Which verdicts a reconcile checks again (controller/versions.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from modelreg.api.base import Condition, ConditionStatus
from modelreg.controller.versions import (
    ARTIFACT_RECHECK_REASONS,
    IMAGE_RECHECK_REASONS,
    _needs_check,
)

T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def cond(status: ConditionStatus, reason: str, gen: int = 1) -> list[Condition]:
    return [
        Condition(
            type="X",
            status=status,
            reason=reason,
            message="m",
            observed_generation=gen,
            last_transition_time=T,
        )
    ]


@pytest.mark.parametrize(
    ("status", "reason", "recheck", "expected"),
    [
        # definitive: about the version itself
        (ConditionStatus.FALSE, "ArtifactNotFound", ARTIFACT_RECHECK_REASONS, False),
        (ConditionStatus.FALSE, "ChecksumMismatch", ARTIFACT_RECHECK_REASONS, False),
        (ConditionStatus.FALSE, "ImageNotFound", IMAGE_RECHECK_REASONS, False),
        (ConditionStatus.TRUE, "Verified", ARTIFACT_RECHECK_REASONS, False),
        # the operator's own credentials, as older operators recorded them: checked again
        (ConditionStatus.FALSE, "AccessDenied", ARTIFACT_RECHECK_REASONS, True),
        # refused pull-Secret credentials: the Secret can be fixed
        (ConditionStatus.FALSE, "Unauthorized", IMAGE_RECHECK_REASONS, True),
        # ... but a version that names no pull Secret has nothing that could change
        (ConditionStatus.FALSE, "Unauthorized", (), False),
        (ConditionStatus.UNKNOWN, "PullSecretNotFound", (), True),
        (ConditionStatus.UNKNOWN, "StoreAccessDenied", (), True),
    ],
)
def test_needs_check(
    status: ConditionStatus, reason: str, recheck: tuple[str, ...], expected: bool
) -> None:
    assert _needs_check(cond(status, reason), "X", 1, recheck) is expected


def test_a_new_generation_is_always_checked() -> None:
    assert _needs_check(cond(ConditionStatus.FALSE, "ArtifactNotFound", gen=1), "X", 2)
