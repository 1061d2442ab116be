"""Which transitions a reconcile made (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from modelreg.api import annotations as ann
from modelreg.api.model_version import ModelVersionStatus
from modelreg.api.registered_model import NotificationEvent as E
from modelreg.controller.notifications import deployment_notices, version_notices

T = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)


def status(*conds: tuple[str, str, str], **fields: Any) -> ModelVersionStatus:
    return ModelVersionStatus.model_validate(
        {
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "reason": r,
                    "message": f"{t} {r}",
                    "lastTransitionTime": T,
                }
                for t, s, r in conds
            ],
            **fields,
        }
    )


VERIFIED = (("ArtifactVerified", "True", "Verified"), ("ImageResolved", "True", "Resolved"))


def events(old: ModelVersionStatus, new: ModelVersionStatus, **notes: str) -> list[E]:
    return [n.event for n in version_notices(old, new, notes)]


def test_registration_and_verification() -> None:
    new = status(*VERIFIED, number=3, registeredBy="dana")
    assert events(status(), new) == [E.VERSION_REGISTERED, E.VERSION_VERIFIED]
    assert version_notices(status(), new, {})[0].user == "dana"
    assert events(new, new) == []  # reconciled again: nothing new


def test_verification_failure_once_per_reason() -> None:
    failed = status(("ArtifactVerified", "False", "ChecksumMismatch"), number=1)
    assert events(status(number=1), failed) == [E.VERSION_VERIFICATION_FAILED]
    assert events(failed, failed) == []
    tightened = status(("ArtifactVerified", "False", "SourceNotAllowed"), number=1)
    assert events(failed, tightened) == [E.VERSION_VERIFICATION_FAILED]


def test_decisions_name_the_deciding_user() -> None:
    decision = {"user": "bob", "decision": "Rejected", "time": T}
    rejected = status(
        ("Approved", "False", "Rejected"),
        number=1,
        approval={"state": "Rejected", "required": 1, "decisions": [decision]},
    )
    (notice,) = version_notices(status(number=1), rejected, {})
    assert (notice.event, notice.user) == (E.VERSION_REJECTED, "bob")
    approved = status(
        ("Approved", "True", "Approved"),
        number=1,
        approval={
            "state": "Approved",
            "required": 1,
            "decisions": [decision | {"user": "alice", "decision": "Approved"}],
        },
    )
    (notice,) = version_notices(rejected, approved, {})
    assert (notice.event, notice.user) == (E.VERSION_APPROVED, "alice")


def test_archiving_names_who_and_why() -> None:
    archived = status(("Ready", "False", "Archived"), number=1)
    notes = {ann.ARCHIVED_BY: "system:serviceaccount:x:y", ann.ARCHIVE_COMMENT: "retention"}
    (notice,) = version_notices(status(number=1), archived, notes)
    assert (notice.event, notice.user, notice.message) == (
        E.VERSION_ARCHIVED,
        "system:serviceaccount:x:y",
        "retention",
    )


def test_deployment_events_map_to_notifications() -> None:
    posted = [
        ("Normal", "RolloutStarted", "rolling out v2"),
        ("Warning", "RolloutFailed", "v2 failed"),
        ("Warning", "RolledBack", "rolled back to v1"),
        ("Normal", "RolloutSucceeded", "serving v1"),
    ]
    assert [n.event for n in deployment_notices(posted)] == [
        E.DEPLOYMENT_FAILED,
        E.DEPLOYMENT_ROLLED_BACK,
        E.DEPLOYMENT_SUCCEEDED,
    ]
