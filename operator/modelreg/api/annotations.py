"""Annotations of the contract, and the system-managed ones that hold the approval record."""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import TypeAdapter

from modelreg.api.model_version import ApprovalDecision, ArchiveAction, ArchiveDecision

PREFIX = "modelreg.dev"

#: set by an approver: Approved or Rejected (consumed by the admission webhook)
APPROVAL = f"{PREFIX}/approval"
#: set by an approver with APPROVAL: the comment kept with the decision
APPROVAL_COMMENT = f"{PREFIX}/approval-comment"
#: set by an owner (or by the operator for the retention policy): "true" retires the version
ARCHIVED = f"{PREFIX}/archived"
#: set with ARCHIVED: why (kept on the version)
ARCHIVE_COMMENT = f"{PREFIX}/archive-comment"
#: set on a ModelDeployment: serve this ModelVersion until removed
ROLLBACK_TO = f"{PREFIX}/rollback-to"

#: system-managed, written only by the admission webhook: the record of decisions (JSON)
DECISIONS = f"{PREFIX}/decisions"
#: system-managed: the user who created the version
REGISTERED_BY = f"{PREFIX}/registered-by"
#: system-managed: admission time of the create, in nanoseconds (orders version numbers)
CREATED_AT = f"{PREFIX}/created-at"

#: system-managed: the version number, reserved at admission in creation order
NUMBER = f"{PREFIX}/number"

#: system-managed: HMAC of the record (modelreg.record), so a forged record is detected
SIGNATURE = f"{PREFIX}/record-signature"

#: system-managed: the user who archived the version (the operator's own account when the
#: retention policy did)
ARCHIVED_BY = f"{PREFIX}/archived-by"

#: system-managed: every archive and un-archive (JSON, oldest first), so an un-archive
#: never erases who retired the version and why
ARCHIVE_RECORD = f"{PREFIX}/archive-decisions"

#: what the signature covers
SIGNED = (REGISTERED_BY, NUMBER, DECISIONS, ARCHIVED_BY, ARCHIVE_RECORD)
#: added to SIGNED later: left out of the signed payload while absent, so records signed
#: before each was added still verify
SIGNED_WHEN_PRESENT = (ARCHIVED_BY, ARCHIVE_RECORD)
SYSTEM = (DECISIONS, REGISTERED_BY, CREATED_AT, NUMBER, SIGNATURE, ARCHIVED_BY, ARCHIVE_RECORD)

#: kopf's own bookkeeping on every modelreg object (finalizer, handler progress) lives
#: under this prefix (controller/settings.py): only the operator writes it. kopf hides
#: annotations with its prefix from diffs, and the contract's modelreg.dev/* annotations
#: must stay visible, hence a prefix of its own
KOPF_PREFIX = "kopf.modelreg.dev"


def kopf_owned(key: str) -> bool:
    return key.startswith(f"{KOPF_PREFIX}/")


_DECISIONS = TypeAdapter(list[ApprovalDecision])
_ARCHIVE_RECORD = TypeAdapter(list[ArchiveDecision])


def decisions(annotations: Mapping[str, str] | None) -> list[ApprovalDecision]:
    """The recorded decisions (oldest first)."""
    raw = (annotations or {}).get(DECISIONS)
    return _DECISIONS.validate_json(raw) if raw else []


def encode_decisions(items: list[ApprovalDecision]) -> str:
    return json.dumps([d.to_api() for d in items], separators=(",", ":"))


def is_archived(annotations: Mapping[str, str] | None) -> bool:
    """Whether the ``archived`` annotation asks for the version to be retired."""
    return (annotations or {}).get(ARCHIVED, "").lower() == "true"


def archive_record(annotations: Mapping[str, str] | None) -> list[ArchiveDecision]:
    """The recorded archives and un-archives (oldest first)."""
    raw = (annotations or {}).get(ARCHIVE_RECORD)
    return _ARCHIVE_RECORD.validate_json(raw) if raw else []


def encode_archive_record(items: list[ArchiveDecision]) -> str:
    return json.dumps([d.to_api() for d in items], separators=(",", ":"))


def last_archive(annotations: Mapping[str, str] | None) -> ArchiveDecision | None:
    """The latest archive or un-archive on record (None: none, or unreadable)."""
    try:
        trail = archive_record(annotations)
    except ValueError:
        return None
    return trail[-1] if trail else None


def retired(annotations: Mapping[str, str] | None) -> bool:
    """Whether the version is archived: by its annotation, or by the last entry of its
    archive record (an annotation removed while the webhook was not there to record an
    un-archive does not bring a version back). An unreadable record: archived."""
    if is_archived(annotations) or not (annotations or {}).get(ARCHIVE_RECORD):
        return is_archived(annotations)
    last = last_archive(annotations)
    return last is None or last.action == ArchiveAction.ARCHIVED
